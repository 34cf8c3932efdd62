"""Login throttling against the real container: wrong passwords from one loopback address
(SMTP AUTH, IMAP LOGIN, ManageSieve AUTHENTICATE) until it is blocked; the block is logged with
address and count, refuses even the right password there, never slows a login from another
address, ends by itself and doubles on repeat; the allow-list is never blocked."""

from __future__ import annotations

import base64
import imaplib
import re
import smtplib
import socket
import time

import pytest

from stack import PASSWORDS, fresh_stack
from mail import smtp, tls, wait_for

pytestmark = pytest.mark.docker
NAME = "mor-test-throttle"
PORTS = {"smtp": 19525, "submission": 19587, "submissions": 19465, "imap": 19143,
         "imaps": 19993, "managesieve": 19190}
THROTTLE = {"failures": 2, "window": 120, "block": 40, "max_block": 100}
ALLOWED = "127.0.0.4"
RIGHT = ("al", PASSWORDS["al"])


@pytest.fixture(scope="module")
def box(image, tmp_path_factory):
    stack = fresh_stack(NAME, tmp_path_factory.mktemp("throttle"),
                        mailorama_listen=["127.0.0.1", "::1"],
                        mailorama_ports=PORTS, mailorama_login_throttle=THROTTLE,
                        mailorama_login_allow=[ALLOWED, "2001:db8::/64"])
    stack.up()
    yield stack
    stack.save_logs()
    stack.compose("down", check=False)
    stack.remove()


def smtp_auth(source: str, user: str, password: str) -> int:
    """One AUTH PLAIN on the submission port: the reply code (421 when refused at connect)."""
    try:
        conn = smtp(PORTS["submission"], source, host="::1" if ":" in source else "127.0.0.1")
    except smtplib.SMTPConnectError as e:
        return e.smtp_code
    try:
        conn.ehlo("client.test")
        conn.starttls(context=tls())
        conn.ehlo("client.test")
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        code, _ = conn.docmd("AUTH", f"PLAIN {token}")
        return code
    except smtplib.SMTPServerDisconnected:
        return 421
    finally:
        conn.close()


class IMAPFrom(imaplib.IMAP4):
    """IMAP with STARTTLS from a chosen loopback source address."""

    def __init__(self, source: str):
        self.source = source
        super().__init__("::1" if ":" in source else "127.0.0.1", PORTS["imap"], timeout=30)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, (self.source, 0))


def imap_login(source: str, user: str, password: str) -> bool:
    conn = IMAPFrom(source)
    try:
        conn.starttls(ssl_context=tls())
        conn.login(user, password)
        return True
    except imaplib.IMAP4.error:
        return False
    finally:
        conn.shutdown()


def sieve_login(source: str, user: str, password: str) -> bool:
    """ManageSieve: STARTTLS, AUTHENTICATE PLAIN; True on OK."""
    sock = socket.create_connection(("127.0.0.1", PORTS["managesieve"]), 30, (source, 0))

    def until_status(f) -> str:
        while True:
            line = f.readline().decode()
            assert line, "the server closed the connection"
            if line.split(" ", 1)[0] in ("OK", "NO", "BYE"):
                return line

    try:
        until_status(sock.makefile("rb"))
        sock.sendall(b"STARTTLS\r\n")
        assert until_status(sock.makefile("rb")).startswith("OK")
        sock = tls().wrap_socket(sock)
        f = sock.makefile("rb")
        until_status(f)
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        sock.sendall(f'AUTHENTICATE "PLAIN" "{token}"\r\n'.encode())
        return until_status(f).startswith("OK")
    finally:
        sock.close()


def blocked_line(stack, source: str, block: int, level: int) -> str:
    pattern = (rf"login throttle: blocked {re.escape(source)} for {block} s after "
               rf"{THROTTLE['failures']} failed logins within {THROTTLE['window']} s "
               rf"\(block {level}\)")
    return wait_for(lambda: re.search(pattern, stack.logs()), 10, what=pattern)[0]


