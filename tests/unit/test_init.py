"""`mailorama init`: the answers checked, the repository it writes valid as written, never a file
overwritten; group_data/all.py lists every setting with its default; the CI example is what init
writes."""

from __future__ import annotations

import ast
import os
import pty
import runpy
import select
import sys
import time
from dataclasses import fields
from pathlib import Path

import pytest
from passlib.hash import sha512_crypt

from mailorama import config as cfg
from mailorama import init
from mailorama.cli import main
from mailorama.settings import Settings, settings_from

REPO = Path(__file__).resolve().parents[2]
ANSWERS = {"domain": "example.org", "account": "me"}      # the example's answers
PASSWORD = "correct horse battery"


def answers(**changes) -> dict:
    return init.defaults({**ANSWERS, **changes})


def run_init(tmp_path: Path, *flags: str, password: str = PASSWORD, target: str = "repo"):
    secret = tmp_path / "password"
    secret.write_text(password + "\n")
    return main(["init", str(tmp_path / target), "--domain", "Example.ORG", "--account", "Me",
                 "--password-file", str(secret), *flags])


def test_defaults_follow_from_the_domain():
    assert answers() == {**ANSWERS, "hostname": "mail.example.org", "host": "mail.example.org",
                         "ssh_user": "root"}
    assert answers(hostname="mx.example.org")["host"] == "mx.example.org"
    assert answers(host="203.0.113.5")["hostname"] == "mail.example.org"
    assert init.problems(answers()) == []


@pytest.mark.parametrize("change, expected", [
    ({"domain": "not a domain"}, "--domain: 'not a domain' is not a domain name"),
    ({"hostname": "mail"}, "--hostname: 'mail' is not a fully qualified host name"),
    ({"hostname": "example.org"}, "--hostname: the host name may not be the mail domain itself"),
    ({"host": "bad host"}, "--host: 'bad host' is not a host name or IP address"),
    ({"ssh_user": "Root Beer"}, "--ssh-user: 'Root Beer' is not a user name"),
    ({"account": "9lives!"}, "--account: '9lives!' is not valid"),
    ({"account": "dovecot"}, "--account: 'dovecot' is a system user of the container"),
    ({"account": ""}, "--account: missing"),
])
def test_each_bad_answer_names_its_flag(change, expected):
    given = {**ANSWERS, "hostname": "mail.example.org", "host": "mail.example.org"}
    problems = init.problems(init.defaults({**given, **change}))
    assert len(problems) == 1 and problems[0].startswith(expected), problems


@pytest.mark.parametrize("password, expected", [
    ("short", "at least 10 characters"),
    ("4touchdowns", "published passwords"),
])
def test_weak_or_published_passwords_are_refused(password, expected):
    assert expected in init.password_problem(password)
    assert init.password_problem(PASSWORD) is None


def test_the_repository_it_writes(tmp_path, capsys):
    assert run_init(tmp_path) == 0
    repo = tmp_path / "repo"
    written = sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file())
    assert written == sorted(init.FILES)
    assert (repo / "deploy.py").read_text() == \
        "from mailorama.deploy import mail_server\nmail_server()\n"
    assert (repo / "group_data/all.py").read_text() == (REPO / "group_data/all.py").read_text()
    assert "pyinfra-debug.log" in (repo / ".gitignore").read_text().splitlines()
    assert (repo / "mail/accounts").stat().st_mode & 0o077 == 0

    config = cfg.load(repo / "mail")
    assert config.warnings == ()
    account, = config.accounts
    assert (account.name, account.uid) == ("me", 1000)
    assert sha512_crypt.verify(PASSWORD, account.hash) and "rounds=50000$" in account.hash
    assert dict(config.virtuals) == {"abuse@example.org": ("me",), "me@example.org": ("me",),
                                     "postmaster@example.org": ("me",)}
    assert dict(config.aliases)["root"] == ("me",)

    inventory = runpy.run_path(str(repo / "inventory.py"))
    assert inventory["mail"] == [("mail.example.org", {
        "ssh_user": "root", "mailorama_hostname": "mail.example.org"})]
    capsys.readouterr()
    assert main(["check", str(repo / "mail")]) == 0
    out = capsys.readouterr()
    assert "warning" not in out.err and "ok: 1 accounts, 1 domains, 3 addresses" in out.out


def test_a_sudoer_gets_sudo_and_the_ssh_address_stays_apart(tmp_path):
    assert run_init(tmp_path, "--ssh-user", "deploy", "--host", "203.0.113.5",
                    "--hostname", "mx.example.org") == 0
    inventory = runpy.run_path(str(tmp_path / "repo" / "inventory.py"))
    assert inventory["mail"] == [("203.0.113.5", {
        "ssh_user": "deploy", "_sudo": True, "mailorama_hostname": "mx.example.org"})]


