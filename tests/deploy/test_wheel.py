"""What a new user does: the wheel alone in a fresh venv outside the checkout, `mailorama init`
into an empty folder, a real SSH deploy to the rig from there; mail in over SMTP, read over IMAP;
the second run (from another folder) changes nothing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mail import arrived, message, send

pytestmark = pytest.mark.deploy
NAME = "mor-test-wheel"
PORTS = {"smtp": 10525, "submission": 10587, "submissions": 10465, "imap": 10143, "imaps": 10993,
         "managesieve": 10190}
PASSWORD = "wheel-deploy-pw"


def cleanup(name: str):
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    Path(f"/etc/cron.d/{name}").unlink(missing_ok=True)


@pytest.fixture
def base(tmp_path):
    cleanup(NAME)
    yield tmp_path
    cleanup(NAME)


def test_wheel_init_deploy_mail_and_no_change(installed, base):
    names = subprocess.run(["unzip", "-Z1", str(installed.wheel)], capture_output=True,
                           text=True, check=True).stdout.split()
    assert "mailorama/templates/init/group_data/all.py" in names
    assert "mailorama/image/Dockerfile" in names
    assert not installed.run("python", "-c", "import mailorama, sys; "
                             "sys.exit('/work/' in mailorama.__file__ or 'site-packages' not in "
                             "mailorama.__file__)", cwd=base).returncode

    repo = installed.init(base, NAME, PORTS, PASSWORD)
    check = installed.run("mailorama", "check", "mail", cwd=repo)
    assert check.returncode == 0 and "warning" not in check.stderr, check.stderr

    dry = installed.run("pyinfra", "inventory.py", "deploy.py", "--dry", cwd=repo)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "Detected changes" in dry.stderr and not (base / "opt").exists()

    first = installed.run("pyinfra", "-y", "--json", "inventory.py", "deploy.py", cwd=repo)
    assert first.returncode == 0, first.stderr[-4000:]
    assert json.loads(first.stdout)["results"]["totals"]["error"] == 0
    send(PORTS["smtp"], message("bob@rooney.example", "postmaster@example.org", "from-wheel"))
    assert arrived(PORTS["imap"], "me", PASSWORD, "from-wheel")

    # again, from another folder: the deploy finds mail/ next to deploy.py
    again = installed.run("pyinfra", "-y", "--json", "repo/inventory.py", "repo/deploy.py",
                          cwd=base)
    assert again.returncode == 0, again.stderr[-3000:]
    totals = json.loads(again.stdout)["results"]["totals"]
    assert totals["success"] == 0 and totals["error"] == 0 and totals["no_change"] > 0, totals
