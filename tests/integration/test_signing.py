"""Hostile From: headers from a logged-in user, against the real container: every message is
refused with 5xx or delivered with a valid RSA and a valid Ed25519 signature (d= the sender's
domain) and a From: of the sender's own address only; the container never restarts."""

from __future__ import annotations

import email
import email.policy
import itertools
import re
import smtplib
from email.headerregistry import Address

import dkim
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from stack import PASSWORDS, Sink, docker, fresh_stack
from mail import smtp, tls, wait_for

pytestmark = pytest.mark.docker
NAME = "mor-test-signing"
PORTS = {"smtp": 3525, "submission": 3587, "submissions": 3465, "imap": 3143, "imaps": 3993}
SINK_PORT = 3600
SENDER = "peg@bundy.net"
RCPT = "bob@rooney.example"


@pytest.fixture(scope="module")
def outside():
    with Sink(SINK_PORT) as s:
        yield s


@pytest.fixture(scope="module")
def box(image, tmp_path_factory, outside):
    stack = fresh_stack(NAME, tmp_path_factory.mktemp("signing"), mailorama_listen=["127.0.0.1"],
                        mailorama_ports=PORTS, mailorama_relay_host=f"127.0.0.1:{SINK_PORT}")
    stack.up()
    stack.before = state(stack)
    yield stack
    stack.save_logs()
    stack.compose("down", check=False)
    stack.remove()


def state(stack) -> str:
    return docker("inspect", "-f", "{{.RestartCount}} {{.State.StartedAt}}",
                  stack.name).stdout.decode().strip()


class Session:
    """One logged-in submission session, reopened when the server closed it."""

    def __init__(self):
        self.conn = None

    def send(self, data: bytes, sender: str = SENDER) -> tuple[int, bytes]:
        if self.conn is None:
            self.conn = smtp(PORTS["submission"])
            self.conn.ehlo("client.test")
            self.conn.starttls(context=tls())
            self.conn.ehlo("client.test")
            self.conn.login("peg", PASSWORDS["peg"])
        try:
            self.conn.sendmail(sender, [RCPT], data)
            return 250, b""
        except smtplib.SMTPDataError as e:
            return e.smtp_code, e.smtp_error
        except smtplib.SMTPServerDisconnected as e:
            self.conn = None
            return 0, str(e).encode()

    def close(self):
        if self.conn is not None:
            try:
                self.conn.quit()
            except smtplib.SMTPException:
                pass


@pytest.fixture(scope="module")
def session(box):
    s = Session()
    yield s
    s.close()


def records(box) -> dict[str, bytes]:
    """selector -> TXT value, from the keys the container made (quoted strings joined)."""
    out = {}
    for path in (box.root / "keys" / "dkim").glob("*.txt"):
        text = path.read_text()
        parts = re.findall(r'"([^"]*)"', text)
        out[path.stem] = ("".join(parts) if parts else text).strip().encode()
    return out


def check_delivered(box, data: bytes, sender: str = SENDER):
    """Both signatures verify for d=<sender's domain>; the only From: is the sender's address;
    no Sender:/Resent-From:/Resent-Sender:; one Date: and one Message-ID:."""
    keys = records(box)

    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        return keys.get(name.split("._domainkey.")[0])

    checker = dkim.DKIM(data)
    signatures = [v for k, v in email.message_from_bytes(data).items() if k.lower() == "dkim-signature"]
    assert len(signatures) == 2, data[:2000]
    tags = [dict(re.findall(r"(\w+)=([^;]*)", re.sub(r"\s+", "", str(s)))) for s in signatures]
    assert sorted(t["a"] for t in tags) == ["ed25519-sha256", "rsa-sha256"]
    assert all(t["d"] == sender.split("@")[1].lower() for t in tags), tags
    assert [checker.verify(idx=i, dnsfunc=dnsfunc) for i in range(2)] == [True, True], data[:3000]
    msg = email.message_from_bytes(data, policy=email.policy.default)
    headers = data.split(b"\r\n\r\n")[0]
    froms = re.findall(rb"(?im)^from[ \t]*:", headers)
    assert len(froms) == 1, headers
    (address,) = msg["From"].addresses
    assert isinstance(address, Address)
    assert address.addr_spec == sender, msg["From"]
    assert "@" not in address.display_name and "\uff20" not in address.display_name
    assert not re.search(rb"(?im)^(sender|resent-from|resent-sender)[ \t]*:", headers), headers
    assert len(re.findall(rb"(?im)^date[ \t]*:", headers)) == 1
    assert len(re.findall(rb"(?im)^message-id[ \t]*:", headers)) == 1


