"""Catch-all and sub-addresses against the real container."""

from __future__ import annotations

import pytest

from mail import arrived, message, send, smtp, subjects
from mailorama import config as cfg
from stack import fresh_stack

pytestmark = pytest.mark.docker
NAME = "mor-test-catchall"
PORTS = {"smtp": 13525, "submission": 13587, "submissions": 13465, "imap": 13143,
         "imaps": 13993, "managesieve": 13190}
PW = cfg.EXAMPLE_PASSWORDS


@pytest.fixture(scope="module")
def box(image, tmp_path_factory):
    stack = fresh_stack(NAME, tmp_path_factory.mktemp("catchall"), mailorama_ports=PORTS,
                        mailorama_listen=["127.0.0.1"])
    with (stack.config_dir / "virtuals").open("a") as f:
        f.write("@darcy.net marcy\nal+lists@bundy.net peg\n")
    stack.up()
    yield stack
    stack.save_logs()
    stack.remove()


def test_catch_all_takes_unknown_names_and_explicit_addresses_win(box):
    send(PORTS["smtp"], message("bob@rooney.example", ["whoever@darcy.net", "jefferson@darcy.net"],
                                "catch-me"))
    assert arrived(PORTS["imap"], "marcy", PW["marcy"], "catch-me")
    assert arrived(PORTS["imap"], "jefferson", PW["jefferson"], "catch-me")
    # jefferson@ has a line of its own: the catch-all does not take a copy of it
    assert subjects(PORTS["imap"], "marcy", PW["marcy"]).count("catch-me") == 1
    with smtp(PORTS["smtp"]) as s:                          # other domains have no catch-all
        s.ehlo("client.test")
        s.mail("bob@rooney.example")
        assert s.rcpt("whoever@bundy.net")[0] == 550


def test_sub_addresses_deliver_and_may_be_sent_from(box):
    send(PORTS["smtp"], message("bob@rooney.example", ["al+news@bundy.net", "al+lists@bundy.net"],
                                "tagged"))
    assert arrived(PORTS["imap"], "al", PW["al"], "tagged")          # al+news -> al
    assert arrived(PORTS["imap"], "peg", PW["peg"], "tagged")        # its own line wins
    send(PORTS["submission"], message("al+news@bundy.net", "peg@bundy.net", "from-a-tag"),
         login=("al", PW["al"]), starttls=True)
    assert arrived(PORTS["imap"], "peg", PW["peg"], "from-a-tag")
    with smtp(PORTS["submission"]) as s:                    # not someone else's tag
        s.starttls()
        s.ehlo("client.test")
        s.login("al", PW["al"])
        assert s.mail("kelly+x@bundy.net")[0] >= 500
