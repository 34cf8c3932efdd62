"""Clients that keep sending failed commands are disconnected (mailorama_error_limit, default 10),
against the real container: invalid recipients or unknown commands on port 25 get their 10 error
replies, then 421 and the end of the connection at the next command, logged once with address
and count; the log of such a session stays bounded however long the client keeps trying. A
normal client with a few typos, and one that gets errors around its accepted messages, is not
cut. (smtpd answers unknown commands without asking any filter, so the cut comes at the next
command a filter sees: HELO, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, RSET or NOOP.)"""

from __future__ import annotations

import smtplib

import pytest

from stack import PASSWORDS, fresh_stack
from mail import arrived, message, smtp, wait_for

pytestmark = pytest.mark.docker
NAME = "mor-test-error-limit"
PORTS = {"smtp": 26525, "submission": 26587, "submissions": 26465, "imap": 26143,
         "imaps": 26993, "managesieve": 26190, "hostmail": 26025}
LIMIT = 10


@pytest.fixture(scope="module")
def box(image, tmp_path_factory):
    stack = fresh_stack(NAME, tmp_path_factory.mktemp("errors"),
                        mailorama_listen=["127.0.0.1"], mailorama_ports=PORTS)
    stack.up()
    yield stack
    stack.save_logs()
    stack.compose("down", check=False)
    stack.remove()


def cut_off(s: smtplib.SMTP, command: str) -> tuple[int, bytes]:
    """The reply to `command` after the limit: 421, then the connection is gone."""
    code, text = s.docmd(command)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        s.docmd("NOOP")
        s.docmd("NOOP")
    return code, text


def test_invalid_recipients_are_cut_off_after_the_limit(box):
    s = smtp(PORTS["smtp"])
    s.ehlo("rcpt-flood.test")
    assert s.docmd("MAIL", "FROM:<spammer@rooney.example>")[0] == 250
    for i in range(LIMIT):
        code, _ = s.docmd("RCPT", f"TO:<guess{i}@bundy.net>")
        assert code == 550, i
    code, text = cut_off(s, "RCPT TO:<guess-one-more@bundy.net>")
    assert code == 421 and b"Too many errors" in text
    line = wait_for(lambda: [x for x in box.logs().splitlines()
                             if f"after {LIMIT} failed commands" in x], 10, what="the log line")
    assert any("error limit: disconnected 127.0.0.1 after 10 failed commands" in x for x in line)
    # LIMIT refusals and the 421 were logged for the guesses, nothing more
    guesses = [x for x in box.logs().splitlines() if "guess" in x and "failed-command" in x]
    assert len([x for x in guesses if 'result="550' in x]) == LIMIT
    assert len(guesses) == LIMIT + 1 and 'result="421' in guesses[-1]


def test_unknown_commands_count_and_the_next_command_is_refused(box):
    s = smtp(PORTS["smtp"])
    s.ehlo("garbage.test")
    for i in range(LIMIT):
        assert s.docmd(f"XGARBAGE{i}")[0] == 500
    code, text = cut_off(s, "NOOP")
    assert code == 421


def test_the_log_stays_bounded_however_long_the_client_tries(box):
    """A client that reconnects and keeps guessing gets LIMIT failed lines a connection, and
    each connection ends at the limit: the log grows with connections, not with commands."""
    before = len(box.logs())
    refused = 0
    for n in range(5):
        s = smtp(PORTS["smtp"])
        s.ehlo("bounded.test")
        s.docmd("MAIL", "FROM:<spammer@rooney.example>")
        try:
            for i in range(1000):
                code, _ = s.docmd("RCPT", f"TO:<bounded{n}-{i}@bundy.net>")
                if code == 421:
                    refused += 1
                    break
                assert code == 550
            else:
                pytest.fail("1000 wrong recipients in one session, never cut off")
        except smtplib.SMTPServerDisconnected:
            pytest.fail("disconnected without the 421")
        assert i == LIMIT
        s.close()
    assert refused == 5
    grown = len(box.logs()) - before
    assert grown < 5 * (LIMIT + 10) * 300, grown       # a few KB a connection


def test_a_client_with_a_few_typos_is_not_cut(box):
    """Errors around accepted messages: the count starts again after each one."""
    with smtp(PORTS["smtp"]) as s:
        s.ehlo("typos.test")
        for round_ in range(3):
            for typo in ("HLEO typos.test", "MAIL FORM:<bob@rooney.example>", "RCTP TO:<al@bundy.net>"):
                assert s.docmd(typo)[0] >= 500
            assert s.docmd("MAIL", "FROM:<bob@rooney.example>")[0] == 250
            for i in range(LIMIT - 4):
                assert s.docmd("RCPT", f"TO:<typo{round_}-{i}@bundy.net>")[0] == 550
            assert s.docmd("RCPT", "TO:<al@bundy.net>")[0] == 250
            msg = message("bob@rooney.example", "al@bundy.net", f"typos {round_}")
            assert s.data(msg.as_bytes())[0] == 250
        assert s.docmd("NOOP")[0] == 250
    assert arrived(PORTS["imap"], "al", PASSWORDS["al"], "typos 2")
