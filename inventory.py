"""Where Mail-o-Rama goes: pyinfra's inventory. The example: this machine (@local), serving the
example config on loopback only (its passwords are published).

Your own hosts go here with their SSH user and settings (`mailorama init` writes such a file):

    mail = [("mail.example.org", {"ssh_user": "root", "mailorama_hostname": "mail.example.org"})]

or on the command line: `pyinfra mail.example.org deploy.py --user root`. Settings for every
host are in group_data/all.py; per group in group_data/<group>.py.
"""

mail = [("@local", {
    "mailorama_hostname": "mail.bundy.net",
    "mailorama_listen": ["127.0.0.1"],
})]
