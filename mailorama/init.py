"""`mailorama init DIR`: a new user's deploy repository.

Pure core: `problems` checks the answers, `files` renders the repository from them
(path -> (text, mode)). The shell (`run`) asks or reads the answers and writes the files, never
over an existing one.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata, resources
from pathlib import Path

from . import config as cfg
from .plan import config_problems
from .render import render_template
from .settings import settings_from

TEMPLATES = resources.files("mailorama") / "templates" / "init"
# path in the new repository -> template under templates/init (.j2: rendered, else copied)
FILES = {
    "mail/accounts": "mail/accounts.j2",
    "mail/domains": "mail/domains.j2",
    "mail/virtuals": "mail/virtuals.j2",
    "mail/aliases": "mail/aliases.j2",
    "inventory.py": "inventory.py.j2",
    "deploy.py": "deploy.py",
    "group_data/all.py": "group_data/all.py",
    ".gitignore": "gitignore",
    ".github/workflows/deploy.yml": "github/workflows/deploy.yml.j2",
}
SECRET = {"mail/accounts"}          # password hashes: 0600
MIN_PASSWORD = 10                   # guessing is throttled (README: Security notes), not impossible
# (answer, flag, question) in the order they are asked
QUESTIONS = (
    ("domain", "--domain", "First mail domain (like example.org)"),
    ("hostname", "--hostname", "The mail server's host name"),
    ("host", "--host", "Its SSH address (name or IP)"),
    ("ssh_user", "--ssh-user", "SSH user (root, or a sudoer)"),
    ("account", "--account", "First account (login name)"),
)
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?")
_USER = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
_SOME_HASH = "$6$rounds=5000$salt$" + "a" * 86     # stands in until the password is read



def defaults(answers: dict) -> dict:
    """The answers with the defaults filled in where one follows from another."""
    out = dict(answers)
    domain = cfg.normalise_domain(out.get("domain") or "")
    if not out.get("hostname") and domain:
        out["hostname"] = f"mail.{domain}"
    if not out.get("host") and out.get("hostname"):
        out["host"] = out["hostname"]
    out["ssh_user"] = out.get("ssh_user") or "root"
    return out


def problem(key: str, value, answers: dict) -> str | None:
    """What is wrong with one answer, given the others so far (None: fine)."""
    flag = dict((k, f) for k, f, _ in QUESTIONS)[key]
    if not value:
        return f"{flag}: missing"
    if key == "domain" and cfg.normalise_domain(value) is None:
        return f"{flag}: {value!r} is not a domain name like example.org"
    if key == "hostname" and (cfg.normalise_domain(value) is None or "." not in value):
        return f"{flag}: {value!r} is not a fully qualified host name like mail.example.org"
    if key == "hostname" and cfg.normalise_domain(value) == cfg.normalise_domain(
            answers.get("domain") or ""):
        return (f"{flag}: the host name may not be the mail domain itself; use a name like "
                f"mail.{answers['domain']}")
    if key == "host" and not _HOST.fullmatch(value):
        return f"{flag}: {value!r} is not a host name or IP address"
    if key == "ssh_user" and not _USER.fullmatch(value):
        return f"{flag}: {value!r} is not a user name"
    if key == "account":
        name = value.lower()
        if not _USER.fullmatch(name):
            return (f"{flag}: {value!r} is not valid; use a letter followed by letters, digits, "
                    "'.', '_' or '-', at most 32 characters")
        if name in cfg.SYSTEM_NAMES:
            return f"{flag}: {name!r} is a system user of the container; pick another name"
    return None


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD:
        return (f"password: at least {MIN_PASSWORD} characters (guessing is slowed down, "
                "not stopped)")
    if password in cfg.EXAMPLE_PASSWORDS.values():
        return "password: that is one of the example's published passwords; pick another"
    return None


def problems(answers: dict) -> list[str]:
    """Every problem of the answers (after `defaults`), naming the flag; [] when all is fine."""
    out = [p for key, _, _ in QUESTIONS if (p := problem(key, answers.get(key), answers))]
    if out:
        return out
    try:        # what the deploy will check, so a fresh repository passes it
        config = cfg.parse(mail_texts(dict(answers, password_hash=_SOME_HASH)))
        settings = settings_from({"mailorama_hostname": answers["hostname"]})
    except cfg.ConfigError as e:       # SettingsError too
        return e.errors
    return config_problems(config, settings, "mail") + list(config.warnings)


def _context(answers: dict) -> dict:
    return {
        "domain": cfg.normalise_domain(answers["domain"]),
        "hostname": cfg.normalise_domain(answers["hostname"]),
        "host": answers["host"],
        "ssh_user": answers["ssh_user"],
        "account": answers["account"].lower(),
        "password_hash": answers.get("password_hash") or "",
        "version": answers.get("version") or metadata.version("mail-o-rama"),
    }


def _render(template: str, context: dict) -> str:
    if template.endswith(".j2"):
        return render_template(f"init/{template}", context)
    return (TEMPLATES / template).read_text()


def mail_texts(answers: dict) -> dict[str, str]:
    """The four mail files' text (name -> text)."""
    context = _context(answers)
    return {name: _render(FILES[f"mail/{name}"], context) for name in cfg.FILES}


