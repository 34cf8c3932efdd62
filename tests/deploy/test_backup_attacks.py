"""Issue 10 attacked: the offsite backup and the self-check against an attacker and an unlucky
admin, on one deployed project with the rig's sshd as the SFTP target. Secrets never in --diff
or on a command line; an unreachable repository fails in bounded time instead of hanging the
deploy and the backup job; a killed backup leaves no lock that fails every later run; two
backups at once wait for each other; folders with brackets, globs, non-ASCII or shell syntax in
their names restore by their name; a restore never reverts newer flags; the README's DKIM
recovery command works; a paused container is reported, not waited for."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from mail import arrived, imap, message, send, subjects, wait_for
from mailorama import config as cfg
from project import Project, forget, sftp_repository, upkeep_scripts

pytestmark = pytest.mark.deploy
NAME = "mor-h10-atk"
PORTS = {"smtp": 5325, "submission": 5387, "submissions": 5365, "imap": 5343, "imaps": 5393}
SMTP, IMAP = PORTS["smtp"], PORTS["imap"]
TARPIT = 5398       # accepts connections and never says a word
PW = cfg.EXAMPLE_PASSWORDS
REPO_DIR = Path("/var/tmp/mor-h10-atk-restic")
SCRIPTS = upkeep_scripts(NAME)
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    forget(NAME)
    base = tmp_path_factory.mktemp("attacks")
    offsite = sftp_repository(base, REPO_DIR, PASSWORD)
    project = Project(base, name=NAME, ports=PORTS)
    project.deployed(mailorama_backup_offsite=offsite)
    send(SMTP, message("bob@rooney.example", "al@bundy.net", "first"))
    assert arrived(IMAP, "al", PW["al"], "first")
    yield {"project": project, "offsite": offsite}
    forget(NAME)
    shutil.rmtree(REPO_DIR, ignore_errors=True)


def run(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    assert not check or result.returncode == 0, result.stdout + result.stderr[-3000:]
    return result


def status(project: Project, name: str) -> list[str]:
    return (project.root / "status" / name).read_text().split(" ", 2)


def locks() -> list[Path]:
    return list((REPO_DIR / "repo" / "locks").iterdir())


def test_diff_and_dry_never_show_the_offsite_secrets(world):
    """--dry --diff of a changed password and a repository URL with credentials: neither the old
    nor the new secret is printed, yet the changes are."""
    project = world["project"]
    changed = {"repository": "rest:http://backup:hunter2secret@127.0.0.1:5399/mail",
               "password": "a brand new passphrase"}
    result = project.deploy("--dry", "--diff", mailorama_backup_offsite=changed)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "offsite/password" in out and "(changed)" in out
    for secret in (PASSWORD, "a brand new passphrase", "hunter2secret"):
        assert secret not in out, secret


def test_no_secret_derived_value_on_a_command_line(world):
    """The deploy's commands (what `ps` shows any local user, and -vv prints) carry neither the
    password nor a plain hash of it."""
    project = world["project"]
    (project.root / "offsite" / "verified").unlink()      # the deploy checks the repository again
    result = project.deploy("-vv", mailorama_backup_offsite=world["offsite"])
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "--init-if-absent" in out                      # the command was printed
    offsite = world["offsite"]
    digest = hashlib.sha256(f"{offsite['repository']}\0{PASSWORD}".encode()).hexdigest()
    assert PASSWORD not in out and digest not in out
    again = project.deploy(mailorama_backup_offsite=world["offsite"])
    assert again.returncode == 0 and "check the offsite repository" not in again.stderr


@pytest.fixture
def tarpit():
    """A server on loopback that accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", TARPIT))
    held, stop = [], threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                pass
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_an_unreachable_repository_fails_in_bounded_time(world, tarpit):
    """A repository host that accepts TCP and never answers: the deploy and the backup job fail
    within a minute, loudly, and the local backup still runs (they hung forever before)."""
    project = world["project"]
    stuck = dict(world["offsite"], repository=f"sftp://root@127.0.0.1:{TARPIT}//srv/repo")
    try:
        start = time.monotonic()
        result = project.deploy(mailorama_backup_offsite=stuck)
        assert result.returncode != 0
        assert time.monotonic() - start < 240
        assert "does not answer" in result.stderr, result.stderr[-3000:]
        today = project.data / "backup" / "al" / f"{time.strftime('%Y-%m-%d')}.tar.gz"
        today.unlink(missing_ok=True)
        start = time.monotonic()
        backup = run(SCRIPTS["backup"], check=False, timeout=200)
        assert time.monotonic() - start < 90
        assert backup.returncode == 1 and "offsite backup FAILED" in backup.stderr
        assert today.exists() and status(project, "backup-local")[0] == "ok"
        assert status(project, "backup-offsite")[0] == "failed"
    finally:
        project.deployed(mailorama_backup_offsite=world["offsite"])


