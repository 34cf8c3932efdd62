"""Alarms, not reports: the host's daily self-check mails root (root -> al, read over IMAP)
only when something is wrong, each alarm provoked for real: a stopped container, a message
stuck for a relay that refuses, a certificate about to expire, a failed backup, a nearly full
filesystem (the data folder is a 40 MB tmpfs). One run where all is well mails nothing."""

from __future__ import annotations

import datetime
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from mail import imap, message, send, wait_for
from mailorama import config as cfg
from project import Project, docker

pytestmark = pytest.mark.deploy
NAME = "mor-h10-al"
PORTS = {"smtp": 4925, "submission": 4987, "submissions": 4965, "imap": 4943, "imaps": 4993}
SMTP, IMAP = PORTS["smtp"], PORTS["imap"]
PW = cfg.EXAMPLE_PASSWORDS
CLOSED = 4999       # nothing listens here: the relay refuses every connection
CHECK = f"/usr/local/sbin/mailorama-check-{NAME}"
BACKUP = f"/usr/local/sbin/mailorama-backup-{NAME}"
SUBJECT = f"problem(s) with {NAME}"


def _cleanup():
    subprocess.run(["docker", "rm", "-f", NAME], capture_output=True)
    for path in (f"/etc/cron.d/{NAME}", CHECK, BACKUP, f"/usr/local/sbin/mailorama-update-{NAME}"):
        Path(path).unlink(missing_ok=True)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    _cleanup()
    base = tmp_path_factory.mktemp("alarms")
    p = Project(base, name=NAME, ports=PORTS)
    p.data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m,mode=0700", "tmpfs", str(p.data)],
                   check=True)
    try:
        p.deployed(mailorama_host_mail="msmtp")
        run(BACKUP)
        yield p
    finally:
        _cleanup()
        subprocess.run(["umount", "-l", str(p.data)], capture_output=True)


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert not check or result.returncode == 0, result.stdout + result.stderr
    return result


def alarms() -> list[str]:
    """The bodies of the self-check's mails in al's INBOX (root -> al), oldest first."""
    conn = imap(IMAP, "al", PW["al"])
    try:
        _, count = conn.select("INBOX", readonly=True)
        if count[0] == b"0":
            return []
        _, data = conn.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT])")
    finally:
        conn.logout()
    parts = [item[1].decode(errors="replace") for item in data if isinstance(item, tuple)]
    return [text for subject, text in zip(parts[::2], parts[1::2]) if SUBJECT in subject]


def alarm(text: str) -> str:
    """Run the check: it fails, says `text`, and root gets one new mail saying it."""
    before = len(alarms())
    result = run(CHECK, check=False)
    assert result.returncode == 1 and text in result.stdout, result.stdout + result.stderr
    new = wait_for(lambda: alarms()[before:], what=f"the alarm mail about {text!r}")
    assert len(new) == 1 and text in new[0], new
    return new[0]


def wait_ready():
    wait_for(lambda: subprocess.run(["docker", "exec", NAME, "mailorama-healthcheck",
                                     "127.0.0.1", str(SMTP), str(IMAP)],
                                    capture_output=True).returncode == 0,
             timeout=60, what="the container ready")


def test_all_is_well_and_nothing_is_mailed(project):
    before = len(alarms())
    result = run(CHECK)
    assert result.stdout == "" and result.stderr == ""
    send(SMTP, message("bob@rooney.example", "al@bundy.net", "after-the-check"))
    wait_for(lambda: "after-the-check" in str(subjects_of_al()), what="a later message")
    assert len(alarms()) == before


def subjects_of_al():
    from mail import subjects
    return subjects(IMAP, "al", PW["al"])


def test_stopped_container(project):
    """Root's mail goes through the container: the alarm is kept and mailed once it is back."""
    docker("stop", NAME)
    try:
        result = run(CHECK, check=False)
        assert result.returncode == 1
        assert f"the container {NAME} is exited" in result.stdout
        assert "could not mail root" in result.stderr
    finally:
        docker("start", NAME)
    wait_ready()
    before = len(alarms())
    assert run(CHECK, check=False).returncode == 0
    new = wait_for(lambda: alarms()[before:], what="the kept alarm")
    assert f"the container {NAME} is exited" in new[0] and "Not delivered at the time" in new[0]


def test_mail_stuck_in_the_queue_for_over_an_hour(project):
    project.deployed(mailorama_host_mail="msmtp", mailorama_relay_host=f"127.0.0.1:{CLOSED}")
    try:
        send(SMTP, message("bob@rooney.example", "shoes@bundy.net", "stuck"))
        wait_for(lambda: "gary@garys-shoes.example" in docker("exec", NAME, "smtpctl", "show",
                                                             "queue"), what="the stuck copy")
        assert run(CHECK).stdout == ""           # queued for minutes: no alarm yet
        # two hours ago: the envelope's creation time on disk, read again at the restart
        docker("stop", NAME)
        envelopes = [p for p in (project.data / "queue" / "queue").rglob("*")
                     if p.is_file() and p.parent.name != "message"
                     and "gary@garys-shoes.example" in p.read_text(errors="replace")]
        assert envelopes
        old = int(time.time()) - 7200
        for envelope in envelopes:
            envelope.write_text(re.sub(r"(?m)^ctime: \d+$", f"ctime: {old}",
                                       envelope.read_text()))
        docker("start", NAME)
        wait_ready()
        assert "gary@garys-shoes.example" in docker("exec", NAME, "smtpctl", "show", "queue")
        alarm("1 message(s) wait in the queue for over an hour")
    finally:
        subprocess.run(["docker", "exec", NAME, "smtpctl", "remove", "all"], capture_output=True)
        project.deployed(mailorama_host_mail="msmtp")


def expiring_cert(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mail.bundy.net")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=80))
            .not_valid_after(now + datetime.timedelta(days=5))
            .sign(key, hashes.SHA256()))
    paths = tmp / "fullchain.pem", tmp / "privkey.pem"
    paths[0].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def test_certificate_expiring_within_14_days(project, tmp_path):
    cert, key = expiring_cert(tmp_path)
    project.deployed(mailorama_host_mail="msmtp", mailorama_tls_cert=str(cert),
                     mailorama_tls_key=str(key))
    try:
        body = alarm("the TLS certificate expires on")
        assert f"({cert})" in body
    finally:
        project.deployed(mailorama_host_mail="msmtp")
    assert run(CHECK).stdout == ""


def test_failed_backup(project):
    day = project.data / "backup" / "al"
    shutil.rmtree(day, ignore_errors=True)
    day.write_text("not a folder")              # the backup cannot write al's archive
    try:
        result = run(BACKUP, check=False)
        assert result.returncode == 1 and "local backup FAILED" in result.stderr
        alarm("the local backup of")
    finally:
        day.unlink()
    run(BACKUP)
    assert run(CHECK).stdout == ""


def test_nearly_full_filesystem(project):
    filler = project.data / "filler"
    free = int(run("df", "--output=avail", "-k", str(project.data)).stdout.split()[-1])
    total = int(run("df", "--output=size", "-k", str(project.data)).stdout.split()[-1])
    # 92 % used: over the alarm's 90 %, under the 95 % where OpenSMTPD refuses mail (the alarm's too)
    run("fallocate", "-l", f"{free - total * 8 // 100}k", str(filler))
    try:
        alarm(f"{project.data} is 9")
    finally:
        filler.unlink()
    assert run(CHECK).stdout == ""
