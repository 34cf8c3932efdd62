"""Declarative Sieve filters: `<config_dir>/sieve/<account>.sieve`, one per account, in git.

Each becomes that account's first filter: Dovecot runs it before the script the account
activated over ManageSieve, and runs that one only when this one keeps the message. This
module checks the folder (names, encoding, size) on the machine that deploys; `sievec` in the
container compiles each script before it goes live (mailorama-apply) and refuses a bad one
with `sieve/<account>.sieve:LINE`. Before anything is pushed, the deploy also compiles them
with `sievec` in the image already on the host (`check_command`), when there is one.
"""

from __future__ import annotations

import base64
import re
import shlex
from pathlib import Path

from .config import ConfigError, read_bytes

FOLDER = "sieve"
MAX_SIZE = 1024 * 1024        # Dovecot's sieve_max_script_size default
LIVE = "/etc/dovecot/mail-o-rama/sieve"


def collect(files: dict[str, bytes], accounts) -> tuple[dict[str, str], list[str]]:
    """(account -> script text, errors) for the files of the sieve folder (name -> bytes)."""
    accounts = set(accounts)
    scripts, errors = {}, []
    for name, data in sorted(files.items()):
        where = f"{FOLDER}/{name}"
        account = name.removesuffix(".sieve")
        if not name.endswith(".sieve") or name.startswith("."):
            errors.append(f"{where}: not a Sieve script; name it <account>.sieve or move it "
                          f"out of {FOLDER}/")
        elif account not in accounts:
            errors.append(f"{where}: no account {account!r} in accounts; rename the file to "
                          "<account>.sieve or remove it")
        elif len(data) > MAX_SIZE:
            errors.append(f"{where}: {len(data)} bytes, more than {MAX_SIZE}; make it shorter")
        else:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as e:
                line = data[:e.start].count(b"\n") + 1
                errors.append(f"{where}:{line}: not UTF-8 text; save it as UTF-8")
                continue
            scripts[account] = text.replace("\r\n", "\n")
    return scripts, errors


def load(config_dir: str | Path, accounts) -> dict[str, str]:
    """The declarative scripts of `config_dir`, by account; ConfigError naming every problem."""
    folder = Path(config_dir) / FOLDER
    if not folder.exists():
        return {}
    if not folder.is_dir():
        raise ConfigError([f"{folder}: not a folder; make it one holding <account>.sieve files"])
    files, unread = {}, []
    for path in folder.iterdir():
        try:        # never a FIFO waited on or a device read without end; no file skipped
            files[path.name] = read_bytes(path)
        except OSError as e:
            unread.append(f"{FOLDER}/{path.name}: cannot read: {e.strerror}")
    scripts, errors = collect(files, accounts)
    errors = sorted(unread) + errors
    if errors:
        raise ConfigError([f"{folder.parent}/{e}" for e in errors])
    return scripts


def rendered(scripts: dict[str, str], accounts) -> dict[str, str]:
    """`config/<account>.sieve` for every account: its script as written (line numbers stay
    the user's), or a comment only, so that removing a script from git removes its filter."""
    return {f"config/{account}.sieve":
            scripts.get(account, f"# Made by Mail-o-Rama: no {FOLDER}/{account}.sieve\n")
            for account in sorted(accounts)}


def check_command(image: str, scripts: dict[str, str]) -> str:
    """A host command compiling `scripts` with sievec in a throwaway container of `image`
    (no network); prints `sieve/<account>.sieve:LINE: error: ...` lines, nothing when all
    compile or when the host has no such image yet."""
    # the image's dovecot.conf is a link to the live config, absent here: a bare one
    steps = ["cd /tmp", "printf 'dovecot_config_version = 2.4.0\\ndovecot_storage_version = "
             "2.4.0\\n' > check.conf"]
    for account, text in sorted(scripts.items()):
        data = base64.b64encode(text.encode()).decode()
        steps.append(f"echo {data} | base64 -d > {account}.sieve; "
                     f"sievec -c check.conf {account}.sieve >/dev/null 2>{account}.err "
                     f"|| sed 's/^/{account}: /' {account}.err")
    inner = "; ".join(steps)
    return (f"if docker image inspect {shlex.quote(image)} >/dev/null 2>&1; then docker run "
            f"--rm --network none --entrypoint /bin/sh {shlex.quote(image)} -c "
            f"{shlex.quote(inner)}; fi")


def check_errors(lines) -> list[str]:
    """`sieve/<account>.sieve:LINE: error: ...` from check_command's output (sievec's own
    words after the account name); other failures as they are."""
    errors = []
    for line in lines:
        account, _, rest = line.partition(": ")
        match = re.match(rf"{re.escape(account)}: line (\d+): (error: .*)", rest)
        if match:
            errors.append(f"{FOLDER}/{account}.sieve:{match[1]}: {match[2]}")
        elif rest and not re.fullmatch(rf"{re.escape(account)}: error: \w+ failed\.", rest) \
                and "Fatal: failed to compile" not in rest:
            errors.append(f"{FOLDER}/{account}.sieve: {rest}")
    return errors
