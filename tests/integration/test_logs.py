"""`docker logs` a person or a tool can read: under load every line is whole and names its daemon."""

from __future__ import annotations

import re
import threading

import pytest

from mail import message, send, subjects, wait_for
from mailorama import config as cfg
from stack import docker, fresh_stack

pytestmark = pytest.mark.docker
NAME = "mor-test-logs"
PORTS = {"smtp": 3525, "submission": 3587, "submissions": 3465, "imap": 3143, "imaps": 3993}
PREFIXES = ("smtpd: ", "dovecot: ", "mail-o-rama: ")
# what a line of the other daemon looks like, should it be spliced into one
DOVECOT_LINE = re.compile(r"(lmtp|imap|imap-login|auth|master)(\(|: )")
SMTPD_LINE = re.compile(r"[0-9a-f]{16} (smtp|mda|mta) ")


@pytest.fixture(scope="module")
def box(image, tmp_path_factory):
    stack = fresh_stack(NAME, tmp_path_factory.mktemp("logs"), mailorama_ports=PORTS,
                        mailorama_listen=["127.0.0.1"])
    stack.up()
    yield stack
    stack.save_logs()
    stack.remove()


def test_every_line_is_whole_and_names_its_daemon(box):
    sessions, per_session = 4, 50

    def burst(n):
        for i in range(per_session):
            send(PORTS["smtp"], message("bob@rooney.example", "family@bundy.net", f"load-{n}-{i}"))

    threads = [threading.Thread(target=burst, args=(n,)) for n in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    password = cfg.EXAMPLE_PASSWORDS["kelly"]
    wait_for(lambda: sum(s.startswith("load-") for s in subjects(PORTS["imap"], "kelly", password))
             == sessions * per_session, timeout=120, what="every message in kelly's INBOX")
    out = docker("logs", NAME)
    assert out.stdout.strip() == b"", out.stdout[:500]
    logs = out.stderr.decode(errors="replace").splitlines()
    lines = [line for line in logs if line.strip()]
    assert len(lines) > sessions * per_session
    unnamed = [line for line in lines if not line.startswith(PREFIXES)]
    assert unnamed == [], unnamed[:5]
    spliced = [line for line in lines if line.startswith("smtpd: ") and DOVECOT_LINE.search(line)
               or line.startswith("dovecot: ") and SMTPD_LINE.search(line)]
    assert spliced == [], spliced[:5]
