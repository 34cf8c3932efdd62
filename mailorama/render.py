"""Render every file the host and the container read, from a MailConfig and Settings. Pure.

The result maps a path relative to the stack folder (`mailorama_root`) to its text. The same
input always gives the same bytes: tables are sorted, nothing carries a timestamp.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from importlib import resources

import jinja2

from .config import MailConfig
from .contract import (HOSTNAME_FILE, LIVE, LIVE_SOURCE, SECRET_CONFIG, SELECTORS_FILE, TABLES,
                       contract_text)
from .offsite import forget_args, secrets, shown_repository, spread, ssh_command
from .settings import Settings
from .sieve import rendered as sieve_files

# Package data: found wherever the package is installed (a wheel, an editable checkout).
IMAGE = resources.files("mailorama") / "image"
HEADER = "# Made by Mail-o-Rama from the files in {source}; edit those, not this.\n"
_env = jinja2.Environment(
    loader=jinja2.PackageLoader("mailorama", "templates"),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    autoescape=False,
)
_env.filters["py"] = json.dumps     # a Python string literal (init's inventory.py)


def render_template(name: str, context: dict) -> str:
    """One package template (path below mailorama/templates/) rendered with `context`."""
    return _env.get_template(name).render(context)


def home(account: str) -> str:
    return f"/var/mail/{account}"


def _table(source: str, rows) -> str:
    return HEADER.format(source=source) + "".join(f"{row}\n" for row in rows)


def _list(source: str, rows) -> str:
    """A list table: `# @list` first keeps an empty one a list for OpenSMTPD."""
    return "# @list\n" + _table(source, rows)


def _values(items) -> str:
    """A table value listing `items`: OpenSMTPD splits it at commas outside quotes, so a quote
    (legal in an address: o'brien@example.org) is escaped, or it would swallow the commas
    after it and the lookup would fail (expand_line_split, mailaddr_line_split)."""
    return ", ".join(item.replace("'", "\\'") for item in items)


def tables(config: MailConfig, quotas: dict[str, str | None] | None = None) -> dict[str, str]:
    """The OpenSMTPD tables and Dovecot's passwd-file, keyed by file name. `quotas`: accounts
    with a quota of their own (None: no limit), a userdb field in the passwd-file."""
    senders = config.senders()
    quotas = quotas or {}
    return {
        "domains": _table("domains", config.domains),
        "virtuals": _table("virtuals", (f"{a} {_values(t)}" for a, t in config.virtuals)),
        "recipients": _list("virtuals", (a for a, _ in config.virtuals)),
        "credentials": _table("accounts", (f"{a.name} {a.hash}" for a in config.accounts)),
        "userbase": _table(
            "accounts", (f"{a.name} {a.uid}:{a.uid}:{home(a.name)}" for a in config.accounts)),
        "senders": _table("virtuals", (f"{name} {_values(addrs)}"
                                       for name, addrs in senders.items() if addrs)),
        "aliases": _table("aliases", (f"{n}: {_values(t)}" for n, t in config.aliases)),
        "passwd": _table("accounts", (f"{a.name}:{a.hash}:{a.uid}:{a.uid}::{home(a.name)}::"
                                      + _quota_field(a.name, quotas) for a in config.accounts)),
    }


def _quota_field(account: str, quotas: dict[str, str | None]) -> str:
    if account not in quotas:
        return ""
    return f"userdb_quota_storage_size={quotas[account] or 'unlimited'}"


def context(config: MailConfig, settings: Settings) -> dict:
    """What the templates see."""
    return {
        "hostname": settings.hostname,
        "listen": list(settings.listen),
        "ports": settings.port,
        "relay_host": settings.relay_host,
        "relay_scheme": relay_scheme(settings),
        "relay_auth": settings.relay_auth is not None,
        "relay_tls_verify": settings.relay_tls_verify,
        "domains": list(config.domains),
        "tables": TABLES,
        "live": LIVE,
        "live_source": LIVE_SOURCE,
        "dkim_selectors": dict(settings.dkim_selectors),
        "container": settings.container,
        "image": settings.image,
        "root": settings.root,
        "data": settings.data,
        "tls_cert": settings.tls_cert,
        "tls_key": settings.tls_key,
        "backup_retention_days": settings.backup_retention_days,
        "search_index": settings.search_index,
        "quota": settings.quota or "unlimited",
        "memory_limit": settings.memory_limit,
        "log_max_size": settings.log_max_size,
        "log_max_files": settings.log_max_files,
        "throttle": dict(settings.login_throttle),
        "login_allow": list(settings.login_allow),
        "error_limit": settings.error_limit,
    }


def relay_scheme(settings: Settings) -> str:
    """smtps for port 465; TLS required when a password goes over; else opportunistic TLS."""
    if (settings.relay_host or "").endswith(":465"):
        return "smtps"
    return "smtp+tls" if settings.relay_auth else "smtp"


def render(config: MailConfig, settings: Settings,
           sieve: dict[str, str] | None = None) -> dict[str, str]:
    """Every rendered file, by path relative to the stack folder. `sieve`: the declarative
    Sieve filters by account (mailorama.sieve.load)."""
    ctx = context(config, settings)
    files = {f"config/{name}": text for name, text in tables(config, dict(settings.quotas)).items()}
    files |= sieve_files(sieve or {}, (a.name for a in config.accounts))
    files["config/own-senders"] = _list("domains", (f"@{domain}" for domain in config.domains))
    # name@host name: system mail, for the aliases only (not every account name)
    files["config/system-recipients"] = _list(
        "aliases", (f"{name}@{settings.hostname}" for name, _ in config.aliases))
    user, password = settings.relay_auth or (None, None)
    files["config/relay-secrets"] = HEADER.format(source="mailorama_relay_auth") + (
        f"relay {user}:{password}\n" if user else "")
    files["config/contract"] = contract_text()
    files[f"config/{HOSTNAME_FILE}"] = f"{settings.hostname}\n"
    files[f"config/{SELECTORS_FILE}"] = "".join(
        f"{kind} {selector}\n" for kind, selector in settings.dkim_selectors)
    files["config/smtpd.conf"] = render_template("smtpd/smtpd.conf.j2", ctx)
    files["config/dovecot.conf"] = render_template("dovecot/dovecot.conf.j2", ctx)
    files["compose.yaml"] = render_template("compose/compose.yaml.j2", ctx)
    return dict(sorted(files.items()))


def image_files() -> dict[str, bytes]:
    """The image's build context (image/), by path relative to the stack folder."""
    return {f"image/{p.name}": p.read_bytes()
            for p in sorted(IMAGE.iterdir(), key=lambda p: p.name) if p.is_file()}


def backup_command(settings: Settings) -> str:
    """The daily backup, as the cron job runs it."""
    days = settings.backup_retention_days or ""
    return f"docker exec -e BACKUP_RETENTION_DAYS={days} {settings.container} /backup.sh"


def tls_copies(settings: Settings) -> list[str]:
    """Where the container reads the user's certificate and key: copies in the keys folder
    (a copy, not a mount: a renewed certificate is a new file)."""
    return [f"{settings.root}/keys/tls-user/{name}" for name in ("cert.pem", "key.pem")]


def tls_paths(settings: Settings) -> dict[str, str]:
    """The user's certificate files on the host -> their copies."""
    if not settings.tls_cert:
        return {}
    return dict(zip((settings.tls_cert, settings.tls_key), tls_copies(settings)))


def certbot_hook(settings: Settings) -> str:
    return f"/etc/letsencrypt/renewal-hooks/deploy/{settings.container}"


def tls_copy_command(settings: Settings) -> str:
    """Copy the user's certificate into the keys folder, readable by root only."""
    return " && ".join(f"install -D -m 0600 -o root -g root {shlex.quote(src)} {shlex.quote(dst)}"
                       for src, dst in tls_paths(settings).items())


def smtp_address(settings: Settings) -> str:
    """Where the host's own mail enters the container: a loopback address it listens on."""
    loopback = [a for a in settings.listen if a.startswith("127.") or a == "::1"]
    return (loopback or list(settings.listen) or ["127.0.0.1"])[0]


def render_host(settings: Settings) -> dict[str, str]:
    """The host's own files (mail path, backup cron job), by absolute path, for host_mail."""
    ctx = {
        "hostname": settings.hostname, "ports": settings.port, "container": settings.container,
        "host_mail": settings.host_mail,
        "data": settings.data, "host_aliases": settings.host_aliases,
        "smtp_address": smtp_address(settings), "backup_command": backup_command(settings),
        # spread the hosts' backups over the hour, the same minute on every run
        "backup_minute": int(hashlib.sha256(settings.hostname.encode()).hexdigest(), 16) % 60,
        "tls_copy_command": tls_copy_command(settings),
    } | upkeep_context(settings)
    templates = {f"/etc/cron.d/{settings.container}": "etc/cron.d/container.j2"}
    templates |= {path: f"usr/local/sbin/mailorama-{name}.j2"
                  for name, path in ctx["scripts"].items()}
    if settings.host_mail != "none":
        templates |= {"/etc/msmtprc": "etc/msmtprc.j2",
                      "/etc/mail-o-rama/msmtp-aliases": "etc/mail-o-rama/msmtp-aliases.j2",
                      "/usr/sbin/sendmail": "usr/sbin/sendmail",
                      "/etc/mail-o-rama/sendmail.ini": "etc/mail-o-rama/sendmail.ini.j2"}
    if (settings.tls_cert or "").startswith("/etc/letsencrypt/"):
        templates[certbot_hook(settings)] = "etc/letsencrypt/renewal-hooks/deploy/container.j2"
    files = {dest: render_template(f"host/{name}", ctx)
             for dest, name in templates.items()}
    return dict(sorted((files | offsite_secrets(settings)).items()))


def upkeep_scripts(settings: Settings) -> dict[str, str]:
    """The host's upkeep scripts for this container: name -> path (restic and restore-offsite
    only with an offsite repository)."""
    names = ["backup", "check", "update"]
    if settings.backup_offsite:
        names += ["restic", "restore-offsite"]
    return {name: f"/usr/local/sbin/mailorama-{name}-{settings.container}" for name in names}


def upkeep_lock(settings: Settings) -> str:
    """Held by the deploy's build/start/apply, the update and the restore: never at once."""
    return f"/run/lock/mail-o-rama-{settings.container}.lock"


def upkeep_context(settings: Settings) -> dict:
    """What the upkeep scripts and the cron file see."""
    offsite = settings.backup_offsite
    status = f"{settings.root}/status"
    sftp = offsite and ssh_command(offsite.repository, offsite.ssh_key,
                                   f"{settings.root}/offsite/known_hosts")
    return {
        "root": settings.root, "image": settings.image, "status": status,
        "previous": settings.image.rsplit(":", 1)[0] + ":previous",
        "lock": upkeep_lock(settings), "scripts": upkeep_scripts(settings),
        "backup_lock": f"/run/lock/mail-o-rama-{settings.container}-backup.lock",
        "offsite": offsite is not None, "keep": forget_args(settings.backup_keep),
        "restic_options": shlex.quote(f"--option=sftp.command={sftp}") if sftp else "",
        "auto_update": settings.auto_update, "tls_cert": settings.tls_cert,
        "check_minute": spread(settings.hostname, "check", 60),
        "update_minute": spread(settings.hostname, "update", 60),
        "update_day": spread(settings.hostname, "update-day", 7),
    }


def offsite_secrets(settings: Settings) -> dict[str, str]:
    """The offsite repository's settings and password (root-only files, 0600)."""
    offsite = settings.backup_offsite
    return secrets(settings.root, offsite) if offsite else {}


def masked(path: str, lines: list[str]) -> list[str]:
    """`lines` of the file at `path` as --diff may show them: password hashes, the relay
    password, keys, the offsite password and credentials in its URL replaced by ********."""
    if "/keys/" in path:
        return ["******** (a key: not shown)"] if lines else []
    if path.endswith("/offsite/password"):
        return ["********" for _ in lines]
    if path.endswith("/offsite/env"):       # credentials of mailorama_backup_offsite's env
        return [shown_repository(line) if line.startswith(("#", "RESTIC_")) or "=" not in line
                else line.split("=", 1)[0] + "=********" for line in lines]
    name = path.rsplit("/", 1)[-1]
    if f"config/{name}" not in SECRET_CONFIG or f"/config/{name}" not in path:
        return lines
    out = []
    for line in lines:
        if line.startswith("#") or not line.strip():
            out.append(line)
        elif name == "passwd":                     # name:hash:uid:gid::home::
            fields = line.split(":")
            out.append(":".join(fields[:1] + ["********"] + fields[2:]))
        elif name == "relay-secrets":              # relay user:password
            out.append(line.split(":", 1)[0] + ":********")
        else:                                      # credentials: name hash
            out.append(line.split()[0] + " ********")
    return out


def new_dkim_keys() -> dict[str, bytes]:
    """Fresh DKIM private keys (PEM) by kind: RSA-2048 and Ed25519. Made by the deploy before
    the container first starts, so the first summary already has their DNS records."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    keys = {"rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ed25519": ed25519.Ed25519PrivateKey.generate()}
    return {kind: key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            for kind, key in keys.items()}


def dkim_files(settings: Settings, keys: dict[str, bytes]) -> dict[str, tuple[bytes, int]]:
    """The keys folder's DKIM files for new `keys`: private keys (0600) and the DNS TXT values
    of each selector (0644), as mailorama-apply writes them too."""
    from .dns import dkim_txt

    folder = f"{settings.root}/keys/dkim"
    selectors = dict(settings.dkim_selectors)
    files = {}
    for kind, pem in keys.items():
        files[f"{folder}/{kind}.key"] = (pem, 0o600)
        files[f"{folder}/{selectors[kind]}.txt"] = (f"{dkim_txt(pem)}\n".encode(), 0o644)
    return files


def diff_sides(path: str, old: list[str], new: list[str]) -> tuple[list[str], list[str]]:
    """The two sides of a --diff of the file at `path`, secrets masked; a changed secret, which
    masks to the same text, is marked '(changed)'."""
    old_shown, new_shown = masked(path, old), masked(path, new)
    if len(new_shown) == len(new) and new_shown != new:
        before, shown_before = set(old), set(old_shown)
        new_shown = [f"{m}  (changed)" if line not in before and m in shown_before else m
                     for line, m in zip(new, new_shown)]
    return old_shown, new_shown
