"""Real deploys: `pyinfra inventory.py deploy.py` over SSH to the rig's sshd on 127.0.0.1.

The tests run in file order against one deployed host (this machine, reached over SSH).
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
from pathlib import Path

import pytest

from mail import arrived, message, send, smtp, subjects, wait_for
from mailorama import config as cfg
from mailorama.cli import hash_password
from project import NAME, PORTS, Project, started_at

pytestmark = pytest.mark.deploy
SMTP, IMAP = PORTS["smtp"], PORTS["imap"]
PW = cfg.EXAMPLE_PASSWORDS


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    subprocess.run(["docker", "rm", "-f", NAME], capture_output=True)
    p = Project(tmp_path_factory.mktemp("deploy"))
    yield p
    subprocess.run(["docker", "rm", "-f", NAME], capture_output=True)
    Path(f"/etc/cron.d/{NAME}").unlink(missing_ok=True)


def test_first_deploy_serves_mail(project):
    out = project.deployed()
    assert out["results"]["totals"]["error"] == 0
    send(SMTP, message("bob@rooney.example", "al@bundy.net", "first-deploy"))
    assert arrived(IMAP, "al", PW["al"], "first-deploy")
    assert oct(project.root.joinpath("config").stat().st_mode & 0o777) == "0o700"
    assert project.root.joinpath("config/passwd").stat().st_mode & 0o077 == 0


def test_no_change_redeploy_changes_nothing(project):
    before = started_at()
    result = project.deploy()
    assert result.returncode == 0, result.stderr[-3000:]
    totals = json.loads(result.stdout)["results"]["totals"]
    assert totals["success"] == 0 and totals["error"] == 0 and totals["no_change"] > 0, totals
    assert "server unchanged" in result.stderr
    assert "DNS TXT rsa._domainkey.{bundy.net,darcy.net,nomaam.org}: v=DKIM1; k=rsa; p=" \
        in result.stderr
    assert started_at() == before


def test_added_address_domain_and_account_apply_live(project):
    before = started_at()
    with project.file("domains").open("a") as f:
        f.write("griffs.net\n")
    with project.file("accounts").open("a") as f:
        f.write(f"griff 1010 {hash_password('grease', rounds=5000)}\n")
    with project.file("virtuals").open("a") as f:
        f.write("griff@griffs.net griff\npostmaster@griffs.net griff\nabuse@griffs.net griff\n"
                "new@bundy.net peg\n")
    result = project.deploy()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Apply changed config live" in result.stderr
    send(SMTP, message("bob@rooney.example", ["griff@griffs.net", "new@bundy.net"], "added"))
    assert arrived(IMAP, "griff", "grease", "added")
    assert arrived(IMAP, "peg", PW["peg"], "added")
    assert started_at() == before


BROKEN = [
    ("virtuals", "pegy@bundy.net pegy\n", "target 'pegy' is neither an account"),
    ("accounts", "dup 1001 $6$rounds=5000$abc$" + "a" * 86 + "\n", "uid 1001 of account 'dup'"),
    ("accounts", "plain 1050 hunter2\n", "account 'plain': the password is not hashed"),
    ("virtuals", "x@nothosted.example al\n", "which is not in domains"),
    ("virtuals", "a@bundy.net b@bundy.net\nb@bundy.net a@bundy.net\n", "delivers to itself"),
]


@pytest.mark.parametrize("name, extra, expected", BROKEN)
def test_broken_config_touches_nothing(project, name, extra, expected):
    before, files = started_at(), project.host_state()
    original = project.file(name).read_text()
    lines = len(original.splitlines())
    project.file(name).write_text(original + extra)
    try:
        result = project.deploy()
    finally:
        project.file(name).write_text(original)
    assert result.returncode != 0
    assert f"{name}:{lines + 1}: " in result.stderr and expected in result.stderr, result.stderr
    assert "Beginning operation run" not in result.stderr
    assert project.host_state() == files and started_at() == before
    with smtp(SMTP) as s:                               # the old config still serves
        s.ehlo("client.test")
        s.mail("bob@rooney.example")
        assert s.rcpt("griff@griffs.net")[0] == 250


def test_published_passwords_never_leave_loopback(project):
    files = project.host_state()
    result = project.deploy(mailorama_listen=[])
    assert result.returncode != 0
    assert "use the example's published passwords" in result.stderr
    assert project.host_state() == files


def test_renumbering_an_account_with_mail(project):
    accounts = project.file("accounts").read_text()
    project.file("accounts").write_text(accounts.replace("al         1000", "al         1099"))
    files = project.host_state()
    result = project.deploy()
    assert result.returncode != 0
    assert "account 'al' now has uid 1099, but its mail on the host is owned by uid 1000" \
        in result.stderr
    assert project.host_state() == files
    project.deployed(mailorama_allow_renumber=True)
    assert (project.data / "mail" / "al").stat().st_uid == 1099
    assert "first-deploy" in wait_for(lambda: subjects(IMAP, "al", PW["al"]),
                                      what="al's old mail")
    send(SMTP, message("bob@rooney.example", "al@bundy.net", "after-renumber"))
    assert arrived(IMAP, "al", PW["al"], "after-renumber")


def host_sendmail(subject: str, env: dict | None = None):
    subprocess.run(["/usr/sbin/sendmail", "root"], input=f"Subject: {subject}\n\ntest\n",
                   text=True, check=True, timeout=60, env=env)


def installed(package: str) -> bool:
    out = subprocess.run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", package],
                         capture_output=True, text=True)
    return out.stdout.startswith("ii")


def test_host_sendmail_msmtp_shim_and_back(project):
    assert installed("msmtp-mta")
    host_sendmail("via-msmtp")
    assert arrived(IMAP, "al", PW["al"], "via-msmtp")

    project.deployed(mailorama_host_mail="shim")
    assert not installed("msmtp-mta")
    assert b"sendmail shim" in Path("/usr/sbin/sendmail").read_bytes()
    assert not Path("/etc/msmtprc").exists()
    host_sendmail("via-shim")
    assert arrived(IMAP, "al", PW["al"], "via-shim")
    # the environment names the container, and a wrong one fails loudly
    bad = subprocess.run(["/usr/sbin/sendmail", "root"], input="Subject: x\n\nx\n", text=True,
                         env=dict(os.environ, MAILORAMA_CONTAINER="no-such-box"))
    assert bad.returncode != 0
    assert project.deploy(mailorama_host_mail="shim").returncode == 0  # converged: no change

    project.deployed()                                      # back to msmtp
    assert installed("msmtp-mta") and Path("/etc/msmtprc").exists()
    assert not Path("/etc/mail-o-rama/sendmail.ini").exists()
    host_sendmail("via-msmtp-again")
    assert arrived(IMAP, "al", PW["al"], "via-msmtp-again")
    totals = project.deployed()["results"]["totals"]
    assert totals["success"] == 0, totals

    project.deployed(mailorama_host_mail="none")            # none: Mail-o-Rama's files go
    assert not Path("/etc/msmtprc").exists()
    assert not Path("/etc/mail-o-rama/msmtp-aliases").exists()
    project.deployed()
    assert Path("/etc/msmtprc").exists()


def test_cron_job_command_writes_todays_backups(project):
    cron = Path(f"/etc/cron.d/{NAME}").read_text()
    line = next(l for l in cron.splitlines() if l and l[0].isdigit())
    command = line.split(None, 6)[6]
    assert command == f"docker exec -e BACKUP_RETENTION_DAYS=14 {NAME} /backup.sh"
    subprocess.run(["sh", "-c", command], check=True, timeout=120)
    today = datetime.date.today().isoformat()
    for account in ("al", "peg", "griff"):
        assert (project.data / "backup" / account / f"{today}.tar.gz").stat().st_size > 0
