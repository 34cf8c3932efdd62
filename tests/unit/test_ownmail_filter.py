"""mailorama-filter's ownmail and bounces rules, run as smtpd runs it (a subprocess speaking the
filter protocol, each session on port 25 or the sendmail socket: its link-connect report), with
real keys and real signatures (dkimpy) verified by the real openssl command:
inbound (port 25): a hosted From: passes only with a valid signature of ours, in every
canonicalization; a changed header or body, a foreign key, a missing signature, l= are refused;
a hosted envelope sender is refused; other mail passes untouched.
bounces (local socket): our failure reports lose the copy of the original message.
Any input is answered and never kills it."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from hypothesis import HealthCheck, given, settings, strategies as st

FILTER = Path(__file__).resolve().parents[2] / "mailorama" / "image" / "mailorama-filter"
HOST = "mail.bundy.net"
DOMAINS = ["bundy.net", "darcy.net"]
BASE = [f"host={HOST}", "smtp=25", "submission=587,465"]
LISTENER = {"inbound": "192.0.2.7:40000|192.0.2.1:25",
            "bounces": "unix:/var/run/smtpd.sock|unix:/var/run/smtpd.sock"}


def args(mode: str, keyfile: Path | None = None) -> list[str]:
    if mode == "inbound":
        return [*BASE, f"domains={','.join(DOMAINS)}", f"keys={keyfile}"]
    return BASE


def connect(sid: str, mode: str) -> str:
    return f"report|0.7|1.5|smtp-in|link-connect|{sid}|client.example|pass|{LISTENER[mode]}"

pytestmark = pytest.mark.skipif(not (shutil.which("perl") and shutil.which("openssl")),
                                reason="needs perl and openssl")


def openssl_reads_ed25519_from_a_pipe() -> bool:
    """OpenSSL >= 3.2 verifies Ed25519 over a pipe (the image has 3.5)."""
    version = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout
    major, minor = (int(x) for x in version.split()[1].split(".")[:2])
    return (major, minor) >= (3, 2)


class Keys:
    def __init__(self):
        self.rsa = rsa.generate_private_key(65537, 2048)
        self.ed = ed25519.Ed25519PrivateKey.generate()

    def file(self, tmp_path: Path) -> Path:
        spki = self.rsa.public_key().public_bytes(ser.Encoding.DER,
                                                  ser.PublicFormat.SubjectPublicKeyInfo)
        raw = self.ed.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
        path = tmp_path / "dkim-public"
        path.write_text(f"rsa v=DKIM1; k=rsa; p={base64.b64encode(spki).decode()}\n"
                        f"ed25519 v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}\n")
        return path

    def sign(self, msg: bytes, alg: str = "rsa", canon=(b"relaxed", b"simple"),
             domain: bytes = b"bundy.net", **kw) -> bytes:
        if alg == "rsa":
            key = self.rsa.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8,
                                         ser.NoEncryption())
            return dkim.sign(msg, b"rsa", domain, key, canonicalize=canon, **kw) + msg
        key = base64.b64encode(self.ed.private_bytes(ser.Encoding.Raw, ser.PrivateFormat.Raw,
                                                     ser.NoEncryption()))
        return dkim.sign(msg, b"ed25519", domain, key, canonicalize=canon,
                         signature_algorithm=b"ed25519-sha256", **kw) + msg


@pytest.fixture(scope="module")
def keys():
    return Keys()


@pytest.fixture
def keyfile(keys, tmp_path):
    return keys.file(tmp_path)


def transaction(msg: bytes, sender: str = "list-bounces@lists.example", sid: str = "s1",
                mode: str = "inbound") -> list[str]:
    lines = [connect(sid, mode), f"report|0.7|1.5|smtp-in|tx-mail|{sid}|1a2b|ok|{sender}",
             f"filter|0.7|1.5|smtp-in|mail-from|{sid}|m|{sender}"]
    for line in msg.decode().split("\r\n")[:-1]:
        lines.append(f"filter|0.7|1.5|smtp-in|data-line|{sid}|d|" + ("." + line if line.startswith(".") else line))
    return lines + [f"filter|0.7|1.5|smtp-in|data-line|{sid}|d|.",
                    f"filter|0.7|1.5|smtp-in|commit|{sid}|c"]


def run(args: list[str], lines: list[str]) -> tuple[list[str], str, int]:
    r = subprocess.run(["perl", str(FILTER), *args], input="\n".join(["config|ready", *lines]) + "\n",
                       capture_output=True, text=True, timeout=60)
    return r.stdout.split("\n")[:-1], r.stderr, r.returncode


def inbound(keyfile: Path, msg: bytes, sender: str = "list-bounces@lists.example"):
    """(mail-from decision, commit decision, lines passed on, log)"""
    out, err, code = run(args("inbound", keyfile), transaction(msg, sender))
    assert code == 0, err
    result = {x.split("|")[2]: x.split("|", 3)[3] for x in out if x.startswith("filter-result|")}
    passed = [x.split("|", 3)[3] for x in out if x.startswith("filter-dataline|")]
    return result["m"], result["c"], passed, err


MSG = (b"From: Al Bundy <al@bundy.net>\r\nTo: list@lists.example\r\nSubject: hi  there\r\n"
       b"Message-ID: <1@bundy.net>\r\n\r\nhello  \r\n.dotted line\r\n\r\n\r\n")
CANONS = [(h, b) for h in (b"simple", b"relaxed") for b in (b"simple", b"relaxed")]


@pytest.mark.parametrize("alg", ["rsa", "ed25519"])
@pytest.mark.parametrize("canon", CANONS, ids=lambda c: b"/".join(c).decode())
def test_our_signature_passes_in_every_canonicalization(keys, keyfile, alg, canon):
    if alg == "ed25519" and not openssl_reads_ed25519_from_a_pipe():
        pytest.skip("this openssl verifies Ed25519 from files only (the image's does)")
    signed = keys.sign(MSG, alg, canon)
    listed = b"List-Id: <list.lists.example>\r\nReceived: by lists.example\r\n" + signed
    mail_from, commit, passed, err = inbound(keyfile, listed)
    assert (mail_from, commit) == ("proceed", "proceed"), err
    assert f"accepted From: bundy.net: signed (bundy.net {alg})" in err
    assert "\r\n".join(passed) == (listed.decode().replace("\r\n.", "\r\n..")
                                   .removesuffix("\r\n") + "\r\n.")
    for old, new in ((b"hi  there", b"hi  their"), (b"hello", b"jello"),
                     (b"\r\n\r\nhello", b"\r\n\r\nP.S.\r\nhello")):
        _, commit, _, err = inbound(keyfile, listed.replace(old, new, 1))
        assert commit.startswith("reject|550 5.7.1 From: bundy.net"), (old, err)


def test_what_is_refused(keys, keyfile):
    refusals = {
        "unsigned": MSG,
        "foreign key": Keys().sign(MSG),
        "another domain's signature": keys.sign(MSG, domain=b"darcy.net"),
        "l= (a body length)": keys.sign(MSG, length=True),
        "a second From: added": b"From: bob@rooney.example\r\n" + keys.sign(MSG),
        "host name": MSG.replace(b"al@bundy.net", f"root@{HOST}".encode()),
        "quoted decoy": MSG.replace(b"Al Bundy <al@bundy.net>",
                                    b'"bob@rooney.example" <al@BUNDY.NET.>'),
    }
    for why, msg in refusals.items():
        _, commit, _, err = inbound(keyfile, msg)
        assert commit.startswith("reject|550 5.7.1"), (why, err)
    # a hosted envelope sender from outside
    mail_from, _, _, err = inbound(keyfile, MSG, sender="homer@bundy.net")
    assert mail_from.startswith("reject|550 5.7.1 bundy.net is hosted here")


def test_other_mail_passes_untouched(keyfile):
    for msg in (MSG.replace(b"al@bundy.net", b"bob@rooney.example"),
                MSG.replace(b"Al Bundy <al@bundy.net>", b'"al@bundy.net" <bob@rooney.example>'),
                MSG.replace(b"al@bundy.net", b"x@sub.bundy.net.example"),
                b"Subject: no header From at all\r\n\r\nbody\r\n"):
        mail_from, commit, passed, err = inbound(keyfile, msg, sender="")
        assert (mail_from, commit) == ("proceed", "proceed"), err
        assert len(passed) == msg.count(b"\r\n") + 1


REPORT = ("From: Mailer Daemon <MAILER-DAEMON@mail.bundy.net>\r\nTo: victim@rooney.example\r\n"
          "Subject: Delivery status notification: error\r\n\r\n"
          "    An error has occurred while attempting to deliver a message\r\n"
          "gary@garys-shoes.example: 550 No such user\r\n\r\n"
          "    Below is a copy of the original message:\r\n\r\n"
          "From: paypal@paypal.example\r\nSubject: CLICK\r\n\r\n.CLICK here\r\n").encode()


def test_our_reports_lose_the_copy_and_nothing_else_does():
    out, err, code = run(args("bounces"), transaction(REPORT, sender="", mode="bounces"))
    passed = [x.split("|", 3)[3] for x in out if x.startswith("filter-dataline|")]
    assert code == 0, err
    assert "gary@garys-shoes.example: 550 No such user" in passed
    assert "    The original message is not included in this report." in passed
    assert not any("CLICK" in x or "paypal" in x for x in passed)
    assert passed[-1] == "."
    for sender, msg in (("al@bundy.net", REPORT),                    # not from <>
                        ("", REPORT.replace(b"MAILER-DAEMON@mail.bundy.net", b"x@evil.example"))):
        out, _, _ = run(args("bounces"), transaction(msg, sender=sender, mode="bounces"))
        passed = [x.split("|", 3)[3] for x in out if x.startswith("filter-dataline|")]
        assert "..CLICK here" in passed


fields = st.text(st.characters(blacklist_characters="\n\r|", blacklist_categories=("Cs",)),
                 max_size=60)
events = st.sampled_from(["tx-mail", "tx-reset", "link-disconnect", "mail-from", "data-line",
                          "commit", "rcpt-to"])
request = st.builds(lambda kind, ev, sid, rest: f"{kind}|0.7|1.0|smtp-in|{ev}|{sid}|{rest}",
                    st.sampled_from(["report", "filter"]), events, st.sampled_from(["s1", "s2"]),
                    st.lists(st.one_of(fields, st.sampled_from(
                        ["From: al@bundy.net", "DKIM-Signature: v=1; a=rsa-sha256; d=bundy.net; "
                         "s=rsa; h=from; bh=AAAA; b=AAAA", "", ".", "ok"])),
                        min_size=1, max_size=4).map("|".join))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(request, fields), max_size=40), st.sampled_from(["inbound", "bounces"]))
def test_any_input_is_answered_and_never_kills_it(keyfile, lines, mode):
    out, err, code = run(args(mode, keyfile), [connect("s1", mode), connect("s2", mode), *lines])
    assert code == 0, err
    asked = [x.split("|") for x in lines if x.startswith("filter|") and len(x.split("|")) >= 7]
    results = [x for x in out if x.startswith("filter-result|")]
    assert len(results) == sum(1 for f in asked if f[4] != "data-line")
    assert "line " not in err, err