def test_guessing_is_blocked_logged_not_slowing_others_and_ends(box):
    smtp_source, imap_source, sieve_source = "127.0.0.2", "127.0.0.5", "127.0.0.6"
    # SMTP AUTH (submission)
    codes = [smtp_auth(smtp_source, "al", f"wrong{i}") for i in range(THROTTLE["failures"])]
    assert codes == [535] * THROTTLE["failures"]
    smtp_blocked = time.monotonic()
    assert smtp_auth(smtp_source, *RIGHT) == 421       # blocked: even the right password
    line = blocked_line(box, smtp_source, THROTTLE["block"], 1)
    assert next(x for x in box.logs().splitlines() if line in x).startswith("smtpd: ")
    t = time.monotonic()
    assert smtp_auth("127.0.0.3", *RIGHT) == 235       # another address is not slowed
    assert time.monotonic() - t < 3
    # IMAP LOGIN (Dovecot delays each login after failures by up to 15 s more)
    for i in range(THROTTLE["failures"]):
        assert not imap_login(imap_source, "peg", f"wrong{i}")
    imap_blocked = time.monotonic()
    line = blocked_line(box, imap_source, THROTTLE["block"], 1)
    assert next(x for x in box.logs().splitlines() if line in x).startswith("dovecot: ")
    assert not imap_login(imap_source, "peg", PASSWORDS["peg"])
    t = time.monotonic()
    assert imap_login("127.0.0.3", "peg", PASSWORDS["peg"])
    assert time.monotonic() - t < 3
    # ManageSieve: the same passdb
    for i in range(THROTTLE["failures"]):
        assert not sieve_login(sieve_source, "kelly", f"wrong{i}")
    blocked_line(box, sieve_source, THROTTLE["block"], 1)
    assert not sieve_login(sieve_source, "kelly", PASSWORDS["kelly"])
    # the blocks end by themselves
    wait_for(lambda: smtp_auth(smtp_source, *RIGHT) == 235, THROTTLE["block"] + 10,
             interval=1, what="the SMTP block to end")
    assert time.monotonic() - smtp_blocked >= THROTTLE["block"] - 2
    wait_for(lambda: imap_login(imap_source, "peg", PASSWORDS["peg"]), THROTTLE["block"] + 20,
             interval=1, what="the IMAP block to end")
    assert time.monotonic() - imap_blocked >= THROTTLE["block"] - 2
    # a repeat block lasts twice as long
    for i in range(THROTTLE["failures"]):
        assert smtp_auth(smtp_source, "al", f"again{i}") == 535
    assert smtp_auth(smtp_source, *RIGHT) == 421
    blocked_line(box, smtp_source, 2 * THROTTLE["block"], 2)


def test_ipv6_is_counted_per_64(box):
    for i in range(THROTTLE["failures"]):
        assert smtp_auth("::1", "al", f"wrong{i}") == 535
    assert smtp_auth("::1", *RIGHT) == 421
    blocked_line(box, "0:0:0:0::/64", THROTTLE["block"], 1)
    for i in range(THROTTLE["failures"]):
        assert not imap_login("::1", "bud", f"wrong{i}")
    wait_for(lambda: any(x.startswith("dovecot: ") and "blocked 0:0:0:0::/64 for" in x
                         for x in box.logs().splitlines()), 10, what="Dovecot's IPv6 block")


def test_allow_list_is_never_blocked(box):
    for i in range(THROTTLE["failures"] + 3):
        assert smtp_auth(ALLOWED, "al", f"wrong{i}") == 535
    assert smtp_auth(ALLOWED, *RIGHT) == 235
    for i in range(THROTTLE["failures"] + 1):
        assert not imap_login(ALLOWED, "al", f"wrong{i}")
    assert imap_login(ALLOWED, *RIGHT)
    assert f"blocked {ALLOWED} " not in box.logs()