def submit(box, session, outside, from_lines: bytes, subject: str, extra: bytes = b"",
           sender: str = SENDER) -> int:
    """Send one message with `from_lines` as its From: part; check it refused or delivered."""
    data = (from_lines + b"To: " + RCPT.encode() + b"\r\nSubject: " + subject.encode() + b"\r\n"
            + extra + b"\r\nhello " + subject.encode() + b"\r\n.leading dot\r\n")
    code, text = session.send(data, sender)
    assert code == 250 or 500 <= code < 600, (from_lines, code, text)
    if code == 250:
        got = wait_for(lambda: outside.find(f"Subject: {subject}\r\n"), timeout=20,
                       what=f"{subject} at the sink")
        assert len(got) == 1
        check_delivered(box, got[0]["data"], sender)
        assert got[0]["data"].endswith(b"\r\nhello " + subject.encode() + b"\r\n.leading dot\r\n")
    return code


DATE_ID = b"Date: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <x@client.test>\r\n"
HOSTILE = [
    # (From: part, expected: 250 delivered / 550 refused)
    (b"From: Peg <Peg@Bundy.net>\r\n", 250),
    (b"From: PEG@BUNDY.NET\r\n", 250),
    (b"From: \"Bundy, Peg\" <peg@bundy.net>\r\n", 250),
    (b"From: =?utf-8?q?Peg_B=C3=BCndy?= <peg@bundy.net>\r\n", 250),
    (b"From: =?ISO-8859-1?Q?Peg_B=FCndy?= <peg@bundy.net>\r\n", 250),
    (b"From: peg@bundy.net (Peg Bundy)\r\n", 250),
    (b"From: (al@bundy.net) peg@bundy.net\r\n", 250),
    (b"From: Al Bundy <al@bundy.net>\r\n", 250),
    (b"From: marcy@darcy.net\r\n", 250),
    (b"From: \"al@bundy.net\" <peg@bundy.net>\r\n", 250),
    (b"From: =?utf-8?b?YWxAYnVuZHkubmV0?= <peg@bundy.net>\r\n", 250),
    (b"From: \"=?utf-8?b?YWxAYnVuZHkubmV0?=\" <peg@bundy.net>\r\n", 250),
    (b"From: =?utf-8?b?77yg?= al <peg@bundy.net>\r\n", 250),
    (b"From: Peg\r\n Bundy\r\n\t<peg@bundy.net>\r\n", 250),
    (b"From : al@bundy.net\r\n", 250),
    (b"FROM\t: al@bundy.net\r\n", 250),
    (b"from: al@bundy.net\r\n", 250),
    (b"From: <@a.example:al@bundy.net>\r\n", 250),
    (b"From: Al <@a.example,@b.example:al@bundy.net>\r\n", 250),
    (b"From: <@a.example:peg@bundy.net>\r\n", 250),
    (b"From:\r\n", 250),
    (b"", 250),
    (b"From: \"" + b"P" * 3000 + b"\" <peg@bundy.net>\r\n", 250),
    (b"From: P\xc3\xa9g <peg@bundy.net>\r\n", 250),
    (b"From: peg@bundy.net\r\nSender: al@bundy.net\r\nResent-From: al@bundy.net\r\n"
     b"Resent-Sender: al@bundy.net\r\n", 250),
    (b"From: Bundys: al@bundy.net, peg@bundy.net;\r\n", 550),
    (b"From: Undisclosed:;\r\n", 550),
    (b"From: peg@bundy.net, al@bundy.net\r\n", 550),
    (b"From: peg@bundy.net\r\nFrom: al@bundy.net\r\n", 550),
    (b"From: peg@bundy.net\r\nFrom : al@bundy.net\r\n", 550),
    (b"From: al@bundy.net <peg@bundy.net>\r\n", 550),
    (b"From: \"unterminated <peg@bundy.net>\r\n", 550),
    (b"From: <peg@bundy.net\r\n", 550),
]


def test_hostile_from_headers(box, session, outside):
    for i, (from_lines, expected) in enumerate(HOSTILE):
        code = submit(box, session, outside, from_lines, f"hostile-{i}", DATE_ID)
        assert code == expected, (from_lines, code)


