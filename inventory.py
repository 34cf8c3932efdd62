"""Where Mail-o-Rama goes. By default this machine (@local), serving the example on loopback.

Deploy to your own servers by listing them (pyinfra connects over SSH as root or with --sudo):

    mail = [("mail.example.org", {"ssh_user": "root"})]

or give hosts on the command line: `MAILORAMA_HOSTS=mail.example.org pyinfra inventory.py deploy.py`.
Per-host settings go in the host's data dict or in group_data/<group>.py.
"""

import os

_hosts = [h for h in os.environ.get("MAILORAMA_HOSTS", "").split(",") if h]

if _hosts:
    mail = _hosts
else:
    # The example: published passwords, so it listens on loopback only.
    mail = [("@local", {
        "mailorama_hostname": "mail.bundy.net",
        "mailorama_listen": ["127.0.0.1"],
    })]
