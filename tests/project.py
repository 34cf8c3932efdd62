"""A user's deploy folder aimed at the rig's sshd on 127.0.0.1: for deploy tests and benchmarks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from stack import all_ports

REPO = Path(__file__).resolve().parents[1]
RIG_ENV = Path("/var/lib/mailorama-rig/rig.env")
NAME = "mor-test-deploy"
PORTS = {"smtp": 4525, "submission": 4587, "submissions": 4465, "imap": 4143, "imaps": 4993}
INVENTORY = '''import json, os
data = {settings!r}
data.update(json.loads(os.environ.get("MOR_TEST_DATA", "{{}}")))
hosts = [("127.0.0.1", data)]
'''


def rig() -> dict[str, str]:
    if not RIG_ENV.exists():
        raise RuntimeError("no rig: run tests/rig/up.sh (bash tests/run does)")
    return dict(line.split("=", 1) for line in RIG_ENV.read_text().splitlines()
                if "=" in line and not line.startswith("#"))


def upkeep_scripts(name: str) -> dict[str, str]:
    """The host scripts a deploy of the container `name` with an offsite backup installs."""
    return {job: f"/usr/local/sbin/mailorama-{job}-{name}"
            for job in ("backup", "check", "update", "restic", "restore-offsite")}


def forget(name: str):
    """The container `name`, and the cron job and scripts its deploys left on the host: gone."""
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    for path in [f"/etc/cron.d/{name}", *upkeep_scripts(name).values()]:
        Path(path).unlink(missing_ok=True)


def sftp_repository(base: Path, folder: Path, password: str) -> dict:
    """mailorama_backup_offsite for a new, empty restic repository in `folder` over the rig's
    sshd, with a copy of the rig's key in `base` (0644: the deploy makes it root-only)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o700, parents=True)
    key = base / "backup_key"
    shutil.copy(rig()["MAILORAMA_RIG_SSH_KEY"], key)
    key.chmod(0o644)
    return {"repository": f"sftp://root@127.0.0.1:2222/{folder}/repo", "password": password,
            "ssh_key": str(key)}


class Project:
    """A user's deploy folder: deploy.py, group_data/, mail/ and an inventory for the rig host."""

    def __init__(self, base: Path, name: str = NAME, ports: dict = PORTS):
        self.name = name
        self.dir = base / "project"
        self.root, self.data = base / "opt", base / "srv"
        self.dir.mkdir()
        shutil.copy(REPO / "deploy.py", self.dir)
        shutil.copytree(REPO / "group_data", self.dir / "group_data")
        shutil.copytree(REPO / "mail", self.dir / "mail")
        env = rig()
        settings = {
            "ssh_port": int(env["MAILORAMA_RIG_SSH_PORT"]), "ssh_user": "root",
            "ssh_key": env["MAILORAMA_RIG_SSH_KEY"],
            "ssh_known_hosts_file": env["MAILORAMA_RIG_SSH_KNOWN_HOSTS"],
            "mailorama_hostname": "mail.bundy.net", "mailorama_listen": ["127.0.0.1"],
            "mailorama_ports": all_ports(ports), "mailorama_root": str(self.root),
            "mailorama_data": str(self.data), "mailorama_container": name,
        }
        (self.dir / "inventory.py").write_text(INVENTORY.format(settings=settings))

    def deploy(self, *flags: str, **data) -> subprocess.CompletedProcess:
        env = dict(os.environ, MOR_TEST_DATA=json.dumps(data))
        pyinfra = Path(sys.executable).parent / "pyinfra"
        yes = [] if "--dry" in flags else ["-y"]     # -y skips the change detection --dry shows
        return subprocess.run([str(pyinfra), *yes, "--json", *flags, "inventory.py", "deploy.py"],
                              cwd=self.dir, env=env, capture_output=True, text=True, timeout=900)

    def deployed(self, **data) -> dict:
        result = self.deploy(**data)
        assert result.returncode == 0, result.stderr[-4000:]
        return json.loads(result.stdout)

    def file(self, name: str) -> Path:
        return self.dir / "mail" / name

    def host_state(self) -> dict[str, bytes]:
        return {str(p): p.read_bytes() for p in sorted(self.root.rglob("*")) if p.is_file()}


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def started_at(name: str = NAME) -> str:
    return docker("inspect", "-f", "{{.State.StartedAt}}", name)
