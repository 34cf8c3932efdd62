"""The `mailorama` command: local tools around the four config files."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from . import config as cfg

# SHA512-crypt at 50,000 rounds: about 12 ms per check here. OpenSMTPD's one lookup process
# blocks for each SMTP AUTH check, so the cost is a trade between offline cracking and logins/s.
HASH_ROUNDS = 50_000
MAX_PASSWORD = 4096     # bytes passlib hashes (PasswordSizeError above)


def hash_password(password: str, rounds: int = HASH_ROUNDS) -> str:
    from passlib.hash import sha512_crypt

    return sha512_crypt.using(rounds=rounds).hash(password)


def password_error(password: str) -> str | None:
    """Why `password` cannot be hashed (None: it can)."""
    try:
        size = len(password.encode("utf-8"))
    except UnicodeEncodeError:
        return "the password is not UTF-8 text"
    if "\0" in password:
        return "the password holds a NUL byte, which crypt() cannot hash"
    if size > MAX_PASSWORD:
        return f"the password is longer than {MAX_PASSWORD} bytes"
    return None


def _read_password() -> str:
    if not sys.stdin.isatty():
        try:
            password = sys.stdin.readline(MAX_PASSWORD + 2).rstrip("\r\n")
        except UnicodeDecodeError:
            raise SystemExit("mailorama: the password is not UTF-8 text; nothing printed") from None
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise SystemExit("mailorama: the two passwords differ; nothing printed")
    if not password:
        raise SystemExit("mailorama: empty password refused")
    if error := password_error(password):
        raise SystemExit(f"mailorama: {error}; nothing printed")
    return password


def cmd_check(args) -> int:
    from . import sieve

    try:
        config = cfg.load(args.dir)
        scripts = sieve.load(args.dir, (a.name for a in config.accounts))
    except cfg.ConfigError as e:
        for error in e.errors:
            print(error, file=sys.stderr)
        print(f"{len(e.errors)} error(s) in {args.dir}", file=sys.stderr)
        return 1
    for warning in config.warnings:
        print(warning, file=sys.stderr)
    print(f"{args.dir}: ok: {len(config.accounts)} accounts, {len(config.domains)} domains, "
          f"{len(config.virtuals)} addresses, {len(config.aliases)} aliases, "
          f"{len(scripts)} sieve scripts")
    return 0


def cmd_hash_password(args) -> int:
    if not 1000 <= args.rounds <= 999_999_999:
        raise SystemExit("mailorama: --rounds must be 1000 to 999999999")
    print(hash_password(_read_password(), args.rounds))
    return 0


def cmd_render(args) -> int:
    from .contract import SECRET_CONFIG
    from .render import render
    from .settings import settings_from

    try:
        config = cfg.load(args.dir)
        data = {f"mailorama_{k}": v for k, v in _pairs(args.set).items()}
        settings = settings_from(data, fqdn=args.hostname)
    except cfg.ConfigError as e:  # SettingsError too
        print("\n".join(e.errors), file=sys.stderr)
        return 1
    out = Path(args.out)
    for rel, text in render(config, settings).items():
        path = out / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            path.chmod(0o600 if rel in SECRET_CONFIG else 0o644)
        except OSError as e:
            print(f"mailorama render: cannot write {path}: {e.strerror}", file=sys.stderr)
            return 1
    print(f"rendered into {out}")
    return 0


def _pairs(items: list[str]) -> dict:
    import ast

    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            out[key] = value            # as text: the settings' check names what is wrong
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mailorama", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check", help="validate the four config files; print every error")
    p.add_argument("dir", nargs="?", default="mail")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("hash-password", help="prompt twice (or read stdin) and print a hash")
    p.add_argument("--rounds", type=int, default=HASH_ROUNDS, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_hash_password)
    p = sub.add_parser("render", help="write the files a host would get into a folder")
    p.add_argument("dir")
    p.add_argument("out")
    p.add_argument("--hostname", default="mail.example.org")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting without its mailorama_ prefix, e.g. ports={'smtp':2525}")
    p.set_defaults(func=cmd_render)
    from .init import add_parser as add_init
    add_init(sub)
    from .hosts import add_commands
    add_commands(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (KeyboardInterrupt, EOFError):
        # Ctrl-C, or Ctrl-D at a prompt: stopped, never a traceback
        print(f"\nmailorama {args.command}: stopped; nothing written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
