"""Offsite backups with restic to the rig's sshd (SFTP), and disaster recovery on a "new host":
the first server is removed, a deploy with the same config and fresh folders brings up the
same container name, one command restores every account, and IMAP shows the same folders and
flags. Also a per-folder restore, and a wrong repository password that fails loudly while the
local backup still runs. One deployed project per phase; the tests run in file order."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from mail import arrived, imap, message, send, subjects, wait_for
from mailorama import config as cfg
from project import Project, docker, forget, sftp_repository, upkeep_scripts

pytestmark = pytest.mark.deploy
NAME = "mor-h10-bk"
PORTS = {"smtp": 4725, "submission": 4787, "submissions": 4765, "imap": 4743, "imaps": 4793}
SMTP, IMAP = PORTS["smtp"], PORTS["imap"]
PW = cfg.EXAMPLE_PASSWORDS
REPO_DIR = Path("/var/tmp/mor-h10-restic")
SCRIPTS = upkeep_scripts(NAME)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    forget(NAME)
    base = tmp_path_factory.mktemp("offsite")
    offsite = sftp_repository(base, REPO_DIR, "correct horse battery")
    (base / "old").mkdir()
    old = Project(base / "old", name=NAME, ports=PORTS)
    yield {"base": base, "offsite": offsite, "old": old, "numbers": {}}
    forget(NAME)
    shutil.rmtree(REPO_DIR, ignore_errors=True)


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert not check or result.returncode == 0, result.stderr[-3000:]
    return result


def restic(*args: str) -> str:
    return run(SCRIPTS["restic"], *args).stdout


def timed(*args: str, check: bool = True) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    result = run(*args, check=check)
    return result, time.monotonic() - start


def status(project: Project, name: str) -> list[str]:
    return (project.root / "status" / name).read_text().split(" ", 2)


def flags_by_subject(user: str, mailbox: str) -> dict[str, set[str]]:
    conn = imap(IMAP, user, PW[user])
    try:
        conn.select(f'"{mailbox}"', readonly=True)
        _, data = conn.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    finally:
        conn.logout()
    out = {}
    for item in data:
        if isinstance(item, tuple):
            flags = set(re.search(rb"FLAGS \(([^)]*)\)", item[0])[1].decode().split())
            subject = item[1].decode().split(":", 1)[1].strip()
            out[subject] = flags - {"\\Recent"}
    return out


def number(conn, subject: str) -> str:
    """The sequence number of the message with `subject` in the selected mailbox (FETCH, not
    SEARCH: the full-text index may lag)."""
    _, data = conn.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    for item in data:
        if isinstance(item, tuple) and item[1].decode().split(":", 1)[1].strip() == subject:
            return item[0].split()[0].decode()
    raise AssertionError(f"no message {subject!r}")


def mailboxes(user: str) -> set[str]:
    conn = imap(IMAP, user, PW[user])
    try:
        _, data = conn.list()
    finally:
        conn.logout()
    return {line.decode().rsplit(' "/" ', 1)[1].strip('"') for line in data}


def test_deploy_makes_secrets_root_only_and_initialises_the_repository(world):
    old = world["old"]
    out = old.deployed(mailorama_backup_offsite=world["offsite"])
    assert out["results"]["totals"]["error"] == 0
    for path in (old.root / "offsite" / "password", old.root / "offsite" / "env",
                 Path(world["offsite"]["ssh_key"])):
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert (old.root / "offsite").stat().st_mode & 0o777 == 0o700
    assert "correct horse" not in Path(SCRIPTS["restic"]).read_text()
    assert (REPO_DIR / "repo" / "config").exists()
    assert restic("snapshots", "--json").strip() == "[]"
    again = old.deploy(mailorama_backup_offsite=world["offsite"])
    assert again.returncode == 0, again.stderr[-3000:]
    results = json.loads(again.stdout)["results"]
    assert results["totals"]["success"] == 0, [op["name"] for op in results["operations"]
                                               if op["success"]]
    assert "disaster recovery: deploy, then " + SCRIPTS["restore-offsite"] in again.stderr


def test_backup_goes_offsite_with_folders_and_flags(world):
    old = world["old"]
    for n in range(1, 4):
        send(SMTP, message("bob@rooney.example", "al@bundy.net", f"inbox-{n}"))
    send(SMTP, message("bob@rooney.example", "peg@bundy.net", "for-peg"))
    for n in range(1, 4):
        assert arrived(IMAP, "al", PW["al"], f"inbox-{n}")
    assert arrived(IMAP, "peg", PW["peg"], "for-peg")
    conn = imap(IMAP, "al", PW["al"])
    try:
        conn.create("Bowling")
        conn.select("INBOX")
        conn.store(number(conn, "inbox-1"), "+FLAGS", "(\\Seen \\Flagged)")
        conn.copy(number(conn, "inbox-3"), "Bowling")
        conn.select("Bowling")
        conn.store("1", "+FLAGS", "(\\Answered)")
    finally:
        conn.logout()
    world["al"] = {"INBOX": flags_by_subject("al", "INBOX"),
                   "Bowling": flags_by_subject("al", "Bowling")}
    assert world["al"]["INBOX"]["inbox-1"] == {"\\Seen", "\\Flagged"}
    assert world["al"]["Bowling"] == {"inbox-3": {"\\Answered"}}

    result, seconds = timed(SCRIPTS["backup"])
    assert result.stdout == "" and result.stderr == ""    # silent when all is well
    world["numbers"]["first backup (s)"] = round(seconds, 1)
    assert status(old, "backup-local")[0] == "ok" and status(old, "backup-offsite")[0] == "ok"
    assert list((old.data / "backup" / "al").glob("*.tar.gz"))
    snapshots = json.loads(restic("snapshots", "--json"))
    assert len(snapshots) == 1 and snapshots[0]["hostname"] == "mail.bundy.net"
    listed = restic("ls", "latest")
    assert f"{old.data}/mail/al/Maildir/.Bowling/cur/" in listed
    assert "dovecot.index" not in listed and f"{old.root}/keys/dkim/rsa.key" in listed

    send(SMTP, message("bob@rooney.example", "al@bundy.net", "inbox-4"))
    wait_for(lambda: "inbox-4" in subjects(IMAP, "al", PW["al"]), what="inbox-4")
    world["al"]["INBOX"] = flags_by_subject("al", "INBOX")
    result, seconds = timed(SCRIPTS["backup"])
    world["numbers"]["second backup (s)"] = round(seconds, 1)
    # the policy keeps the last snapshot of each day: the second replaced the first
    second, = json.loads(restic("snapshots", "--json"))
    assert second["parent"] == snapshots[0]["id"]
    size = int(run("du", "-sb", str(REPO_DIR / "repo")).stdout.split()[0])
    mail_size = int(run("du", "-sb", str(old.data / "mail")).stdout.split()[0])
    world["numbers"]["repository after two runs (KiB)"] = size // 1024
    world["numbers"]["mail folder (KiB)"] = mail_size // 1024


def test_new_host_restores_every_account_in_one_command(world):
    """The old server is gone; a new one (same config, fresh folders) is deployed and one
    command brings every account back, readable over IMAP with the same folders and flags."""
    docker("rm", "-f", NAME)
    (world["base"] / "new").mkdir()
    new = world["new"] = Project(world["base"] / "new", name=NAME, ports=PORTS)
    new.deployed(mailorama_backup_offsite=world["offsite"])
    assert subjects(IMAP, "al", PW["al"]) == []
    result, seconds = timed(SCRIPTS["restore-offsite"])
    world["numbers"]["restore of every account (s)"] = round(seconds, 1)
    assert "al: 5 messages restored" in result.stdout, result.stdout
    assert "peg: 1 messages restored" in result.stdout, result.stdout
    assert flags_by_subject("al", "INBOX") == world["al"]["INBOX"]
    assert flags_by_subject("al", "Bowling") == world["al"]["Bowling"]
    assert "Bowling" in mailboxes("al")
    assert subjects(IMAP, "peg", PW["peg"]) == ["for-peg"]
    for home in (new.data / "mail").iterdir():
        uid = home.stat().st_uid
        assert all(p.stat().st_uid == uid for p in home.rglob("*")), home
    assert (new.data / "mail" / "al").stat().st_uid == 1000
    # a second run restores nothing twice
    again = run(SCRIPTS["restore-offsite"]).stdout
    assert "restored 0 messages" in again
    assert len(subjects(IMAP, "al", PW["al"])) == 4


def test_a_deleted_folder_comes_back_alone(world):
    conn = imap(IMAP, "al", PW["al"])
    try:
        conn.delete("Bowling")
        conn.select("INBOX")
        conn.store(number(conn, "inbox-2"), "+FLAGS", "(\\Deleted)")
        conn.expunge()
    finally:
        conn.logout()
    assert "Bowling" not in mailboxes("al")
    date = time.strftime("%Y-%m-%d")
    result = run(SCRIPTS["restore-offsite"], "--date", date, "al", "Bowling")
    assert "al: 1 messages restored into Bowling" in result.stdout
    assert flags_by_subject("al", "Bowling") == world["al"]["Bowling"]
    assert "inbox-2" not in subjects(IMAP, "al", PW["al"])     # only that folder
    run(SCRIPTS["restore-offsite"], "al", "INBOX")
    assert "inbox-2" in subjects(IMAP, "al", PW["al"])
    early = run(SCRIPTS["restore-offsite"], "--date", "2001-01-01", "al", check=False)
    assert early.returncode == 1 and "no snapshot of mail.bundy.net on or before 2001-01-01" \
        in early.stderr


def test_wrong_password_fails_loudly_and_the_local_backup_still_runs(world):
    new = world["new"]
    wrong = dict(world["offsite"], password="not the password")
    result = new.deploy(mailorama_backup_offsite=wrong)
    assert result.returncode != 0
    assert "wrong password" in result.stderr, result.stderr[-3000:]
    assert "FAILED: check the offsite repository" in result.stderr
    today = new.data / "backup" / "al" / f"{time.strftime('%Y-%m-%d')}.tar.gz"
    today.unlink(missing_ok=True)
    backup = run(SCRIPTS["backup"], check=False)
    assert backup.returncode == 1
    assert "offsite backup FAILED" in backup.stderr and "wrong password" in backup.stderr
    assert today.exists()
    assert status(new, "backup-local")[0] == "ok"
    assert status(new, "backup-offsite")[0] == "failed"
    new.deployed(mailorama_backup_offsite=world["offsite"])
    run(SCRIPTS["backup"])
    assert status(new, "backup-offsite")[0] == "ok"
    print(f"\nbackup numbers: {world['numbers']}")
