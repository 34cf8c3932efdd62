"""Deploy Mail-o-Rama: `pyinfra inventory.py deploy.py` (add --dry to see what would change)."""

from mailorama.deploy import mail_server, print_summaries

print_summaries()
mail_server()
