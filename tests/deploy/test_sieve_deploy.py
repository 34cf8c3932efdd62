"""Declarative Sieve filters through a real deploy: deployed live, and a bad one refused by
sievec with file:line before anything is pushed."""

from __future__ import annotations

import subprocess

import pytest

from project import Project
from stack import all_ports

pytestmark = pytest.mark.deploy
NAME = "mor-test-sieve-deploy"
PORTS = all_ports({"smtp": 25525, "submission": 25587, "submissions": 25465, "imap": 25143,
                   "imaps": 25993, "managesieve": 25190})
GOOD = 'require ["fileinto"];\nif header :contains "subject" "[school]" {\n  fileinto "School";\n}\n'


@pytest.fixture
def project(tmp_path):
    subprocess.run(["docker", "rm", "-f", NAME], capture_output=True)
    yield Project(tmp_path, name=NAME, ports=PORTS)
    subprocess.run(["docker", "rm", "-f", NAME], capture_output=True)
    subprocess.run(["rm", "-f", f"/etc/cron.d/{NAME}"])


def live(name: str) -> str:
    return subprocess.run(["docker", "exec", NAME, "cat",
                           f"/etc/dovecot/mail-o-rama/sieve/{name}.sieve"],
                          capture_output=True, text=True, check=True).stdout


def test_filter_deployed_and_a_bad_one_refused_before_anything_is_pushed(project):
    (project.dir / "mail" / "sieve").mkdir()
    script = project.dir / "mail" / "sieve" / "kelly.sieve"
    script.write_text(GOOD)
    project.deployed(mailorama_host_mail="none")
    assert live("kelly") == GOOD
    assert live("peg").startswith("#")                   # no script: none runs

    before = project.host_state()
    script.write_text(GOOD.replace('fileinto "School";', 'fileinto "School"'))
    result = project.deploy(mailorama_host_mail="none")
    assert result.returncode != 0
    assert (f"{project.dir}/mail/sieve/kelly.sieve:4: error: expected end of command ';'"
            in result.stderr), result.stderr[-3000:]
    assert "nothing was deployed" in result.stderr
    assert project.host_state() == before and live("kelly") == GOOD
