"""Offsite backups with restic, and the host's upkeep jobs (backup, restore, update, self-check):
the settings' checks and the values the host scripts are rendered with. Pure."""

from __future__ import annotations

import hashlib
import re
import shlex
from dataclasses import dataclass
from typing import Mapping

KEEP = {"daily": 7, "weekly": 4, "monthly": 6, "yearly": 0}
# restic repository URLs: a local path or one of restic's backends
_SCHEMES = ("sftp:", "rest:", "s3:", "b2:", "azure:", "gs:", "swift:", "rclone:")
_CREDENTIALS = re.compile(r"(://[^/@:\s]*:)[^/@\s]*@")
_PATH = re.compile(r"(/[A-Za-z0-9_.+@=-]+)+")
# sftp:user@host:/path, sftp:host:path, sftp://user@host:port//path, sftp://user@[::1]:22/path
# restic's credentials for s3:, b2:, azure:, gs:, rest: ... (AWS_ACCESS_KEY_ID, B2_ACCOUNT_KEY...)
_ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_OURS = ("RESTIC_REPOSITORY", "RESTIC_PASSWORD", "RESTIC_CACHE_DIR")
_SFTP = re.compile(r"sftp:(?://(?P<u1>[^@/\s]+@)?(?P<h1>\[[0-9A-Fa-f:.]+\]|[^:/\s\[\]]+)"
                   r"(?::(?P<port>\d+))?/.+|(?P<u2>[^@/:\s]+@)?(?P<h2>[^:/\s]+):.+)")


@dataclass(frozen=True)
class Offsite:
    repository: str
    password: str
    ssh_key: str | None = None
    env: tuple[tuple[str, str], ...] = ()     # more variables for restic (credentials)


def parse_offsite(value, errors: list[str], key: str = "mailorama_backup_offsite"):
    """The offsite repository setting as Offsite, or None (and errors appended)."""
    example = ("{'repository': 'sftp:backup@host.example:/srv/restic/mail', 'password': '...', "
               "'ssh_key': '/root/.ssh/backup_ed25519'} (an s3: repository: 'env': "
               "{'AWS_ACCESS_KEY_ID': '...', 'AWS_SECRET_ACCESS_KEY': '...'})")
    if not isinstance(value, Mapping):
        errors.append(f"{key}: must be a dict like {example}, got {value!r}")
        return None
    count = len(errors)
    unknown = sorted(str(k) for k in set(value) - {"repository", "password", "ssh_key", "env"})
    if unknown:
        errors.append(f"{key}: unknown key(s) {', '.join(unknown)}; use repository, password, "
                      "ssh_key, env")
    env = _parse_env(value.get("env", {}), errors, f"{key}['env']")
    repo, password, ssh_key = value.get("repository"), value.get("password"), value.get("ssh_key")
    if (not isinstance(repo, str) or not repo or any(c.isspace() or c in "'\"\\" for c in repo)
            or not (repo.startswith(_SCHEMES) or _PATH.fullmatch(repo))):
        errors.append(f"{key}: repository must be a restic repository like "
                      f"'sftp:user@host:/path' or an absolute path, got {_shown(repo)!r}")
    elif repo.startswith("sftp:") and not _SFTP.fullmatch(repo):
        errors.append(f"{key}: repository {_shown(repo)!r} is not 'sftp:user@host:/path' or "
                      "'sftp://user@host:port//path'")
    if not isinstance(password, str) or not password.strip() or "\n" in password \
            or "\r" in password:
        errors.append(f"{key}: password must be a non-empty string on one line (it encrypts "
                      "the repository: keep a copy apart from the server)")
    if ssh_key is not None:
        if not isinstance(ssh_key, str) or not _PATH.fullmatch(ssh_key) or "/../" in ssh_key:
            errors.append(f"{key}: ssh_key must be an absolute path on the host like "
                          f"/root/.ssh/backup_ed25519, got {ssh_key!r}")
        elif isinstance(repo, str) and not repo.startswith("sftp:"):
            errors.append(f"{key}: ssh_key is for 'sftp:' repositories only")
    if len(errors) > count:
        return None
    return Offsite(repo, password, ssh_key, env)


