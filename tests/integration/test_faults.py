"""Load with faults against the real container (a reduced bench/faults.py): 1000 messages over
10 SMTP sessions, `docker kill` half-way and a recreate; the clients retry. Every message that
got 250 ends up in a Maildir."""

from __future__ import annotations

import sys

import pytest

from stack import REPO, fresh_stack

sys.path.insert(0, str(REPO / "bench"))
import faults  # noqa: E402

pytestmark = pytest.mark.docker
NAME = "mor-test-faults"
PORTS = {"smtp": 16525, "submission": 16587, "submissions": 16465, "imap": 16143,
         "imaps": 16993, "managesieve": 16190}


@pytest.fixture
def box(image, tmp_path):
    stack = fresh_stack(NAME, tmp_path, mailorama_ports=PORTS, mailorama_listen=["127.0.0.1"])
    stack.up()
    yield stack
    stack.save_logs()
    stack.compose("down", check=False)
    stack.remove()


def test_kill_under_load_loses_nothing_that_got_250(box):
    result = faults.run(box, messages=1000, sessions=10, wait=120)
    print("\n".join(result.lines()))
    assert 0 < result.kill_at < 1000
    assert len(result.accepted) == 1000         # the clients retried until every one got 250
    assert result.lost == []
    assert faults.queue_empty(box)
