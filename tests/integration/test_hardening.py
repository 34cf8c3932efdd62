"""Least privilege and bounded resources on the real container: the capability set the kernel
enforces, no new privileges, a read-only root filesystem, the limits Docker applies, the recipient limit, a log flood that stays bounded, and the
mail paths that need the kept capabilities still working."""

from __future__ import annotations

import json
import smtplib
import time
from pathlib import Path

import pytest

from mail import arrived, message, tls
from stack import PASSWORDS, docker, fresh_stack

pytestmark = pytest.mark.docker
NAME = "mor-test-hardening"
# submissions on a port below 1024: binding it needs NET_BIND_SERVICE (the host's
# ip_unprivileged_port_start is shared with a host-network container)
PORTS = {"smtp": 12525, "submission": 12587, "submissions": 1023, "imap": 12143, "imaps": 12993}
# capability numbers (linux/capability.h)
KEPT = {"CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "SETGID": 6, "SETUID": 7,
        "NET_BIND_SERVICE": 10, "SYS_CHROOT": 18}
NET_ADMIN, NET_RAW = 12, 13
LOG_SIZE, LOG_FILES = "1m", 2


@pytest.fixture(scope="module")
def box(image, tmp_path_factory):
    stack = fresh_stack(NAME, tmp_path_factory.mktemp("hardening"), mailorama_ports=PORTS,
                        mailorama_listen=["127.0.0.1"], mailorama_log_max_size=LOG_SIZE,
                        mailorama_log_max_files=LOG_FILES)
    stack.up()
    yield stack
    stack.save_logs()
    stack.remove()


def inspect(name: str) -> dict:
    return json.loads(docker("inspect", name).stdout)[0]