def _parse_env(value, errors: list[str], key: str) -> tuple[tuple[str, str], ...]:
    """restic's environment for the repository's credentials: {NAME: value} on one line each."""
    if not isinstance(value, Mapping):
        errors.append(f"{key}: must be a dict of environment variables like "
                      f"{{'AWS_ACCESS_KEY_ID': '...'}}, got {type(value).__name__}")
        return ()
    count = len(errors)
    for name, text in value.items():
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
            errors.append(f"{key}: {name!r} is not a variable name (A-Z, 0-9, _)")
        elif name.startswith(_OURS):
            errors.append(f"{key}: {name} is set from repository and password; leave it out")
        elif not isinstance(text, str) or not text or not text.isprintable():
            errors.append(f"{key}: {name} must be a non-empty string on one line")
    return () if len(errors) > count else tuple(sorted(value.items()))


def parse_keep(value, errors: list[str], key: str = "mailorama_backup_keep"):
    """The retention policy (daily, weekly, monthly, yearly counts) over the defaults."""
    if not isinstance(value, Mapping):
        errors.append(f"{key}: must be a dict like {{'daily': 7, 'weekly': 4, 'monthly': 6}}, "
                      f"got {value!r}")
        return None
    keep = dict(KEEP)
    for name, count in value.items():
        if name not in KEEP:
            errors.append(f"{key}: unknown period {name!r}; use {', '.join(KEEP)}")
        elif not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 10000:
            errors.append(f"{key}: {name} must be a whole number 0-10000, got {count!r}")
        else:
            keep[name] = count
    if not any(keep.values()):
        errors.append(f"{key}: keeps nothing; give at least one period a count above 0")
    return tuple(keep.items())


def ssh_command(repository: str, ssh_key: str | None, known_hosts: str) -> str | None:
    """restic's sftp.command for an sftp repository (None for other backends): no prompts,
    the server's key pinned on first use in `known_hosts`, the given key; a server that does
    not answer fails within 30 s (at connect) or 3 minutes (later), never hangs."""
    match = _SFTP.fullmatch(repository)
    if not match:
        return None
    user = match["u1"] or match["u2"] or ""
    host = (match["h1"] or match["h2"]).strip("[]")
    args = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=30",
            "-o", "ServerAliveInterval=60",
            "-o", "StrictHostKeyChecking=accept-new", "-o", f"UserKnownHostsFile={known_hosts}"]
    if ssh_key:
        args += ["-o", "IdentitiesOnly=yes", "-i", ssh_key]
    if match["port"]:
        args += ["-p", match["port"]]
    return " ".join(shlex.quote(a) for a in [*args, f"{user}{host}", "-s", "sftp"])


def _shown(value):
    return shown_repository(value) if isinstance(value, str) else value


def shown_repository(text: str) -> str:
    """`text` with the password of a repository URL (rest:https://user:password@host/)
    replaced by ********: for summaries and --diff."""
    return _CREDENTIALS.sub(r"\1********@", text)


def forget_args(keep) -> str:
    """restic forget's policy flags, e.g. --keep-daily 7 --keep-weekly 4."""
    return " ".join(f"--keep-{name} {count}" for name, count in keep if count)


def secrets(root: str, offsite: Offsite) -> dict[str, str]:
    """The files in `root`/offsite (root-only, 0600) with the repository's settings and
    password."""
    folder = f"{root}/offsite"
    env = (f"# Made by Mail-o-Rama from mailorama_backup_offsite.\n"
           f"RESTIC_REPOSITORY={shlex.quote(offsite.repository)}\n"
           f"RESTIC_PASSWORD_FILE={folder}/password\n"
           f"RESTIC_CACHE_DIR={folder}/cache\n"
           + "".join(f"{name}={shlex.quote(text)}\n" for name, text in offsite.env))
    return {f"{folder}/env": env, f"{folder}/password": f"{offsite.password}\n"}


def marker(files: dict[str, str]) -> str:
    """What the deploy writes once the repository answers to the `secrets` files: their hash,
    made on the host (no secret on a command line). A changed repository or password checks
    (and initialises) again."""
    digest = hashlib.sha256("".join(files[p] for p in sorted(files)).encode()).hexdigest()
    return f"{digest}  -\n"


def marker_command(files: dict[str, str], path: str) -> str:
    """Writes `marker` of the `secrets` files at `path`, root-only."""
    names = " ".join(shlex.quote(p) for p in sorted(files))
    return f"(umask 077 && cat {names} | sha256sum > {shlex.quote(path)})"


def spread(hostname: str, salt: str, modulo: int) -> int:
    """A number in range(modulo) fixed per host name: spreads the hosts' jobs over time."""
    return int(hashlib.sha256(f"{salt}{hostname}".encode()).hexdigest(), 16) % modulo