def test_date_and_message_id_added(box, session, outside):
    assert submit(box, session, outside, b"From: peg@bundy.net\r\n", "no-date-no-id") == 250
    data = outside.find("Subject: no-date-no-id\r\n")[0]["data"]
    assert re.search(rb"(?m)^Message-ID: <[^>]+@mail\.bundy\.net>\r$", data)


def test_envelope_case_is_kept_and_signed(box, session, outside):
    assert submit(box, session, outside, b"From: peg@bundy.net\r\n", "envelope-case", DATE_ID,
                  sender="Peg@Bundy.NET") in (250, 550)


@pytest.mark.parametrize("recipients,expected", [
    (b"Cc: al, Marcy <marcy>\r\n", 550),          # smtpd would qualify them after signing
    (b"Cc: al@bundy.net,(a comment)\r\n", 550),
    (b"Cc: (a comment)\r\n", 250),
    (b"Cc: undisclosed-recipients:;\r\n", 250),
    (b"Cc: \"Bundy, Al\" <al@bundy.net>,\r\n peg@bundy.net\r\n", 250),
    (b"cc : al@bundy.net\r\n", 250),
    (b"Cc: <>, al@bundy.net (Al)\r\n", 250),
    (b"To: \\\r\n", 550),                          # a field ending in a backslash: smtpd
    (b"To: al\\\r\n", 550),                        # qualifies it: "al\\@host"
    (b"Cc: al@bundy.net, peg\\\r\n", 550),
    (b"Cc: \"x\\\" <al>\r\n", 550),
    (b"To: al\\, bob@rooney.example\r\n", 250),
    (b"To: al\\\r\n bob@rooney.example\r\n", 250),
    (b"To: al\\\r\n peg\\\r\n", 550),
    (b"Cc: (al\\\r\n", 250),
    (b"Cc: \"al\\\r\n", 250),
])
def test_recipient_headers(box, session, outside, recipients, expected):
    """Nothing after the signers may change a signed header: smtpd qualifies To:/Cc:."""
    subject = f"recipients-{next(NUMBERS)}"
    assert submit(box, session, outside, b"From: peg@bundy.net\r\n", subject,
                  DATE_ID + recipients) == expected


def test_odd_bytes(box, session, outside):
    """NUL, bare CR and 8-bit: refused or delivered signed, never a crash."""
    for i, from_lines in enumerate([b"From: peg\x00@bundy.net\r\n", b"From: al@bundy.net\rX: y\r\n",
                                    b"From: \xff\xfe <peg@bundy.net>\r\n", b" From: al@bundy.net\r\n",
                                    b"From: \x1b[31mal@bundy.net <peg@bundy.net>\r\n"]):
        submit(box, session, outside, from_lines, f"odd-{i}", DATE_ID)


PIECES = st.sampled_from([
    "peg", "al", "Peg", "AL", "@", "bundy.net", "darcy.net", "<", ">", "\"", "(", ")", ",", ":",
    ";", " ", "\t", "\r\n ", ".", "\\", "[1.2.3.4]", "=?utf-8?b?", "=?utf-8?q?", "?=",
    "YWxAYnVuZHkubmV0", "=40", "\u00e9", "\uff20", "@a.example:",
])
NUMBERS = itertools.count()
FIELD = st.sampled_from(["From", "FROM", "from", "From ", "From\t", "Sender", "Resent-From",
                         "To", "Cc", "cc "])


@settings(max_examples=50, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.tuples(FIELD, st.lists(PIECES, max_size=12)), max_size=3))
def test_generated_from_headers(box, session, outside, fields):
    lines = b"".join(f"{name}:{''.join(value)}\r\n".encode() for name, value in fields)
    submit(box, session, outside, lines, f"generated-{next(NUMBERS)}", DATE_ID)


def test_local_sendmail_route_address(box, outside):
    """The sendmail socket: a route address reaches the signer only rewritten."""
    box.exec("sendmail", "-f", "al@bundy.net", RCPT,
             input=b"From: Al <@a.example:al@bundy.net>\nSubject: local-route\n\nhi\n")
    got = wait_for(lambda: outside.find("Subject: local-route\r\n"), what="local-route at the sink")
    check_delivered(box, got[0]["data"], "al@bundy.net")


def test_container_never_restarted(box):
    assert state(box) == box.before
    assert docker("inspect", "-f", "{{.State.Running}}", box.name).stdout.strip() == b"true"