def files(answers: dict) -> dict[str, tuple[str, int]]:
    """Every file of the new repository: path -> (text, mode)."""
    context = _context(answers)
    return {path: (_render(template, context), 0o600 if path in SECRET else 0o644)
            for path, template in FILES.items()}


# The shell: ask or read, then write.

def add_parser(sub) -> None:
    p = sub.add_parser("init", help="make a new deploy repository in DIR (asks, or takes flags)",
                       description="Write mail/, inventory.py, deploy.py, group_data/all.py, "
                       ".gitignore and a CI workflow into DIR; never over an existing file.")
    p.add_argument("dir")
    for key, flag, question in QUESTIONS:
        p.add_argument(flag, dest=key, help=question)
    p.add_argument("--password-file", metavar="FILE",
                   help="read the account's password from FILE's first line ('-': stdin); "
                   "without it: asked twice, or one line from stdin")
    p.set_defaults(func=run)


def _ask(answers: dict) -> dict:
    """Ask for every missing answer on the terminal, again until it is valid."""
    for key, _, question in QUESTIONS:
        while not answers.get(key):
            suggested = defaults(answers).get(key)
            hint = f" [{suggested}]" if suggested else ""
            answers[key] = input(f"{question}{hint}: ").strip() or suggested
            error = problem(key, answers[key], answers)
            if error:
                print(error, file=sys.stderr)
                answers[key] = None
    return answers


def _password(args) -> str:
    from .cli import MAX_PASSWORD, _read_password, password_error

    if args.password_file:
        try:
            stream = sys.stdin if args.password_file == "-" else open(
                args.password_file, encoding="utf-8", errors="surrogateescape")
            with stream:
                password = stream.readline(MAX_PASSWORD + 2).rstrip("\r\n")
        except OSError as e:
            raise SystemExit(f"mailorama init: --password-file: {e.strerror}: "
                             f"{args.password_file}") from None
        except UnicodeDecodeError:      # stdin ("-"); a file's bytes come as surrogates
            raise SystemExit("mailorama init: --password-file: the password is not UTF-8 "
                             "text") from None
        if not password:
            raise SystemExit(f"mailorama init: no password in {args.password_file}")
        if error := password_error(password):
            raise SystemExit(f"mailorama init: --password-file: {error}")
        return password
    return _read_password()


def run(args) -> int:
    from .cli import hash_password

    answers = {key: getattr(args, key) for key, _, _ in QUESTIONS}
    if sys.stdin.isatty() and not all(answers.values()):
        try:
            answers = _ask(answers)
        except (EOFError, KeyboardInterrupt):
            print("\nmailorama init: stopped; nothing written", file=sys.stderr)
            return 1
    answers = defaults(answers)
    errors = problems(answers)
    target = Path(args.dir)
    if target.exists() and not target.is_dir():
        errors.append(f"{target}: not a folder")
    existing = [path for path in FILES if (target / path).exists()]
    errors += [f"{target / path}: exists; mailorama init never overwrites a file (init into a "
               "new folder, or move the file away)" for path in existing]
    if errors:
        print("\n".join(f"mailorama init: {e}" for e in errors), file=sys.stderr)
        return 2
    password = _password(args)
    error = password_problem(password)
    if error:
        print(f"mailorama init: {error}", file=sys.stderr)
        return 2
    answers["password_hash"] = hash_password(password)
    for path, (text, mode) in files(answers).items():
        out = target / path
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "x") as f:      # "x": never over a file that appeared meanwhile
            f.write(text)
        out.chmod(mode)
    print(f"Wrote {len(FILES)} files into {target}. Next:\n"
          f"  cd {target} && git init && git add -A\n"
          "  mailorama check mail                      # the four files, validated\n"
          "  pyinfra inventory.py deploy.py --dry      # what a deploy would change\n"
          "  pyinfra inventory.py deploy.py            # deploy")
    return 0
