"""The container's contract, described once: every file `mailorama-apply` installs, where it
comes from, where it lives in the container, its owner and mode, its OpenSMTPD table name, how
`apply` checks it and what a change triggers.

`render` writes it as `config/contract` (one line per file) for `mailorama-apply`; the smtpd.conf
template declares its tables from it; the deploy masks the secret ones in `--diff`.
"""

from __future__ import annotations

from dataclasses import dataclass

# Folders inside the container (mounts of the compose file).
CONFIG = "/etc/mail-o-rama"          # <root>/config, read-only
KEYS = "/var/lib/mail-o-rama"        # <root>/keys: DKIM, SRS, TLS
# <root>/keys/live: the live files below (the root filesystem is read-only). It keeps the last
# good config across a restart and a recreate; 0755 inside (the daemons' users read their
# files there), unreachable on the host below <root>/keys (0700).
LIVE = "/var/lib/mail-o-rama-live"
LIVE_SOURCE = "keys/live"            # its folder on the host, below mailorama_root
# The paths the daemons and scripts read are links into LIVE, made in the image (Dockerfile;
# tests/unit/test_contract_links.py keeps the two equal). The marker: a good config is live.
LINKS = {
    "/etc/smtpd.conf": f"{LIVE}/smtpd.conf",
    "/etc/smtpd": f"{LIVE}/smtpd",
    "/etc/dovecot/dovecot.conf": f"{LIVE}/dovecot.conf",
    "/etc/dovecot/mail-o-rama": f"{LIVE}/dovecot",
    "/etc/ssl/mail-o-rama": f"{LIVE}/tls",
    "/etc/mailname": f"{LIVE}/mailname",
    "/etc/mail-o-rama-live": f"{LIVE}/good",
}


@dataclass(frozen=True)
class LiveFile:
    """One file `mailorama-apply` installs."""

    name: str                 # its name in the config folder, or a keys-folder path (source)
    live: str                 # where the daemons read it
    owner: str = "root"
    group: str = "root"
    mode: int = 0o644
    table: str | None = None  # OpenSMTPD table name: a change runs `smtpctl update table`
    check: str = "-"          # how apply validates it: kv, list, credentials, userbase, passwd
    on_change: str = "table"  # table, passwd (read live), smtpd, dovecot, both (restart/reload)
    source: str = "config"    # config, keys or tls (the user's certificate, else self-signed)
    secret: bool = False      # password hashes or credentials: masked in --diff
    about: str = ""

    @property
    def line(self) -> str:
        return " ".join((self.name, self.source, self.live, self.owner, self.group,
                         f"{self.mode:04o}", self.table or "-", self.check, self.on_change))


FILES: tuple[LiveFile, ...] = (
    LiveFile("smtpd.conf", "/etc/smtpd.conf", check="smtpd", on_change="smtpd"),
    LiveFile("dovecot.conf", "/etc/dovecot/dovecot.conf", check="dovecot", on_change="dovecot"),
    LiveFile("domains", "/etc/smtpd/domains", table="domains", check="list",
             about="the hosted domains"),
    LiveFile("virtuals", "/etc/smtpd/virtuals", table="virtuals", check="kv",
             about="address -> accounts and external addresses"),
    LiveFile("recipients", "/etc/smtpd/recipients", table="recipients", check="list",
             about="every hosted address: the others get 550 (a failed virtual lookup: 524)"),
    LiveFile("userbase", "/etc/smtpd/userbase", table="userinfo", check="userbase",
             about="account -> uid:gid:home"),
    LiveFile("credentials", "/etc/smtpd/credentials", group="opensmtpd", mode=0o640,
             table="credentials", check="credentials", secret=True,
             about="account -> password hash, for SMTP AUTH"),
    LiveFile("senders", "/etc/smtpd/senders", table="sendas", check="kv",
             about="account -> the addresses it may send as"),
    LiveFile("aliases", "/etc/smtpd/aliases", table="aliases", check="kv",
             about="system aliases (root: al)"),
    LiveFile("own-senders", "/etc/smtpd/own-senders", table="ownsenders", check="list",
             about='"@domain" for each hosted domain: senders only logged-in users may use'),
    LiveFile("system-recipients", "/etc/smtpd/system-recipients", table="systemrcpt",
             check="list", about="name@hostname for each alias name: the host name's addresses"),
    LiveFile("relay-secrets", "/etc/smtpd/relay-secrets", group="opensmtpd", mode=0o640,
             table="relaysecrets", check="kv", secret=True,
             about="the smarthost's login (the line 'relay user:password')"),
    LiveFile("passwd", "/etc/dovecot/mail-o-rama/passwd", group="dovecot", mode=0o640,
             check="passwd", on_change="passwd", secret=True,
             about="Dovecot's passwd-file: the same accounts and hashes"),
    LiveFile("cert.pem", "/etc/ssl/mail-o-rama/cert.pem", source="tls", check="cert",
             on_change="both"),
    LiveFile("key.pem", "/etc/ssl/mail-o-rama/key.pem", mode=0o600, source="tls", check="key",
             on_change="both"),
    LiveFile("dkim/rsa.key", "/etc/smtpd/dkim/rsa.key", "_dkimsign", "_dkimsign", 0o400,
             source="keys", check="key", on_change="smtpd"),
    LiveFile("dkim/ed25519.key", "/etc/smtpd/dkim/ed25519.key", "_dkimsign", "_dkimsign", 0o400,
             source="keys", check="key", on_change="smtpd"),
    # One per account (mailorama/sieve.py); the group is the account's own, so only it reads it.
    LiveFile("*.sieve", "/etc/dovecot/mail-o-rama/sieve", group="account", mode=0o640,
             check="sieve", on_change="sieve",
             about="each account's declarative Sieve filter (sieve/<account>.sieve), compiled "
                   "by sievec before it goes live"),
)

TABLES = tuple(f for f in FILES if f.table)
SECRET_CONFIG = frozenset(f"config/{f.name}" for f in FILES if f.secret)
# Plain files the deploy writes next to the tables, read by the entrypoint and apply.
HOSTNAME_FILE = "hostname"
SELECTORS_FILE = "dkim-selectors"


def contract_text() -> str:
    """`config/contract`: the table above, one file per line, for mailorama-apply."""
    head = ("# Made by Mail-o-Rama (mailorama/contract.py): what mailorama-apply installs.\n"
            "# name source live owner group mode table check on-change\n")
    return head + "".join(f"{f.line}\n" for f in FILES)
