"""Per-account quota against the real container: a full mailbox is refused at RCPT with 452 (the
sender retries), a copy for it that was already accepted waits in the queue, and once the quota
is raised (a re-render and mailorama-apply, as a redeploy does) the waiting mail is delivered."""

from __future__ import annotations

import smtplib
import time

import pytest

from mail import message, send, smtp, tls, wait_for
from stack import PASSWORDS, fresh_stack

pytestmark = pytest.mark.docker
NAME = "mor-test-quota"
PORTS = {"smtp": 13525, "submission": 13587, "submissions": 13465, "imap": 13143,
         "imaps": 13993, "managesieve": 13190}
SMTP = PORTS["smtp"]
GUARD_TTL = 2.1


@pytest.fixture(scope="module")
def box(image, tmp_path_factory):
    stack = fresh_stack(NAME, tmp_path_factory.mktemp("quota"), mailorama_ports=PORTS,
                        mailorama_listen=["127.0.0.1"], mailorama_quota="1M",
                        mailorama_quotas={"al": "50M"})
    stack.up()
    yield stack
    stack.save_logs()
    stack.remove()


def big(to: str, subject: str, kib: int):
    msg = message("bob@rooney.example", to, subject)
    msg.set_content(("y" * 75 + "\n") * (kib * 1024 // 76))
    return msg


def subjects(box, account: str) -> list[str]:
    """Subjects of the messages in an account's Maildir on the host (new/ and cur/)."""
    maildir = box.data / "mail" / account / "Maildir"
    out = []
    for path in [*maildir.glob("new/*"), *maildir.glob("cur/*")]:
        head = path.read_bytes().split(b"\n\n", 1)[0]
        out += [line[9:].decode().strip() for line in head.splitlines()
                if line.lower().startswith(b"subject: ")]
    return out


def arrived(box, account: str, subject: str):
    return wait_for(lambda: subject in subjects(box, account),
                    what=f"{subject!r} in {account}'s Maildir")


def queue(box) -> list[str]:
    return box.exec("smtpctl", "show", "queue").stdout.decode().splitlines()


def test_quota_settings_reach_dovecot(box):
    kelly = box.exec("doveadm", "quota", "get", "-u", "kelly").stdout.decode()
    al = box.exec("doveadm", "quota", "get", "-u", "al").stdout.decode()
    assert "STORAGE" in kelly and " 1024 " in kelly        # 1M, in KiB
    assert " 51200 " in al                                  # al's own 50M


def test_full_mailbox_refused_then_delivered_after_raise(box):
    # Under quota, a message may overshoot it (Dovecot's 10M grace): kelly is now over 1M.
    send(SMTP, big("kelly@bundy.net", "fills-kelly", 1500))
    assert arrived(box, "kelly", "fills-kelly")

    # Port 25: refused at RCPT, before anything is accepted; the sender keeps the message.
    time.sleep(GUARD_TTL)      # the guard reuses an account's quota answer for 2 s
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(SMTP, message("bob@rooney.example", "kelly@bundy.net", "over-quota"))
    code, text = refused.value.recipients["kelly@bundy.net"]
    assert (code, text[:5]) == (452, b"4.2.2"), refused.value.recipients

    # Submission: a logged-in sender gets the same answer at once.
    with smtp(PORTS["submission"]) as s:
        s.starttls(context=tls())
        s.login("al", PASSWORDS["al"])
        s.mail("al@bundy.net")
        assert s.rcpt("kelly@bundy.net")[0] == 452
        assert s.rcpt("peg@bundy.net")[0] == 250
        s.rset()

    # An address with another account behind it is accepted: bud gets it now, kelly's copy
    # waits in the queue (Dovecot answers 452 4.2.2 at LMTP: a temporary failure, no bounce).
    send(SMTP, message("bob@rooney.example", "kids@bundy.net", "kids-while-full"))
    assert arrived(box, "bud", "kids-while-full")
    waiting = wait_for(lambda: [line for line in queue(box)
                                if "Quota exceeded" in line and "|pending|" in line],
                       what="kelly's copy waiting in the queue")
    assert len(waiting) == 1 and "<kelly> Quota exceeded" in waiting[0]
    assert "kids-while-full" not in subjects(box, "kelly")

    # al's own larger quota: his mail still flows.
    send(SMTP, big("al@bundy.net", "al-has-room", 1500))
    send(SMTP, message("bob@rooney.example", "al@bundy.net", "al-still-has-room"))
    assert arrived(box, "al", "al-still-has-room")

    # Raise kelly's quota the way a redeploy does: render, mailorama-apply in the container.
    box.settings_data["mailorama_quotas"] = {"al": "50M", "kelly": "50M"}
    box.render()
    assert "passwd" in box.exec("mailorama-apply").stdout.decode()
    box.exec("smtpctl", "schedule", "all")
    assert arrived(box, "kelly", "kids-while-full")
    wait_for(lambda: queue(box) == [], what="an empty queue")
    # and port 25 takes her mail again
    time.sleep(GUARD_TTL)
    send(SMTP, message("bob@rooney.example", "kelly@bundy.net", "room-again"))
    assert arrived(box, "kelly", "room-again")
