"""Preflight: what the deploy refuses before anything is pushed, on real hosts over SSH."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mailorama.cli import hash_password
from project import Project

pytestmark = pytest.mark.deploy
NAME = "mor-test-preflight"
PORTS = {"smtp": 4625, "submission": 4687, "submissions": 4665, "imap": 4643, "imaps": 4693}
FAKE_SSH_PORT = 2232


@pytest.fixture
def project(tmp_path):
    subprocess.run(["docker", "rm", "-f", NAME], capture_output=True)
    yield Project(tmp_path, name=NAME, ports=PORTS)
    subprocess.run(["docker", "rm", "-f", NAME], capture_output=True)
    Path(f"/etc/cron.d/{NAME}").unlink(missing_ok=True)


def test_a_port_taken_by_another_listener_is_refused_before_anything_is_pushed(project):
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", PORTS["imaps"]))
        other.listen()
        result = project.deploy()
    assert result.returncode != 0
    assert f"port {PORTS['imaps']} on 127.0.0.1 is taken by 'python" in result.stderr, \
        result.stderr[-3000:]
    assert "mailorama_ports['imaps'] needs it" in result.stderr
    assert "nothing was changed" in result.stderr
    assert not project.root.exists() and not project.data.exists()


@pytest.fixture
def host_without_docker_daemon(tmp_path):
    """A second SSH host: the rig's sshd config on another port, run in a mount namespace in
    which the Docker socket is a dead end (the docker command is there, its daemon is not)."""
    config = tmp_path / "sshd_config"
    text = Path("/var/lib/mailorama-rig/sshd_config").read_text()
    config.write_text(text.replace("Port 2222", f"Port {FAKE_SSH_PORT}").replace(
        "PidFile /run/mailorama-rig/sshd.pid", f"PidFile {tmp_path}/sshd.pid"))
    dead = tmp_path / "dead.sock"
    dead.touch()
    sshd = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         f"mount --bind {dead} /run/docker.sock && exec /usr/sbin/sshd -D -f {config}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", FAKE_SSH_PORT), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    yield FAKE_SSH_PORT
    sshd.terminate()
    sshd.wait(timeout=10)


def test_docker_installed_but_not_running_is_refused_before_anything_is_pushed(
        project, host_without_docker_daemon):
    result = project.deploy(ssh_port=host_without_docker_daemon)
    assert result.returncode != 0
    assert "Docker is installed but its daemon does not answer" in result.stderr, \
        result.stderr[-3000:]
    assert "nothing was changed" in result.stderr
    assert not project.root.exists()


def test_su_user_is_refused_up_front(project):
    result = project.deploy("--su-user", "root")
    assert result.returncode != 0
    assert "--su-user/_su_user is not supported" in result.stderr, result.stderr[-2000:]
    assert not project.root.exists()


def test_config_dir_is_relative_to_the_deploy_folder(project, tmp_path):
    """pyinfra run from another folder still finds mail/ beside deploy.py (a --dry run)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    pyinfra = Path(sys.executable).parent / "pyinfra"
    result = subprocess.run(
        [str(pyinfra), "--dry", str(project.dir / "inventory.py"), str(project.dir / "deploy.py")],
        cwd=elsewhere, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, MOR_TEST_DATA="{}"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "nothing was changed; a deploy would:" in result.stderr
    assert not project.root.exists()


def test_a_container_that_does_not_get_ready_is_stopped_not_left_looping(project, tmp_path):
    assert project.deploy().returncode == 0
    image = f"{NAME}:latest"
    # an image that dies at once, under the deployed image's tag: what a bad rebuild leaves
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "Dockerfile").write_text(
        f"FROM {image}\nENTRYPOINT [\"/bin/sh\", \"-c\", \"echo broken-on-purpose >&2; exit 3\"]\n")
    subprocess.run(["docker", "build", "-q", "-t", image, str(tmp_path / "broken")], check=True,
                   capture_output=True)
    result = project.deploy(mailorama_log_max_files=4)        # a changed compose file: up -d
    assert result.returncode != 0
    assert "broken-on-purpose" in result.stderr, result.stderr[-3000:]
    assert "it is stopped (not restart-looping)" in result.stderr
    assert "the previous container was replaced" in result.stderr
    assert "FAILED: recreate and start the container" in result.stderr
    state = subprocess.run(["docker", "inspect", "-f", "{{.State.Status}}", NAME],
                           capture_output=True, text=True).stdout.strip()
    assert state == "exited"
    time.sleep(3)                                              # and it stays so
    assert subprocess.run(["docker", "inspect", "-f", "{{.State.Status}}", NAME],
                          capture_output=True, text=True).stdout.strip() == "exited"
    subprocess.run(["docker", "rmi", "-f", image], capture_output=True)


def test_a_listen_address_the_host_lacks_is_refused(project):
    accounts = project.file("accounts")       # beyond loopback: no published passwords
    accounts.write_text("".join(
        f"{line.split()[0]} {line.split()[1]} {hash_password('not-published', rounds=5000)}\n"
        for line in accounts.read_text().splitlines() if line.strip() and line[0] != "#"))
    result = project.deploy(mailorama_listen=["127.0.0.1", "192.0.2.77"])
    assert result.returncode != 0
    assert "mailorama_listen: 192.0.2.77 is not an address of this host" in result.stderr, \
        result.stderr[-2000:]
    assert not project.root.exists()
