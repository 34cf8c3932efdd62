"""A wheel built from a clean clone of this checkout (its committed HEAD), installed alone (with
its dependencies) in a fresh venv outside the checkout: what a user gets from `pip install`.
Shared by the wheel and CI tests."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from project import rig

REPO = Path(__file__).resolve().parents[2]
# what the tests add to the inventory init wrote: the rig's sshd, and a server of their own
RIG_DATA = '''
# added by the test: the rig's sshd on loopback, and this test's own ports and folders
mail[0][1].update({data!r})
'''


@dataclass(frozen=True)
class Installed:
    wheel: Path
    bin: Path           # the venv's bin folder: python, pip, mailorama, pyinfra

    def env(self, **extra: str) -> dict[str, str]:
        """An environment with this venv first on PATH and nothing of the checkout's."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        env["PATH"] = f"{self.bin}:{env.get('PATH', '/usr/bin:/bin')}"
        return {**env, **extra}

    def run(self, *args: str, cwd: Path, input: str | None = None, **env: str):
        return subprocess.run(args, cwd=cwd, env=self.env(**env), input=input, text=True,
                              capture_output=True, timeout=900)

    def init(self, base: Path, name: str, ports: dict, password: str,
             ssh_key: bool = True) -> Path:
        """`mailorama init base/repo` (flags, `password` on stdin) for the account me@example.org,
        then aimed at the rig: its
        sshd, and a server with `name`, `ports` and folders under `base` of its own."""
        result = self.run("mailorama", "init", "repo", "--domain", "example.org", "--host",
                          "127.0.0.1", "--account", "me", cwd=base, input=password + "\n")
        assert result.returncode == 0, result.stderr
        env = rig()
        data = {"ssh_port": int(env["MAILORAMA_RIG_SSH_PORT"]),
                "mailorama_listen": ["127.0.0.1"], "mailorama_ports": ports,
                "mailorama_root": str(base / "opt"), "mailorama_data": str(base / "srv"),
                "mailorama_container": name, "mailorama_host_mail": "none"}
        if ssh_key:
            data.update(ssh_key=env["MAILORAMA_RIG_SSH_KEY"],
                        ssh_known_hosts_file=env["MAILORAMA_RIG_SSH_KNOWN_HOSTS"])
        repo = base / "repo"
        with (repo / "inventory.py").open("a") as f:
            f.write(RIG_DATA.format(data=data))
        return repo


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    # a clean clone: what is committed, never a stale build/ folder or a half-made edit
    src = base / "src"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{REPO}", str(src)],
                   check=True, capture_output=True, timeout=300)
    dist = base / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", str(src), "--no-deps", "-w",
                    str(dist)], check=True, capture_output=True, text=True, timeout=600)
    wheel, = dist.glob("mail_o_rama-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True,
                   capture_output=True, text=True, timeout=900, cwd=base)
    return Installed(wheel, venv / "bin")


@pytest.fixture(scope="session", autouse=True)
def forget_test_servers():
    """After the deploy tests, the host files the deploys left for their containers (cron jobs,
    upkeep scripts, certbot hooks of mor-test-*) are removed: the rig host is this machine."""
    yield
    for pattern in ("/etc/cron.d/mor-test-*", "/usr/local/sbin/mailorama-*-mor-test-*",
                    "/etc/letsencrypt/renewal-hooks/deploy/mor-test-*"):
        for path in glob.glob(pattern):
            Path(path).unlink()
