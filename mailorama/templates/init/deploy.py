from mailorama.deploy import mail_server
mail_server()