def test_docker_applies_the_dropped_capabilities_and_limits(box):
    host = inspect(NAME)["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    assert {c.removeprefix("CAP_") for c in host["CapAdd"]} == set(KEPT)
    assert host["PidsLimit"] == 512
    assert host["Memory"] == 256 * 2 ** 20
    assert host["LogConfig"] == {"Type": "json-file",
                                 "Config": {"max-size": LOG_SIZE, "max-file": str(LOG_FILES)}}
    assert host["NetworkMode"] == "host"
    assert host["SecurityOpt"] == ["no-new-privileges:true"]
    assert host["ReadonlyRootfs"] is True
    assert set(host["Tmpfs"]) == {"/run", "/var/lib/dovecot"}
    assert all("size=" in options for options in host["Tmpfs"].values())
    # /tmp on the data disk, not in memory: Dovecot keeps a copy of each large message there
    mounts = {m["Destination"]: m["Source"] for m in inspect(NAME)["Mounts"]}
    assert mounts["/tmp"] == f"{box.data}/tmp"


def test_no_new_privileges_and_a_read_only_root(box):
    for status in (box.exec("cat", "/proc/1/status").stdout.decode(),
                   box.exec("sh", "-c", "cat /proc/$$/status").stdout.decode()):
        assert "NoNewPrivs:\t1" in status
    for path in ("/usr/x", "/etc/x", "/usr/local/sbin/mailorama-apply", "/var/lib/opensmtpd/x",
                 "/x"):
        out = box.exec("touch", path, check=False)
        assert out.returncode != 0 and b"Read-only file system" in out.stderr, (path, out)
    assert box.exec("stat", "-c", "%a", "/tmp").stdout.strip() == b"1777"
    box.exec("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "touch",
             "/tmp/nobody-writes")
    # smtpctl's group comes from its wrapper, for root only; the program has no setgid bit
    assert box.exec("stat", "-c", "%a", "/usr/libexec/mailorama/smtpctl").stdout.strip() == b"755"
    out = box.exec("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                   "sendmail", "al@bundy.net", input=b"Subject: not-root\n\nhi\n", check=False)
    assert out.returncode == 77 and b"only root" in out.stderr


def test_the_kernel_enforces_only_the_kept_capabilities(box):
    want = sum(1 << bit for bit in KEPT.values())
    # PID 1 (tini and so both daemons' masters) and a `docker exec` shell as root alike
    for status in (box.exec("cat", "/proc/1/status").stdout.decode(),
                   box.exec("sh", "-c", "cat /proc/$$/status").stdout.decode()):
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        for name in ("CapBnd", "CapEff", "CapPrm"):
            assert int(fields[name], 16) == want, (name, fields[name])
        assert not int(fields["CapBnd"], 16) & (1 << NET_RAW | 1 << NET_ADMIN)


def test_a_port_below_1024_is_bound(box):
    with smtplib.SMTP_SSL("127.0.0.1", PORTS["submissions"], context=tls(), timeout=15) as s:
        assert s.ehlo()[0] == 250


def test_the_101st_recipient_is_refused_with_451(box):
    with smtplib.SMTP("127.0.0.1", PORTS["smtp"], timeout=30) as s:
        s.ehlo("client.test")
        assert s.mail("bob@rooney.example")[0] == 250
        codes = [s.rcpt("al@bundy.net")[0] for _ in range(101)]
        assert codes[:100] == [250] * 100
        assert codes[100] == 451
        assert s.data(message("bob@rooney.example", "al@bundy.net", "hundred").as_bytes())[0] == 250
    assert arrived(PORTS["imap"], "al", PASSWORDS["al"], "hundred")


def test_host_mail_tables_and_backups_work_with_the_kept_capabilities(box):
    # the shim's path (docker exec -i sendmail), mailorama-apply's smtpctl, backup and restore
    docker("exec", "-i", NAME, "sendmail", "-t", input=b"To: root\nSubject: via-exec\n\nhi\n")
    assert arrived(PORTS["imap"], "al", PASSWORDS["al"], "via-exec")
    box.exec("sendmail", "al@bundy.net", input=b"Subject: via-sendmail\n\nhi\n")
    assert arrived(PORTS["imap"], "al", PASSWORDS["al"], "via-sendmail")
    box.exec("smtpctl", "update", "table", "virtuals")
    box.exec("/backup.sh")
    box.exec("/restore.sh", "al")
    assert arrived(PORTS["imap"], "al", PASSWORDS["al"], "via-exec")


def test_a_log_flood_stays_bounded(box):
    """Failed commands are each logged; Docker rotates the log at max-size, keeping max-file
    files: flood well past that and the files on disk stay within it. Unknown commands, as
    smtpd answers them without asking our filter (refused RCPTs are cut off after
    mailorama_error_limit: tests/integration/test_error_limit.py)."""
    options = inspect(NAME)["HostConfig"]["LogConfig"]["Config"]
    size = int(options["max-size"].rstrip("m")) * 2 ** 20
    cap = size * int(options["max-file"])
    log = Path(inspect(NAME)["LogPath"])

    def on_disk() -> int:
        return sum(p.stat().st_size for p in log.parent.glob(log.name + "*"))

    flooded, before, started = 0, on_disk(), time.monotonic()
    with smtplib.SMTP("127.0.0.1", PORTS["smtp"], timeout=30) as s:
        s.ehlo("client.test")
        # each unknown command is one log line of a few hundred bytes: write 2.5 times the cap
        line = None
        while flooded < 2.5 * cap:
            for _ in range(500):
                assert s.docmd(f"XFLOOD nobody-{'x' * 40}")[0] == 500
            grown = on_disk() - before
            line = line or grown / 500
            flooded += 500 * line
            assert time.monotonic() - started < 120, "flood too slow"
    time.sleep(1)
    assert on_disk() <= cap + 64 * 1024, (on_disk(), cap)
    assert "failed-command" in docker("logs", "--tail", "5", NAME).stderr.decode()


def test_stops_cleanly_without_kill(box):
    """Last: the masters stop their children without CAP_KILL, within the grace period."""
    started = time.monotonic()
    docker("stop", NAME)
    assert time.monotonic() - started < 9
    assert inspect(NAME)["State"]["ExitCode"] == 0
