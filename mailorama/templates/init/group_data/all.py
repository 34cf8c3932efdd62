"""Mail-o-Rama's settings, each with its default. Change them here (all hosts), per host (its
data in inventory.py), per group (group_data/<group>.py), or once on the command line:
pyinfra inventory.py deploy.py --data mailorama_host_mail=shim"""

# Folder with accounts, domains, virtuals, aliases; relative to the deploy's folder, or absolute.
mailorama_config_dir = "mail"

# Name in the SMTP banner, HELO and the self-signed certificate. None: the host's FQDN.
mailorama_hostname = None

# Addresses the services bind to. Empty: all addresses.
mailorama_listen = []

# The host's public addresses (behind NAT they are not on its interfaces), for the A/AAAA and
# PTR records of `mailorama dns` and the checks of `mailorama doctor`. Empty: the addresses on
# the host's interfaces.
mailorama_addresses = []

# Ports of the services (all of them need not be open in a firewall: submission/imaps suffice;
# managesieve: Sieve filters and vacation from mail clients, STARTTLS before login; hostmail:
# the host's own mail (msmtp), on 127.0.0.1 only).
mailorama_ports = {"smtp": 25, "submission": 587, "submissions": 465, "imap": 143, "imaps": 993,
                   "managesieve": 4190, "hostmail": 10025}

# Stack folder on the host: compose file, config, DKIM keys, TLS, image build context.
mailorama_root = "/opt/mail-o-rama"

# Mail, queue and backups on the host.
mailorama_data = "/srv/mail-o-rama"

# Container and compose project name.
mailorama_container = "mail-o-rama"

# The image the deploy builds on the host. None: <container>:latest.
mailorama_image = None

# The container's memory limit (a Docker size: k, m or g; at least 128m).
mailorama_memory_limit = "256m"

# The container's log (Docker's json-file driver): size of one file, and how many are kept.
mailorama_log_max_size = "10m"
mailorama_log_max_files = 3

# Mail storage of each account (K, M, G or T); None: no limit. A full mailbox is refused with
# 452 4.2.2 at RCPT (the sending server retries); nothing already accepted is lost.
mailorama_quota = "10G"

# Accounts with a quota of their own, e.g. {"al": "20G", "peg": None}.
mailorama_quotas = {}

# Failed logins (SMTP AUTH, IMAP, ManageSieve) per client address (IPv6: per /64): `failures`
# within `window` seconds block the address for `block` seconds, doubled on each repeat up to
# `max_block`. failures 0: no throttling.
mailorama_login_throttle = {"failures": 5, "window": 600, "block": 900, "max_block": 86400}

# Addresses or networks never throttled, e.g. ["203.0.113.7", "2001:db8::/64"].
mailorama_login_allow = []

# SMTP clients (ports 25, 587, 465) that got this many error replies (5xx: unknown commands, bad
# syntax, unknown recipients, failed logins) since their last accepted message are disconnected
# with 421 at their next command, and logged once. 0: never.
mailorama_error_limit = 10

# An existing certificate on the host, e.g. Let's Encrypt's live files. None: self-signed.
mailorama_tls_cert = None
mailorama_tls_key = None

# Smarthost for outgoing mail, "host:port". None: deliver straight to the recipients' MX.
mailorama_relay_host = None
# Its login, {"user": ..., "password": ...} (then TLS is required), e.g. from the environment:
# {"user": "me@example.org", "password": os.environ["MAILORAMA_RELAY_PASSWORD"]}.
mailorama_relay_auth = None
# Check the smarthost's certificate (turn off only for a smarthost you reach privately).
mailorama_relay_tls_verify = True

# The host's own sendmail: "msmtp" (msmtp-mta into the container's SMTP port on loopback),
# "shim" (/usr/sbin/sendmail runs `docker exec -i <container> sendmail`), or "none".
mailorama_host_mail = "msmtp"

# Host user -> address, for msmtp's aliases file. None: {"default": "root@<hostname>"}.
mailorama_host_aliases = None

# Daily backups older than this many days are deleted. None: keep all.
mailorama_backup_retention_days = 14

# Offsite, encrypted backups with restic after the local ones, e.g. {"repository":
# "sftp:backup@host.example:/srv/restic/mail", "password": "...", "ssh_key": "/root/.ssh/backup"}
# (any restic repository; ssh_key: a key on the host, for sftp; "env": {"AWS_ACCESS_KEY_ID": ...,
# "AWS_SECRET_ACCESS_KEY": ...}: the variables restic reads for s3:, b2:, azure:, gs: and
# others). Keep the password elsewhere too: without it the backups cannot be read. None: local
# backups only.
mailorama_backup_offsite = None

# How many offsite snapshots restic keeps (also "yearly").
mailorama_backup_keep = {"daily": 7, "weekly": 4, "monthly": 6}

# Weekly: rebuild the image with current Debian packages; recreate the container when they
# changed, roll back (and mail root) when it does not get healthy.
mailorama_auto_update = True

# Install Docker engine and compose from the host's distribution (Debian 12/13, Ubuntu 24.04).
mailorama_install_docker = False

# Allow renaming or renumbering accounts that have mail: the deploy then moves/re-owns the mail.
mailorama_allow_renumber = False

# IMAP SEARCH BODY/TEXT from a full-text index (Dovecot's flatcurve): a search of 10,000
# messages in milliseconds instead of a second; the index takes about as much disk as the mail
# (README: Filters, vacation, moving in, search).
mailorama_search_index = True

# DKIM selectors of the two keys (DNS names <selector>._domainkey.<domain>).
mailorama_dkim_selectors = {"rsa": "rsa", "ed25519": "ed25519"}
