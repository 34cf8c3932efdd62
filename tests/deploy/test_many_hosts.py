"""One run, two hosts, each with its own config folder: a bad config on one refuses the whole
run before any host is touched; a good run gives each host its own config."""

import json
import runpy
import shutil
import subprocess
from pathlib import Path

import pytest

from mail import arrived, message, send, smtp
from mailorama import config as cfg
from project import Project, rig
from stack import all_ports

pytestmark = pytest.mark.deploy
HOSTS = {
    "box-a": {"smtp": 7525, "submission": 7587, "submissions": 7465, "imap": 7143, "imaps": 7993,
              "managesieve": 7190},
    "box-b": {"smtp": 8525, "submission": 8587, "submissions": 8465, "imap": 8143, "imaps": 8993,
              "managesieve": 8190},
}


@pytest.fixture
def project(tmp_path):
    names = [f"mor-test-{h}" for h in HOSTS]
    for name in names:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    p = Project(tmp_path)
    shutil.copytree(p.dir / "mail", p.dir / "mail-b")
    env = rig()
    hosts = [(host, {
        "ssh_hostname": "127.0.0.1", "ssh_port": int(env["MAILORAMA_RIG_SSH_PORT"]),
        "ssh_user": "root", "ssh_key": env["MAILORAMA_RIG_SSH_KEY"],
        "ssh_known_hosts_file": env["MAILORAMA_RIG_SSH_KNOWN_HOSTS"],
        "mailorama_hostname": "mail.bundy.net", "mailorama_listen": ["127.0.0.1"],
        "mailorama_ports": all_ports(ports), "mailorama_container": f"mor-test-{host}",
        "mailorama_root": str(tmp_path / host / "opt"), "mailorama_data": str(tmp_path / host / "srv"),
        "mailorama_host_mail": "none",
        "mailorama_config_dir": "mail" if host == "box-a" else "mail-b",
        # both serve bundy.net: each its own DKIM selectors
        "mailorama_dkim_selectors": {"rsa": f"{host}-rsa", "ed25519": f"{host}-ed25519"},
    }) for host, ports in HOSTS.items()]
    (p.dir / "inventory.py").write_text(f"mail = {hosts!r}\n")
    yield p
    for name in names:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        subprocess.run(["rm", "-f", f"/etc/cron.d/{name}"])


def test_two_hosts_bad_config_on_one_touches_neither(project, tmp_path):
    virtuals_b = project.dir / "mail-b" / "virtuals"
    good = virtuals_b.read_text()
    virtuals_b.write_text(good + "b-only@bundy.net pegy\n")
    result = project.deploy()
    assert result.returncode != 0
    assert f"virtuals:{len(good.splitlines()) + 1}: target 'pegy'" in result.stderr
    assert "mail-b" in result.stderr
    assert not (tmp_path / "box-a").exists() and not (tmp_path / "box-b").exists()

    virtuals_b.write_text(good + "b-only@bundy.net peg\n")
    out = project.deployed()
    assert out["results"]["totals"]["error"] == 0
    for host, ports in HOSTS.items():
        with smtp(ports["smtp"]) as s:
            s.ehlo("client.test")
            s.mail("bob@rooney.example")
            assert s.rcpt("b-only@bundy.net")[0] == (250 if host == "box-b" else 550)
        send(ports["smtp"], message("bob@rooney.example", "al@bundy.net", f"to-{host}"))
        assert arrived(ports["imap"], "al", cfg.EXAMPLE_PASSWORDS["al"], f"to-{host}")
    again = json.loads(project.deploy().stdout)["results"]["totals"]
    assert again["success"] == 0 and again["error"] == 0


def test_two_hosts_with_different_keys_under_one_dns_name_are_refused(project, tmp_path):
    inventory = project.dir / "inventory.py"
    inventory.write_text(inventory.read_text().replace("'box-b-rsa'", "'box-a-rsa'"))
    result = project.deploy()
    assert result.returncode != 0
    clash = [line.strip() for line in result.stderr.splitlines()
             if line.strip().startswith("box-a-rsa._domainkey.bundy.net: ")]
    assert clash and "have different DKIM keys" in clash[0], result.stderr[-3000:]
    assert {"box-a", "box-b"} <= set(clash[0].replace(",", " ").split()), clash[0]
    assert "mailorama_dkim_selectors" in result.stderr
    assert not (tmp_path / "box-a").exists() and not (tmp_path / "box-b").exists()


def test_one_container_serves_the_hosts_mail(project):
    """Two servers on one host: the host's mail goes to one of them. A second one takes it over
    (and says so); 'none' on either never tears down the other's."""
    inventory = project.dir / "inventory.py"
    hosts = runpy.run_path(str(inventory))["mail"]
    ini = Path("/etc/mail-o-rama/sendmail.ini")

    def deploy(**modes):
        for host, data in hosts:
            data["mailorama_host_mail"] = modes[host.replace("-", "_")]
        inventory.write_text(f"mail = {hosts!r}\n")
        result = project.deploy()
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stderr

    def host_mail_reaches(host, subject):
        subprocess.run(["/usr/sbin/sendmail", "root"], input=f"Subject: {subject}\n\nx\n",
                       text=True, check=True, timeout=60)
        assert arrived(HOSTS[host]["imap"], "al", cfg.EXAMPLE_PASSWORDS["al"], subject)

    try:
        deploy(box_a="msmtp", box_b="none")
        assert "container = mor-test-box-a" in ini.read_text()
        host_mail_reaches("box-a", "host-mail-to-a")
        out = deploy(box_a="msmtp", box_b="msmtp")
        assert "the host's mail moves here from the container mor-test-box-a" in out, out[-3000:]
        assert "container = mor-test-box-b" in ini.read_text()
        host_mail_reaches("box-b", "host-mail-to-b")
        deploy(box_a="none", box_b="msmtp")          # box-a lets go of nothing it does not have
        assert "container = mor-test-box-b" in ini.read_text()
        host_mail_reaches("box-b", "host-mail-still-to-b")
    finally:
        deploy(box_a="none", box_b="none")
    assert not ini.exists()
