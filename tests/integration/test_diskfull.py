"""A nearly full data filesystem against the real container: the stack's data folder (queue and
Maildirs) is a 30 MiB tmpfs. Nearly full, SMTP answers 452 at MAIL FROM; a delivery that meets a
full disk stays queued, nothing half-written reaches a Maildir; once space returns the queued
message is delivered by itself and new mail is accepted again."""

from __future__ import annotations

import os
import smtplib
import subprocess
import time

import pytest

from mail import message, send, wait_for
from stack import fresh_stack

pytestmark = pytest.mark.docker
NAME = "mor-test-diskfull"
PORTS = {"smtp": 14525, "submission": 14587, "submissions": 14465, "imap": 14143,
         "imaps": 14993, "managesieve": 14190}
SMTP = PORTS["smtp"]
SIZE_MIB = 30


@pytest.fixture(scope="module")
def box(image, tmp_path_factory):
    base = tmp_path_factory.mktemp("diskfull")
    stack = fresh_stack(NAME, base)
    stack.settings_data.update(mailorama_ports=PORTS, mailorama_listen=["127.0.0.1"])
    stack.data.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE_MIB}m,mode=0755", "tmpfs",
                    str(stack.data)], check=True)
    try:
        stack.up()
        yield stack
    finally:
        stack.save_logs()
        stack.remove()
        subprocess.run(["umount", str(stack.data)], check=False)


def free_bytes(box) -> int:
    st = os.statvfs(box.data)
    return st.f_bavail * st.f_frsize


def fill(box, leave: int):
    """Fill the data filesystem until about `leave` bytes are free."""
    filler = box.data / f"filler-{len(list(box.data.glob('filler-*')))}"
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free_bytes(box) - leave))
    return filler


def maildir_files(box, account: str, folder: str) -> list:
    return list((box.data / "mail" / account / "Maildir" / folder).glob("*"))


def queue(box) -> list[str]:
    return box.exec("smtpctl", "show", "queue").stdout.decode().splitlines()


def body(subject: str, kib: int):
    msg = message("bob@rooney.example", "peg@bundy.net", subject)
    msg.set_content(("z" * 75 + "\n") * (kib * 1024 // 76))
    return msg


def test_nearly_full_answers_452_and_recovers_without_loss(box):
    send(SMTP, message("bob@rooney.example", "peg@bundy.net", "before"))
    wait_for(lambda: maildir_files(box, "peg", "new"), what="the first message in peg's Maildir")

    # Deliveries paused: a 1 MiB message is accepted and queued while there is room.
    box.exec("smtpctl", "pause", "mda")
    send(SMTP, body("queued-while-full", 1024))
    assert len(queue(box)) == 1

    # The disk fills up (something else on the host): 64 KiB left.
    fillers = [fill(box, 64 * 1024)]
    assert free_bytes(box) < 256 * 1024

    # New mail: 452 at MAIL FROM, before any data is sent; nothing is written.
    time.sleep(2.1)     # the guard reuses its disk answer for 2 s
    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        send(SMTP, message("bob@rooney.example", "peg@bundy.net", "refused-while-full"))
    assert refused.value.smtp_code == 452 and refused.value.smtp_error.startswith(b"4.3.1")

    # The queued message meets the full disk: Dovecot fails the delivery temporarily, the
    # message stays queued, and no part of it is left in the Maildir.
    box.exec("smtpctl", "resume", "mda")
    wait_for(lambda: any("|pending|" in line and "mail.lmtp" in line for line in queue(box)),
             what="the delivery deferred with Dovecot's temporary error")
    assert len(queue(box)) == 1
    assert len(maildir_files(box, "peg", "new")) == 1
    assert maildir_files(box, "peg", "tmp") == []

    # Space returns: the message is delivered by itself (OpenSMTPD retries), whole.
    for filler in fillers:
        filler.unlink()
    started = time.monotonic()
    wait_for(lambda: len(maildir_files(box, "peg", "new")) == 2, timeout=120, interval=1,
             what="the queued message delivered after space returned")
    print(f"delivered {time.monotonic() - started:.0f} s after space returned")
    assert queue(box) == []
    stored = [p.read_bytes() for p in maildir_files(box, "peg", "new")]
    delivered = next(m for m in stored if b"queued-while-full" in m)
    assert delivered.count(b"z" * 75 + b"\n") == 1024 * 1024 // 76
    assert maildir_files(box, "peg", "tmp") == []

    time.sleep(2.1)
    send(SMTP, message("bob@rooney.example", "peg@bundy.net", "after"))
    wait_for(lambda: len(maildir_files(box, "peg", "new")) == 3, what="new mail accepted again")
