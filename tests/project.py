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
