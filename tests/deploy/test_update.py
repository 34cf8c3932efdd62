"""Security updates without a person: the host's update script rebuilds the image; a changed
package set (a base image the test varies with --build-arg) recreates the container without
losing queued mail; a broken image is rolled back and root is mailed; a deploy waits while an
update holds the lock. Root's mail (root -> al) is read over IMAP."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from mail import arrived, imap, message, send, wait_for
from mailorama import config as cfg
from project import Project, docker

pytestmark = pytest.mark.deploy
NAME = "mor-h10-up"
PORTS = {"smtp": 4825, "submission": 4887, "submissions": 4865, "imap": 4843, "imaps": 4893}
SMTP, IMAP = PORTS["smtp"], PORTS["imap"]
PW = cfg.EXAMPLE_PASSWORDS
BASE = "mor-h10-base"
CLOSED = 4899       # nothing listens here: the relay refuses every connection
UPDATE = f"/usr/local/sbin/mailorama-update-{NAME}"
LOCK = f"/run/lock/mail-o-rama-{NAME}.lock"
MARKER = """FROM debian:trixie-slim
RUN mkdir -p /tmp/p/DEBIAN \\
 && printf 'Package: mor-h10-marker\\nVersion: 1.0\\nArchitecture: all\\nMaintainer: t <t@t.example>\\nDescription: a changed package set\\n' > /tmp/p/DEBIAN/control \\
 && dpkg-deb -b /tmp/p /tmp/p.deb >/dev/null && dpkg -i /tmp/p.deb && rm -rf /tmp/p /tmp/p.deb
"""
# another changed package set, and smtpd left out of the opensmtpd package: the image builds,
# the container never gets ready
BROKEN = MARKER.replace("mor-h10-marker", "mor-h10-broken") + \
    "RUN echo 'path-exclude /usr/sbin/smtpd' > /etc/dpkg/dpkg.cfg.d/99-broken\n"


def _cleanup():
    subprocess.run(["docker", "rm", "-f", NAME], capture_output=True)
    for path in (f"/etc/cron.d/{NAME}", UPDATE, f"/usr/local/sbin/mailorama-check-{NAME}",
                 f"/usr/local/sbin/mailorama-backup-{NAME}"):
        Path(path).unlink(missing_ok=True)


def build(tag: str, dockerfile: str, folder: Path):
    folder.mkdir(exist_ok=True)
    (folder / "Dockerfile").write_text(dockerfile)
    subprocess.run(["docker", "build", "-q", "--network", "none", "-t", tag, str(folder)],
                   check=True, capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    _cleanup()
    base = tmp_path_factory.mktemp("update")
    build(f"{BASE}:changed", MARKER, base / "changed")
    build(f"{BASE}:broken", BROKEN, base / "broken")
    p = Project(base, name=NAME, ports=PORTS)
    p.deployed(mailorama_host_mail="msmtp", mailorama_relay_host=f"127.0.0.1:{CLOSED}")
    yield p
    _cleanup()
    for tag in (f"{BASE}:broken", f"{BASE}:changed", f"{NAME}:previous"):
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)


def queue() -> str:
    return docker("exec", NAME, "smtpctl", "show", "queue")


def image() -> str:
    return docker("inspect", "-f", "{{.Image}}", NAME)


def update(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([UPDATE, *args], capture_output=True, text=True, timeout=900)


def mail_text(subject: str) -> bytes | None:
    """The text of al's newest message with `subject` (FETCH: the search index may lag)."""
    conn = imap(IMAP, "al", PW["al"])
    try:
        _, count = conn.select("INBOX", readonly=True)
        if count[0] == b"0":
            return None
        _, data = conn.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT])")
    finally:
        conn.logout()
    parts = [item[1] for item in data if isinstance(item, tuple)]
    found = [text for head, text in zip(parts[::2], parts[1::2]) if subject.encode() in head]
    return found[-1] if found else None


