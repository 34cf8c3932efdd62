"""The rendered compose file is valid for compose v2 (`docker compose`) and v1.29
(`docker-compose`, Debian 12's), with and without a certificate of the user's, and both keep
its limits and privileges (a key one of them did not know would be dropped, not refused)."""

import subprocess

import pytest
import yaml

from mailorama import config as cfg
from mailorama.render import render
from mailorama.settings import settings_from
from stack import REPO

pytestmark = pytest.mark.docker


def compose_version(command: list[str]) -> str:
    out = subprocess.run([*command, "version", "--short"], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else ""


@pytest.mark.parametrize("command, major", [(["docker", "compose"], "2"), (["docker-compose"], "1")])
@pytest.mark.parametrize("data", [
    {},
    {"mailorama_tls_cert": "/etc/letsencrypt/live/x/fullchain.pem",
     "mailorama_tls_key": "/etc/letsencrypt/live/x/privkey.pem",
     "mailorama_backup_retention_days": None, "mailorama_listen": ["192.0.2.1"]},
])
def test_compose_file_is_valid(tmp_path, command, major, data):
    version = compose_version(command)
    if not version.lstrip("v").startswith(major):
        which = "docker-compose" if major == "1" else "docker compose"
        pytest.fail(f"{which} v{major} missing (tests/rig/up.sh installs it): {version!r}")
    (tmp_path / "image").mkdir()      # v1 checks that the build context exists
    files = render(cfg.load(REPO / "mail"), settings_from({"mailorama_root": str(tmp_path), **data},
                                                          fqdn="mail.bundy.net"))
    path = tmp_path / "compose.yaml"
    path.write_text(files["compose.yaml"])
    out = subprocess.run([*command, "-p", "mor-check", "-f", str(path), "config"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    mail = yaml.safe_load(out.stdout)["services"]["mail"]
    assert mail["cap_drop"] == ["ALL"]
    assert set(mail["cap_add"]) == {"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID",
                                    "SYS_CHROOT", "NET_BIND_SERVICE"}
    assert mail["pids_limit"] == 512
    assert str(mail["mem_limit"]).lower() in ("256m", str(256 * 2 ** 20))
    assert mail["logging"] == {"driver": "json-file",
                               "options": {"max-size": "10m", "max-file": "3"}}
    assert mail["security_opt"] == ["no-new-privileges:true"]
    assert mail["read_only"] is True
    assert sorted(t.split(":")[0] for t in mail["tmpfs"]) == ["/run", "/var/lib/dovecot"]
    # v1 keeps the short syntax (with :rw), v2 writes the long one
    assert any(v.split(":")[1] == "/tmp" if isinstance(v, str) else v["target"] == "/tmp"
               for v in mail["volumes"])
    assert all("size=" in t for t in mail["tmpfs"])