def gone(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_killed_backup_does_not_block_the_next_ones(world):
    """The backup job killed while restic holds its lock (a reboot, the OOM killer): the next
    run succeeds instead of failing on a stale lock every day until someone runs unlock."""
    project = world["project"]
    send(SMTP, message("bob@rooney.example", "al@bundy.net", "before-kill"))
    assert arrived(IMAP, "al", PW["al"], "before-kill")
    assert locks() == []
    job = subprocess.Popen([SCRIPTS["backup"]], start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(locks, timeout=60, interval=0.01, what="restic's lock")
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
    wait_for(lambda: gone(job.pid), what="the killed restic reaped")
    assert locks()                                        # left behind
    result = run(SCRIPTS["backup"], check=False)
    assert result.returncode == 0, result.stderr
    assert status(project, "backup-offsite")[0] == "ok"


def test_two_backups_at_once_wait_for_each_other(world):
    """A backup started by hand while cron's runs (or one that runs over a day): the second
    waits for the first instead of failing on restic's exclusive lock."""
    project = world["project"]
    first = subprocess.Popen([SCRIPTS["backup"]], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        wait_for(locks, timeout=60, interval=0.01, what="the first backup's restic lock")
        second = run(SCRIPTS["backup"], check=False)
    finally:
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.returncode == 0, second.stderr
    assert status(project, "backup-offsite")[0] == "ok"


# (the name the user sees, its IMAP name: modified UTF-7)
FOLDERS = (("Rechnungen [2024]", "Rechnungen [2024]"), ("Müll", "M&APw-ll"),
           ("$(touch mor-h10-pwned)", "$(touch mor-h10-pwned)"), ("a?b", "a?b"))


def quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def test_folders_with_any_name_restore_by_their_name(world, tmp_path):
    """Brackets, globs, non-ASCII (stored in modified UTF-7) and shell syntax in folder names:
    each one deleted comes back alone by the name the user sees; a hostile name runs nothing."""
    for n, _ in enumerate(FOLDERS):
        send(SMTP, message("bob@rooney.example", "peg@bundy.net", f"folder-{n}"))
        assert arrived(IMAP, "peg", PW["peg"], f"folder-{n}")
    conn = imap(IMAP, "peg", PW["peg"])
    try:
        for n, (_, name) in enumerate(FOLDERS):
            assert conn.create(quoted(name))[0] == "OK", name
            conn.select("INBOX")
            _, found = conn.search(None, "HEADER", "Subject", f"folder-{n}")
            number = found[0].split()[0]
            assert conn.copy(number, quoted(name))[0] == "OK", name
            conn.store(number, "+FLAGS", "(\\Deleted)")
            conn.expunge()
    finally:
        conn.logout()
    run(SCRIPTS["backup"])
    for shown, name in FOLDERS:
        conn = imap(IMAP, "peg", PW["peg"])
        try:
            assert conn.delete(quoted(name))[0] == "OK", name
        finally:
            conn.logout()
        result = subprocess.run([SCRIPTS["restore-offsite"], "peg", shown], cwd=tmp_path,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, (shown, result.stderr)
        assert f"peg: 1 messages restored into {shown}" in result.stdout, result.stdout
        assert subjects(IMAP, "peg", PW["peg"], quoted(name)), shown
    assert list(tmp_path.iterdir()) == [] and not Path("/mor-h10-pwned").exists()


def test_a_restore_never_reverts_newer_flags_or_mail(world):
    """An older snapshot restored over an account that moved on: messages read, flagged and
    arrived since stay as they are; only what is missing comes back."""
    send(SMTP, message("bob@rooney.example", "al@bundy.net", "old-unread"))
    assert arrived(IMAP, "al", PW["al"], "old-unread")
    run(SCRIPTS["backup"])
    conn = imap(IMAP, "al", PW["al"])
    try:
        conn.select("INBOX")
        _, found = conn.search(None, "HEADER", "Subject", "old-unread")
        conn.store(found[0].split()[0], "+FLAGS", "(\\Seen \\Flagged)")
    finally:
        conn.logout()
    send(SMTP, message("bob@rooney.example", "al@bundy.net", "newer"))
    assert arrived(IMAP, "al", PW["al"], "newer")
    before = sorted(subjects(IMAP, "al", PW["al"]))
    run(SCRIPTS["restore-offsite"], "al")
    assert sorted(subjects(IMAP, "al", PW["al"])) == before
    conn = imap(IMAP, "al", PW["al"])
    try:
        conn.select("INBOX", readonly=True)
        _, found = conn.search(None, "HEADER", "Subject", "old-unread")
        _, data = conn.fetch(found[0].split()[0], "(FLAGS)")
    finally:
        conn.logout()
    assert b"\\Seen" in data[0] and b"\\Flagged" in data[0]


def test_the_readme_command_brings_the_dkim_keys_back(world):
    """The disaster recovery's DKIM step, typed as the README says, on a host whose keys are
    new: the backed-up keys come back byte for byte."""
    project = world["project"]
    folder = project.root / "keys" / "dkim"
    old = {p.name: p.read_bytes() for p in folder.iterdir()}
    for path in folder.iterdir():
        path.write_bytes(b"a key made on the new host\n")
    run(SCRIPTS["restic"], "restore", "latest", "--host", "mail.bundy.net", "--tag", NAME,
        "--target", "/", "--include", str(folder))
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == old


def test_a_paused_container_is_reported_not_waited_for(world):
    """A frozen container (docker pause; a wedged daemon alike) accepts connections and never
    answers: the self-check reports it within minutes and keeps the alarm it cannot mail
    (root's mail goes through that container) instead of hanging every day."""
    subprocess.run(["docker", "pause", NAME], check=True, capture_output=True)
    try:
        start = time.monotonic()
        result = run(SCRIPTS["check"], check=False, timeout=400)
        took = time.monotonic() - start
    finally:
        subprocess.run(["docker", "unpause", NAME], check=True, capture_output=True)
    assert took < 150, took
    assert result.returncode == 1 and f"the container {NAME} is paused" in result.stdout
    assert "could not mail root" in result.stderr, result.stderr
    assert (world["project"].root / "status" / "unsent-alarm").exists()
