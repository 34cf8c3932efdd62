"""Deploy Mail-o-Rama: `pyinfra inventory.py deploy.py` (add --dry to see what would change)."""

from mailorama.deploy import mail_server

mail_server()
