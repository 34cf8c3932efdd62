"""Own domains are ours, against the real container: on port 25 (no login) a hosted domain or the
host name is refused as envelope sender, and as From: unless the message carries a valid DKIM
signature of ours, so a list that passes our user's signed post on still delivers it; no DSN
there; a failure report of ours carries no copy of the stranger's message."""

from __future__ import annotations

import pytest

from stack import PASSWORDS, Sink, fresh_stack
from mail import arrived, message, send, smtp, subjects, tls, wait_for

pytestmark = pytest.mark.docker
NAME = "mor-test-forgery"
PORTS = {"smtp": 20525, "submission": 20587, "submissions": 20465, "imap": 20143,
         "imaps": 20993, "managesieve": 20190}
SINK_PORT = 20600
HOST = "mail.bundy.net"
REFUSED = "gary@garys-shoes.example"      # shoes@bundy.net forwards there; the sink says 550


@pytest.fixture(scope="module")
def outside():
    sink = Sink(SINK_PORT)

    async def handle_RCPT(server, session, envelope, address, rcpt_options):
        if address == REFUSED:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    sink.handler.handle_RCPT = handle_RCPT
    with sink:
        yield sink


@pytest.fixture(scope="module")
def box(image, tmp_path_factory, outside):
    stack = fresh_stack(NAME, tmp_path_factory.mktemp("forgery"), mailorama_listen=["127.0.0.1"],
                        mailorama_ports=PORTS, mailorama_relay_host=f"127.0.0.1:{SINK_PORT}")
    stack.up()
    yield stack
    stack.save_logs()
    stack.compose("down", check=False)
    stack.remove()


def inbound(data: bytes, sender: str, rcpt: str) -> tuple[int, bytes]:
    """One unauthenticated transaction on port 25: the reply to DATA (or the first refusal)."""
    with smtp(PORTS["smtp"]) as s:
        s.ehlo("lists.example")
        s.starttls(context=tls())
        s.ehlo("lists.example")
        for reply in (s.mail(sender), s.rcpt(rcpt)):
            if reply[0] != 250:
                return reply
        return s.data(data)


def raw(sender: str, subject: str, extra: str = "") -> bytes:
    return (f"From: {sender}\r\nTo: peg@bundy.net\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}@forgery.test>\r\n{extra}\r\nhello\r\n").encode()


def without_signature(msg: bytes, marker: str) -> bytes:
    """`msg` without the DKIM-Signature field that contains `marker`."""
    head, _, body = msg.partition(b"\r\n\r\n")
    fields: list[list[bytes]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        else:
            fields.append([line])
    kept = [f for f in fields if not (f[0].lower().startswith(b"dkim-signature:")
                                      and marker.encode() in b"".join(f))]
    return b"\r\n".join(b"\r\n".join(f) for f in kept) + b"\r\n\r\n" + body


def test_forged_own_from_is_refused_and_a_signed_copy_is_accepted(box, outside):
    # forgeries: null or foreign envelope, our domain or our host name in From:
    for sender, from_ in (("<>", "Al Bundy <al@bundy.net>"), ("bob@rooney.example", "al@bundy.net"),
                          ("bob@rooney.example", f"root@{HOST}"),
                          ("bob@rooney.example", '"bob@rooney.example" <marcy@DARCY.net>')):
        code, text = inbound(raw(from_, "forged-" + sender.strip("<>@.")), sender, "peg@bundy.net")
        assert code == 550 and b"DKIM" in text, (from_, code, text)
    # a forged hosted envelope sender to root@<host name>, and to a hosted address
    for rcpt in (f"root@{HOST}", f"postmaster@{HOST}", "peg@bundy.net"):
        code, _ = inbound(raw("bob@rooney.example", "forged-envelope"), "al@bundy.net", rcpt)
        assert code == 550, rcpt
    assert "refused From: bundy.net: no DKIM signature of bundy.net" in box.logs()

    # al posts to a list outside; the list passes the signed message on to peg, unchanged
    # but for a header of its own on top
    send(PORTS["submission"], message("al@bundy.net", "list@lists.example", "list-post"),
         login=("al", PASSWORDS["al"]), starttls=True)
    post = wait_for(lambda: outside.find("list-post"), 30, what="al's post at the list")[0]
    signed = post["data"].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    assert signed.count(b"DKIM-Signature:") == 2
    relayed = b"Received: from lists.example by lists.example; Fri, 27 Nov 2026 10:00:00 +0000\r\n"
    code, text = inbound(relayed + signed, "list-bounces@lists.example", "peg@bundy.net")
    assert code == 250, text
    arrived(PORTS["imap"], "peg", PASSWORDS["peg"], "list-post")
    assert "accepted From: bundy.net: signed (bundy.net " in box.logs()
    # each of our two signatures is enough on its own
    for kind in ("rsa", "ed25519"):
        other = "ed25519" if kind == "rsa" else "rsa"
        one = without_signature(signed, f"a={other}-sha256")
        assert one.count(b"DKIM-Signature:") == 1
        code, text = inbound(one.replace(b"list-post", f"list-post-{kind}".encode()),
                             "list-bounces@lists.example", "peg@bundy.net")
        assert code == 550, "the subject is signed"
        code, text = inbound(one, "list-bounces@lists.example", "peg@bundy.net")
        assert code == 250, (kind, text)
        assert f"accepted From: bundy.net: signed (bundy.net {kind})" in box.logs()
    # the same copy with a changed subject or body is refused
    for old, new in ((b"Subject: list-post", b"Subject: list-pest"), (b"\r\n\r\n", b"\r\n\r\nP.S.\r\n")):
        code, _ = inbound(signed.replace(old, new, 1), "list-bounces@lists.example", "peg@bundy.net")
        assert code == 550, new
    # mail from elsewhere is not affected
    code, _ = inbound(raw("bob@rooney.example", "from-bob"), "bob@rooney.example", "peg@bundy.net")
    assert code == 250
    assert "list-pest" not in subjects(PORTS["imap"], "peg", PASSWORDS["peg"])


def test_no_dsn_for_strangers_and_reports_without_their_content(box, outside):
    with smtp(PORTS["smtp"]) as s:
        s.ehlo("rooney.example")
        assert not s.has_extn("dsn")
        s.starttls(context=tls())
        s.ehlo("rooney.example")
        assert not s.has_extn("dsn")
        assert s.mail("bob@rooney.example")[0] == 250
        code, _ = s.rcpt("peg@bundy.net", ["NOTIFY=SUCCESS"])
        assert code >= 500                        # no success report for a stranger
    # a forward that fails: the report to the (forged) sender has no copy of the message
    marker = "ATTACKER-CONTENT-4711"
    data = (f"From: bob@rooney.example\r\nTo: shoes@bundy.net\r\nSubject: {marker}\r\n"
            f"X-Pay: {marker}\r\n\r\n{marker} click here\r\n").encode()
    code, _ = inbound(data, "victim@rooney.example", "shoes@bundy.net")
    assert code == 250
    report = wait_for(lambda: [m for m in outside.messages if "victim@rooney.example" in m["to"]],
                      60, what="the failure report")[0]
    assert report["from"] in ("", "<>")
    assert marker.encode() not in report["data"]
    assert b"not included" in report["data"]
    assert REFUSED.encode() in report["data"]
