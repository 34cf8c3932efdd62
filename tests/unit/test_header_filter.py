"""mailorama-filter's headers rule, before the DKIM signers, run as smtpd runs it: a subprocess
speaking the filter protocol on stdin/stdout, each session on a submission port or the sendmail
socket (its link-connect report). Any header gives a refusal (5xx, nothing passed
on) or headers with exactly one From: of the envelope sender; the body passes unchanged; the
filter never dies and never writes an error."""

from __future__ import annotations

import email
import email.policy
import itertools
import os
import re
import select
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

FILTER = Path(__file__).resolve().parents[2] / "mailorama" / "image" / "mailorama-filter"
HOST = "mail.bundy.net"
ARGS = [f"host={HOST}", "smtp=25", "submission=587,465"]
LISTENER = {"submission": "127.0.0.1:587", "local": "unix:/var/run/smtpd.sock"}
ENVELOPE = "peg@bundy.net"
TS = "1795770000.123456"

pytestmark = pytest.mark.skipif(not shutil.which("perl"), reason="needs perl")


class Filter:
    """One filter process; each message gets a session of its own."""

    def __init__(self, mode: str):
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(["perl", str(FILTER), *ARGS], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr)
        self.source = "unix:/var/run/smtpd.sock" if mode == "local" else "192.0.2.7:40000"
        self.listener = LISTENER[mode]
        self.buffer = b""
        self.sessions = itertools.count(0x7641df9771b4ed00)
        self.write(b"config|smtpd-version|7.6.0\nconfig|protocol|0.7\n"
                   b"config|subsystem|smtp-in\nconfig|ready\n")
        registered = []
        while not registered or registered[-1] != b"register|ready":
            registered.append(self.readline())
        assert b"register|filter|smtp-in|data-line" in registered
        assert b"register|report|smtp-in|tx-mail" in registered

    def write(self, data: bytes):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def readline(self, timeout: float = 10) -> bytes:
        while b"\n" not in self.buffer:
            ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
            assert ready, f"the filter did not answer in {timeout}s; stderr: {self.errors()}"
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            assert chunk, f"the filter exited ({self.proc.wait()}); stderr: {self.errors()}"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def errors(self) -> bytes:
        self.stderr.seek(0)
        return self.stderr.read()

    def message(self, lines: list[bytes], envelope: str | None = ENVELOPE,
                result: str = "ok") -> tuple[list[bytes], bytes]:
        """Send a message (lines without CRLF, not yet dot-stuffed); return the lines the
        filter passed on (dot-stuffing undone) and its commit decision."""
        sid = f"{next(self.sessions):016x}".encode()
        token = b"1ef1c203cc576e5d"
        head = b"filter|0.7|" + TS.encode() + b"|smtp-in|"
        data = (b"report|0.7|" + TS.encode() + b"|smtp-in|link-connect|" + sid + b"|client.test|pass|"
                + self.source.encode() + b"|" + self.listener.encode() + b"\n")
        data += b"report|0.7|" + TS.encode() + b"|smtp-in|tx-begin|" + sid + b"|a1b2c3d4\n"
        if envelope is not None:
            data += (b"report|0.7|" + TS.encode() + b"|smtp-in|tx-mail|" + sid + b"|a1b2c3d4|"
                     + result.encode() + b"|" + envelope.encode() + b"\n")
        for line in lines:
            stuffed = b"." + line if line.startswith(b".") else line
            data += head + b"data-line|" + sid + b"|" + token + b"|" + stuffed + b"\n"
        data += head + b"data-line|" + sid + b"|" + token + b"|.\n"
        data += head + b"commit|" + sid + b"|" + token + b"|\n"
        data += b"report|0.7|" + TS.encode() + b"|smtp-in|link-disconnect|" + sid + b"\n"
        writer = threading.Thread(target=self.write, args=(data,))
        writer.start()
        out = []
        prefix = b"filter-dataline|" + sid + b"|" + token + b"|"
        while True:
            line = self.readline()
            assert line.startswith(prefix), line
            text = line[len(prefix):]
            if text == b".":
                break
            out.append(text[1:] if text.startswith(b".") else text)
        decision = self.readline()
        writer.join()
        assert decision.startswith(b"filter-result|" + sid + b"|" + token + b"|"), decision
        return out, decision.split(b"|", 3)[3]

    def close(self):
        self.proc.stdin.close()
        assert self.proc.wait(timeout=10) == 0
        assert self.errors() == b""


