"""A deploy as a sudoer (`_sudo`), as many users run it: it works, and the password hashes it
uploads are never world-readable on the way (pyinfra stages sudo uploads as the SSH user)."""

import os
import pwd
import subprocess
import threading
from pathlib import Path

import pytest

from mail import arrived, message, send
from mailorama import config as cfg
from project import Project, rig

pytestmark = pytest.mark.deploy
NAME = "mor-test-sudo"
PORTS = {"smtp": 9525, "submission": 9587, "submissions": 9465, "imap": 9143, "imaps": 9993}


class TmpWatcher(threading.Thread):
    """Polls /tmp while a deploy runs: what staging folders and staged files showed up."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop, self.staging, self.exposed = threading.Event(), {}, set()

    def run(self):
        while not self.stop.is_set():
            for entry in os.scandir("/tmp"):
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if entry.name.startswith("mail-o-rama-upload-"):
                    self.staging[entry.name] = (st.st_mode & 0o777, st.st_uid)
                elif entry.name.startswith("pyinfra-") and st.st_mode & 0o004:
                    self.exposed.add(entry.name)


@pytest.fixture
def project(tmp_path):
    subprocess.run(["docker", "rm", "-f", NAME], capture_output=True)
    p = Project(tmp_path, name=NAME, ports=PORTS)
    inventory = (p.dir / "inventory.py").read_text()
    (p.dir / "inventory.py").write_text(inventory.replace(
        "'ssh_user': 'root'", f"'ssh_user': '{rig()['MAILORAMA_RIG_SUDO_USER']}', '_sudo': True"))
    yield p
    subprocess.run(["docker", "rm", "-f", NAME], capture_output=True)
    Path(f"/etc/cron.d/{NAME}").unlink(missing_ok=True)


def test_deploy_with_sudo_never_exposes_secrets(project):
    deployer = pwd.getpwnam(rig()["MAILORAMA_RIG_SUDO_USER"]).pw_uid
    watcher = TmpWatcher()
    watcher.start()
    try:
        out = project.deployed(mailorama_host_mail="none")
    finally:
        watcher.stop.set()
        watcher.join()
    assert out["results"]["totals"]["error"] == 0
    assert not watcher.exposed, watcher.exposed
    assert watcher.staging and all(v == (0o700, deployer) for v in watcher.staging.values())
    assert not list(Path("/tmp").glob("mail-o-rama-upload-*"))
    passwd = project.root / "config" / "passwd"
    assert passwd.stat().st_uid == 0 and passwd.stat().st_mode & 0o077 == 0
    send(PORTS["smtp"], message("bob@rooney.example", "al@bundy.net", "sudo-deploy"))
    assert arrived(PORTS["imap"], "al", cfg.EXAMPLE_PASSWORDS["al"], "sudo-deploy")
    again = project.deployed(mailorama_host_mail="none")["results"]["totals"]
    assert again["success"] == 0, again