def test_never_overwrites_and_writes_nothing_when_refusing(tmp_path, capsys):
    repo = tmp_path / "repo"
    (repo / "mail").mkdir(parents=True)
    (repo / "mail" / "accounts").write_text("mine\n")
    (repo / "README.md").write_text("my repository\n")
    assert run_init(tmp_path) == 2
    assert "repo/mail/accounts: exists; mailorama init never overwrites" in capsys.readouterr().err
    assert (repo / "mail" / "accounts").read_text() == "mine\n"
    assert sorted(p.name for p in repo.rglob("*")) == ["README.md", "accounts", "mail"]

    (repo / "mail" / "accounts").unlink()          # a folder with other files is fine
    assert run_init(tmp_path) == 0
    assert (repo / "README.md").read_text() == "my repository\n"


def test_bad_answers_and_passwords_are_refused_before_anything_is_written(tmp_path, capsys):
    assert run_init(tmp_path, "--hostname", "example.org") == 2
    assert "--hostname: the host name may not be the mail domain" in capsys.readouterr().err
    assert run_init(tmp_path, password="4touchdowns") == 2
    assert "published passwords" in capsys.readouterr().err
    assert not (tmp_path / "repo").exists()


def test_group_data_all_lists_every_setting_with_its_default():
    text = (REPO / "group_data/all.py").read_text()
    assigned = [n.targets[0].id for n in ast.parse(text).body if isinstance(n, ast.Assign)]
    assert len(assigned) == len(set(assigned)), "a setting is assigned twice"
    defaults = {k: v for k, v in runpy.run_path(str(REPO / "group_data/all.py")).items()
                if k.startswith("mailorama_")}
    assert sorted(defaults) == sorted(f"mailorama_{f.name}" for f in fields(Settings))
    fqdn = "mail.example.org"
    assert settings_from(defaults, fqdn=fqdn) == settings_from({}, fqdn=fqdn)


def test_the_ci_example_is_what_init_writes():
    written = init.files({**answers(), "password_hash": ""})[".github/workflows/deploy.yml"][0]
    assert (REPO / "examples/deploy-workflow.yml").read_text() == written, (
        "examples/deploy-workflow.yml differs from the init template; render it again with "
        "mailorama.init.files(mailorama.init.defaults({'domain': 'example.org', "
        "'account': 'me'}))")


def test_asks_on_a_terminal_and_again_after_a_bad_answer(tmp_path):
    """A real terminal (a pty): the questions with their defaults, the password twice."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, "-m", "mailorama.cli", "init",
                                  str(tmp_path / "repo")])
    seen, transcript = b"", b""

    def answer(prompt: str, text: str):
        nonlocal seen, transcript
        deadline = time.monotonic() + 30
        while prompt.encode() not in seen:
            assert time.monotonic() < deadline, transcript.decode(errors="replace")
            if select.select([fd], [], [], 1)[0]:
                chunk = os.read(fd, 4096)
                seen, transcript = seen + chunk, transcript + chunk
        seen = seen.split(prompt.encode(), 1)[1]
        os.write(fd, text.encode() + b"\n")

    answer("First mail domain (like example.org): ", "example.org")
    answer("host name [mail.example.org]: ", "Example.org")      # refused at once, asked again
    answer("host name [mail.example.org]: ", "")
    answer("SSH address (name or IP) [mail.example.org]: ", "")
    answer("SSH user (root, or a sudoer) [root]: ", "")
    answer("First account (login name): ", "Bad Name")
    answer("First account (login name): ", "me")
    answer("Password: ", PASSWORD)
    answer("Again: ", PASSWORD)
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:        # the child closed the terminal
            break
        if not chunk:
            break
        transcript += chunk
    assert os.waitpid(pid, 0)[1] == 0, transcript.decode(errors="replace")
    assert b"--account: 'Bad Name' is not valid" in transcript
    assert b"--hostname: the host name may not be the mail domain itself" in transcript
    assert PASSWORD.encode() not in transcript              # never echoed
    inventory = runpy.run_path(str(tmp_path / "repo" / "inventory.py"))
    assert inventory["mail"] == [("mail.example.org", {
        "ssh_user": "root", "mailorama_hostname": "mail.example.org"})]
    account, = cfg.load(tmp_path / "repo" / "mail").accounts
    assert account.name == "me" and sha512_crypt.verify(PASSWORD, account.hash)