@pytest.fixture(scope="module")
def submission():
    f = Filter("submission")
    yield f
    f.close()


@pytest.fixture(scope="module")
def local():
    f = Filter("local")
    yield f
    f.close()


def split(out: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    i = out.index(b"")
    return out[:i], out[i + 1:]


def check_submitted(out: list[bytes], envelope: str = ENVELOPE):
    """The headers name only `envelope` as author, in a form every parser reads alike."""
    headers, _ = split(out)
    fields = [h for h in headers if not h[:1].isspace()]
    froms = [h for h in fields if re.match(rb"(?i)from[ \t]*:", h)]
    assert len(froms) == 1, headers
    start = headers.index(froms[0])
    block = [froms[0]] + list(itertools.takewhile(lambda h: h[:1].isspace(), headers[start + 1:]))
    addr = envelope.encode()
    assert (block == [b"From: " + addr]
            or re.fullmatch(rb'From: "([\x20-\x21\x23-\x5b\x5d-\x7e]|\\["\\])*" <' + re.escape(addr)
                            + rb">", block[0]) and len(block) == 1
            or (re.fullmatch(rb"From: =\?UTF-8\?B\?[A-Za-z0-9+/=]+\?=", block[0])
                and all(re.fullmatch(rb" =\?UTF-8\?B\?[A-Za-z0-9+/=]+\?=", b) for b in block[1:-1])
                and block[-1] == b" <" + addr + b">")), block
    assert not [f for f in fields if re.match(rb"(?i)(sender|resent-from|resent-sender)[ \t]*:", f)]
    assert [f for f in fields if re.match(rb"(?i)date[ \t]*:", f)]
    assert [f for f in fields if re.match(rb"(?i)message-id[ \t]*:", f)]
    msg = email.message_from_bytes(b"\r\n".join(out), policy=email.policy.default)
    (address,) = msg["From"].addresses
    assert address.addr_spec == envelope
    assert not re.search("[@\uff20\ufe6b]", address.display_name), address


BODY = [b"hello", b".a line with a leading dot", b"", b"From: marge@bundy.net in the body", b"|"]


@pytest.mark.parametrize("from_lines,name", [
    ([b"From: Peg <Peg@Bundy.net>"], "Peg"),
    ([b"From: PEG@BUNDY.NET"], None),
    ([b'From: "Bundy, Peg" <peg@bundy.net>'], "Bundy, Peg"),
    ([b"From: =?utf-8?q?Peg_B=C3=BCndy?= <peg@bundy.net>"], "Peg Bündy"),
    ([b"From: =?ISO-8859-1?Q?Peg_B=FCndy?= <peg@bundy.net>"], "Peg Bündy"),
    ([b"From: =?utf-8?b?UGVn?= =?utf-8?b?IEJ1bmR5?= <x@y>"], "Peg Bundy"),
    ([b"From: peg@bundy.net (Peg Bundy)"], None),
    ([b"From: John Q. Public <jqp@x.example>"], "John Q. Public"),
    ([b"From: Al Bundy <al@bundy.net>"], "Al Bundy"),
    ([b"From: marcy@darcy.net"], None),
    ([b'From: "al@bundy.net" <peg@bundy.net>'], None),
    ([b"From: =?utf-8?b?YWxAYnVuZHkubmV0?= <peg@bundy.net>"], None),
    ([b'From: "=?utf-8?b?YWxAYnVuZHkubmV0?=" <peg@bundy.net>'], None),
    ([b"From: =?utf-8?b?77yg?= <peg@bundy.net>"], None),
    ([b"From: =?utf-16?b?AEAA?= <peg@bundy.net>"], None),
    ([b"From: =?utf-8?b?4oCuYWw=?= <peg@bundy.net>"], None),
    ([b"From: Peg", b" Bundy", b"\t<peg@bundy.net>"], "Peg Bundy"),
    ([b"From : al@bundy.net"], None),
    ([b"FROM\t: al@bundy.net"], None),
    ([b"From: <@a.example:al@bundy.net>"], None),
    ([b"From: Al <@a.example,@b.example:al@bundy.net>"], "Al"),
    ([b"From:"], None),
    ([], None),
    ([b'From: "' + b"P" * 3000 + b'" <peg@bundy.net>'], None),
    ([b"From: P\xc3\xa9g <peg@bundy.net>"], None),
    ([b"From: peg@bundy.net", b"Sender: al@bundy.net", b"Resent-From: al@bundy.net",
      b"resent-sender : al@bundy.net"], None),
])
def test_rewritten(submission, from_lines, name):
    out, decision = submission.message(from_lines + [b"To: bob@rooney.example", b""] + BODY)
    assert decision == b"proceed"
    check_submitted(out)
    headers, body = split(out)
    assert body == BODY
    msg = email.message_from_bytes(b"\r\n".join(out), policy=email.policy.default)
    assert (msg["From"].addresses[0].display_name or None) == name
    assert b"To: bob@rooney.example" in headers


@pytest.mark.parametrize("from_lines,reply", [
    ([b"From: Bundys: al@bundy.net, peg@bundy.net;"], b"550 5.7.1 From: must name exactly one"),
    ([b"From: Undisclosed:;"], b"550 5.7.1 From: must name exactly one"),
    ([b"From: peg@bundy.net, al@bundy.net"], b"550 5.7.1 From: must name exactly one"),
    ([b"From: peg@bundy.net", b"From: al@bundy.net"], b"550 5.7.1 Several From: headers"),
    ([b"From: peg@bundy.net", b"from : al@bundy.net"], b"550 5.7.1 Several From: headers"),
    ([b"From: al@bundy.net <peg@bundy.net>"], b"550 5.7.1 Unreadable From:"),
    ([b'From: "unterminated <peg@bundy.net>'], b"550 5.7.1 Unreadable From:"),
    ([b"From: <peg@bundy.net"], b"550 5.7.1 Unreadable From:"),
    ([b"From: (unterminated peg@bundy.net"], b"550 5.7.1 Unreadable From:"),
    ([b"From: peg@bundy.net", b"To: bob"], b"550 5.6.0 To: and Cc: need full addresses"),
    ([b"From: peg@bundy.net", b"Cc: al@bundy.net, Marcy <marcy>"], b"550 5.6.0 To: and Cc:"),
    ([b"From: peg@bundy.net", b"cc :", b" bob@x,(a comment)"], b"550 5.6.0 To: and Cc:"),
    # smtpd ends the last line of the value with a newline too: a final backslash escapes
    # nothing, and it appends "@host" after it
    ([b"From: peg@bundy.net", b"To: \\"], b"550 5.6.0 To: and Cc:"),
    ([b"From: peg@bundy.net", b"To: al\\"], b"550 5.6.0 To: and Cc:"),
    ([b"From: peg@bundy.net", b"Cc: al@bundy.net, peg\\"], b"550 5.6.0 To: and Cc:"),
    ([b"From: peg@bundy.net", b"To: al\\", b" peg\\"], b"550 5.6.0 To: and Cc:"),
    ([b"From: peg@bundy.net", b'Cc: "x\\" <al>'], b"550 5.6.0 To: and Cc:"),
    ([b"From: peg@bundy.net", b"Subject: x\ry"], b"550 5.6.0 Header with a bare CR"),
])
def test_refused(submission, from_lines, reply):
    out, decision = submission.message(from_lines + [b"Subject: x", b"", b"body"])
    assert out == []
    assert decision.startswith(b"reject|" + reply), decision


@pytest.mark.parametrize("to", [
    b"To: undisclosed-recipients:;", b'To: "Bundy, Al" <al@bundy.net>, peg@bundy.net',
    b"To: <@a.example:al@bundy.net>", b"To: al@bundy.net (Al), <>", b"Cc: (a comment)", b'Cc: "a\\"b" <x@y>',
    b"To: al\\, bob@x", b"Cc: (al\\", b'Cc: "al\\'])
def test_recipient_headers_smtpd_leaves_alone(submission, to):
    out, decision = submission.message([b"From: peg@bundy.net", to, b"", b"x"])
    assert decision == b"proceed" and to in out


def test_a_backslash_before_a_folded_line(submission):
    to = [b"To: al\\", b" bob@rooney.example"]
    out, decision = submission.message([b"From: peg@bundy.net", *to, b"", b"x"])
    assert decision == b"proceed" and out[1:3] == to


def test_space_before_the_colon_is_removed(submission):
    out, _ = submission.message([b"From: peg@bundy.net", b"Subject \t: hi", b"cc : x@y", b"", b"b"])
    assert out[1:3] == [b"Subject: hi", b"cc: x@y"]


def test_a_logged_in_sender_needs_an_envelope(submission):
    for envelope, result in ((None, "ok"), ("", "ok"), ("peg@bundy.net", "permfail"),
                             ('"a b"@bundy.net', "ok")):
        out, decision = submission.message([b"From: peg@bundy.net", b"", b"x"], envelope, result)
        assert out == [] and decision.startswith(b"reject|550 5.7.1 "), envelope


def test_envelope_case_is_kept(submission):
    out, decision = submission.message([b"From: peg@bundy.net", b"", b"x"], "Peg@Bundy.NET")
    assert decision == b"proceed"
    check_submitted(out, "Peg@Bundy.NET")


def test_date_and_message_id_added_only_when_missing(submission):
    out, _ = submission.message([b"From: peg@bundy.net", b"", b"x"])
    headers, _ = split(out)
    assert [h for h in headers if h.startswith(b"Date: ")]
    (mid,) = [h for h in headers if h.startswith(b"Message-ID: ")]
    assert re.fullmatch(rb"Message-ID: <[0-9a-f]{24}\.[0-9a-f]+\.[0-9a-f]+@mail\.bundy\.net>", mid)
    given_ = [b"From: peg@bundy.net", b"Date: Fri, 27 Nov 2026 10:00:00 +0000",
              b"Message-Id: <x@client.test>", b"", b"x"]
    out, _ = submission.message(given_)
    assert split(out)[0] == given_[:3]


def test_a_line_that_is_no_header_starts_the_body(submission):
    out, decision = submission.message([b"From: peg@bundy.net", b"not a header", b"From: al@bundy.net"])
    assert decision == b"proceed"
    headers, body = split(out)
    assert body == [b"not a header", b"From: al@bundy.net"]
    check_submitted(out)
    out, decision = submission.message([b"just a body line"])
    assert decision == b"proceed" and split(out)[1] == [b"just a body line"]


def test_header_section_is_bounded(submission):
    big = [b"X-Filler: " + b"x" * 990] * 300
    out, decision = submission.message([b"From: peg@bundy.net"] + big + [b"", b"x"])
    assert out == [] and decision.startswith(b"reject|552 5.3.4")
    # the next message is handled normally
    out, decision = submission.message([b"From: peg@bundy.net", b"", b"x"])
    assert decision == b"proceed"


def test_long_body_streams_through(submission):
    body = [b"line %d " % i + b"y" * 200 for i in range(5000)]
    out, decision = submission.message([b"From: peg@bundy.net", b""] + body)
    assert decision == b"proceed" and split(out)[1] == body


@pytest.mark.parametrize("from_lines,expected", [
    ([b"From: Al <@a.example:al@bundy.net>"], [b'From: "Al" <al@bundy.net>']),
    ([b"From: root@mail.bundy.net (Cron Daemon)"], [b"From: root@mail.bundy.net"]),
    ([b"From: root (Cron Daemon)"], [b"From: root@mail.bundy.net"]),
    ([b"From: a@b, c@d"], [b"From: root@mail.bundy.net"]),
    ([b"From: x@y", b"From: z@y"], [b"From: root@mail.bundy.net"]),
    ([b"From: Group: x@y;"], [b"From: root@mail.bundy.net"]),
    ([b'From: "x" <"q u"@bundy.net>'], [b"From: root@mail.bundy.net"]),
    ([b"From: x@[1.2.3.4]"], [b"From: root@mail.bundy.net"]),
    ([], [b"From: root@mail.bundy.net"]),
])
def test_local_sendmail(local, from_lines, expected):
    """The sendmail socket: the From: it names is kept when plain (root is trusted), anything
    else becomes the envelope sender; Sender: is left alone."""
    out, decision = local.message(from_lines + [b"Sender: x@y", b"", b"hi"], "root@mail.bundy.net")
    assert decision == b"proceed"
    headers, body = split(out)
    assert [h for h in headers if h.lower().startswith(b"from")] == expected
    assert b"Sender: x@y" in headers and body == [b"hi"]


def test_local_without_a_usable_envelope(local):
    out, _ = local.message([b"From: <@x:y>", b"", b"hi"], None)
    assert b"From: MAILER-DAEMON@mail.bundy.net" in out


def test_protocol_details(submission):
    """Other phases get 'proceed'; reports of other sessions change nothing."""
    submission.write(b"filter|0.7|" + TS.encode() + b"|smtp-in|helo|00000000000000aa|"
                     b"00000000000000bb|client.test\n")
    assert submission.readline() == b"filter-result|00000000000000aa|00000000000000bb|proceed"
    submission.write(b"report|0.7|" + TS.encode() + b"|smtp-in|tx-mail|00000000000000cc|1|ok|"
                     b"a|b@c\nreport|0.7|" + TS.encode() + b"|smtp-in|link-auth|00000000000000cc|"
                     b"pass|peg\nnonsense\n")
    out, decision = submission.message([b"From: peg@bundy.net", b"", b"x"])
    assert decision == b"proceed"


PIECES = st.sampled_from([
    b"peg", b"al", b"Peg", b"@", b"bundy.net", b"darcy.net", b"<", b">", b'"', b"(", b")", b",",
    b":", b";", b" ", b"\t", b".", b"\\", b"[1.2.3.4]", b"=?utf-8?b?", b"=?utf-8?q?",
    b"=?iso-8859-1?q?", b"?=", b"YWxAYnVuZHkubmV0", b"=40", b"\xc3\xa9", b"\xef\xbc\xa0", b"\xff",
    b"@a.example:", b"\r", b"\x00", b"\x1b", b"|",
])
FIELD = st.sampled_from([b"From", b"FROM", b"from", b"From ", b"From\t", b"Sender", b"To", b"Cc",
                         b"Resent-From", b"Resent-Sender", b"Subject", b"Date", b"Message-ID"])
HEADER = st.one_of(
    st.builds(lambda n, v: n + b":" + b"".join(v), FIELD, st.lists(PIECES, max_size=15)),
    st.builds(lambda v: b" " + b"".join(v), st.lists(PIECES, max_size=5)),
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(HEADER, max_size=8), st.lists(st.binary(max_size=30).map(
    lambda b: b.replace(b"\n", b"")), max_size=4))
def test_any_headers(submission, local, headers, body):
    out, decision = submission.message(headers + [b""] + body)
    if decision == b"proceed":
        check_submitted(out)
        assert out[-len(body):] == body if body else True
    else:
        assert out == [] and re.fullmatch(rb"reject\|5\d\d 5\.\d\.\d [ -~]+", decision), decision
    out, decision = local.message(headers + [b""] + body, "root@mail.bundy.net")
    assert decision == b"proceed"
    froms = [h for h in split(out)[0] if re.match(rb"(?i)from[ \t]*:", h)]
    assert len(froms) == 1 and b"<@" not in froms[0], out