def packages(image_id: str) -> str:
    return docker("run", "--rm", "--network", "none", "--entrypoint", "dpkg-query", image_id,
                  "-W", "-f", "${Package}\n")


def test_changed_packages_recreate_the_container_and_keep_queued_mail(project):
    # a copy for an outside address waits in the queue: the relay refuses
    send(SMTP, message("bob@rooney.example", "shoes@bundy.net", "queued-across-update"))
    assert arrived(IMAP, "al", PW["al"], "queued-across-update")
    wait_for(lambda: "gary@garys-shoes.example" in queue(), what="the queued copy")
    queued = queue().split("|")[0]
    before, started = image(), docker("inspect", "-f", "{{.State.StartedAt}}", NAME)
    start = time.monotonic()
    result = update("--build-arg", f"BASE_IMAGE={BASE}:changed")
    seconds = time.monotonic() - start
    assert result.returncode == 0, result.stderr[-3000:]
    assert "> mor-h10-marker 1.0" in result.stdout
    assert image() != before
    assert docker("inspect", "-f", "{{.State.StartedAt}}", NAME) != started
    assert "mor-h10-marker" in packages(image())
    assert docker("image", "inspect", "-f", "{{.Id}}", f"{NAME}:previous") == before
    assert queue().split("|")[0] == queued          # the same envelope, still queued
    send(SMTP, message("bob@rooney.example", "peg@bundy.net", "after-update"))
    assert arrived(IMAP, "peg", PW["peg"], "after-update")
    status = (project.root / "status" / "update").read_text()
    assert status.startswith("ok ") and "updated" in status
    print(f"\nupdate with a changed package set: {seconds:.0f} s")


def test_same_packages_change_nothing(project):
    before = image()
    result = update("--build-arg", f"BASE_IMAGE={BASE}:changed")
    assert result.returncode == 0, result.stderr[-3000:]
    assert image() == before
    assert (project.root / "status" / "update").read_text().startswith("ok ")
    assert "no package changed" in (project.root / "status" / "update").read_text()


def test_a_broken_image_is_rolled_back_and_root_is_mailed(project):
    before = image()
    result = update("--build-arg", f"BASE_IMAGE={BASE}:broken")
    assert result.returncode == 1
    assert "ROLLED BACK" in result.stderr
    assert image() == before
    docker("exec", NAME, "mailorama-healthcheck", "127.0.0.1", str(SMTP), str(IMAP))
    assert "gary@garys-shoes.example" in queue()
    assert (project.root / "status" / "update").read_text().startswith("rolledback ")
    subject = f"[Mail-o-Rama] mail.bundy.net: update of {NAME} rolled back"
    assert arrived(IMAP, "al", PW["al"], subject)
    body = wait_for(lambda: mail_text(subject), what="root's mail")
    assert b"did not get ready on the updated image" in body
    assert b"the previous image runs again" in body and b"> mor-h10-broken 1.0" in body
    check = subprocess.run([f"/usr/local/sbin/mailorama-check-{NAME}"], capture_output=True,
                           text=True, timeout=120)
    assert check.returncode == 1 and "was ROLLED BACK" in check.stdout


def test_a_deploy_waits_while_an_update_holds_the_lock(project):
    holder = subprocess.Popen(["flock", LOCK, "sleep", "8"])
    try:
        time.sleep(0.5)
        start = time.monotonic()
        virtuals = project.file("virtuals")
        original = virtuals.read_text()
        virtuals.write_text(original + "locked@bundy.net al\n")
        try:
            result = project.deploy(mailorama_host_mail="msmtp",
                                    mailorama_relay_host=f"127.0.0.1:{CLOSED}")
        finally:
            virtuals.write_text(original)
        assert result.returncode == 0, result.stderr[-3000:]
        assert holder.poll() is not None            # the deploy applied after the lock was free
        assert time.monotonic() - start > 7
    finally:
        holder.kill()
        holder.wait()
