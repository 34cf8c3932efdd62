"""What the deploy reads from a host, in one round trip: a no-change re-deploy stays fast."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

from pyinfra.api import FactBase

SECTIONS = ("files", "sums", "docker", "docker_package", "daemon", "systemd", "compose",
            "container", "image", "homes", "os", "packages", "sendmail", "truename", "shim",
            "dkim", "applied", "listeners", "addresses", "host_mail_for")
SHIM_MARK = "Mail-o-Rama's sendmail"
SENDMAIL = "/usr/sbin/sendmail"
SENDMAIL_INI = "/etc/mail-o-rama/sendmail.ini"
PACKAGES = ("msmtp", "msmtp-mta", "cron", "docker.io", "docker-compose", "docker-compose-v2",
            "restic")


@dataclass(frozen=True)
class Container:
    status: str           # running, restarting, exited...
    started: str
    image: str
    restarts: int = 0


@dataclass(frozen=True)
class Listener:
    """A listening TCP socket: address, port, the process, and whether it is our container's."""

    address: str
    port: int
    process: str
    pid: int | None
    ours: bool


@dataclass(frozen=True)
class HostState:
    """The state of a Mail-o-Rama host as one fact."""

    files: dict[str, tuple[int, str | None]] = field(default_factory=dict)  # path -> mode, sha256
    docker: bool = False                 # the docker command exists
    docker_package: str | None = None    # the package it came with (docker.io, docker-ce-cli...)
    daemon: bool = False                 # the Docker daemon answers
    systemd: bool = False                # systemd runs (the daemon can be started with it)
    compose: str | None = None           # "docker compose" or "docker-compose"
    container: Container | None = None
    image: str | None = None             # image id
    homes: dict[str, int] = field(default_factory=dict)  # mail home -> owner uid
    os: tuple[str, str] = ("", "")
    packages: frozenset[str] = frozenset()
    sendmail_owner: str | None = None    # the package whose /usr/sbin/sendmail it is
    sendmail_truename: str | None = None  # where a diversion moved the package's sendmail
    sendmail_shim: bool = False          # /usr/sbin/sendmail is ours
    dkim: dict[str, str] = field(default_factory=dict)     # selector -> DNS TXT value
    applied: dict[str, str] = field(default_factory=dict)  # config file -> sha256 last applied
    listeners: tuple[Listener, ...] = ()
    ss: bool = True                      # listeners could be read
    addresses: frozenset[str] | None = None   # the host's IP addresses (None: unknown)
    # the container the host's mail goes to (sendmail.ini) and whether it exists
    host_mail_for: tuple[str, bool] | None = None


_USERS = re.compile(r'\(\("([^"]*)",pid=(\d+)')


def parse_listener(line: str) -> Listener | None:
    """One line of `ss -Hltnp` plus our mark: `OURS LOCAL-ADDRESS:PORT users:((...))`."""
    parts = line.split()
    if len(parts) < 2 or ":" not in parts[1]:
        return None
    address, _, port = parts[1].rpartition(":")
    if not port.isdigit():
        return None
    match = _USERS.search(line)
    process, pid = (match.group(1), int(match.group(2))) if match else ("?", None)
    address = address.strip("[]").split("%")[0]
    return Listener(address, int(port), process, pid, parts[0] == "1")


class MailoramaHost(FactBase):
    """The state of a Mail-o-Rama host (`HostState`): managed files (mode, sha256), Docker,
    compose, the container and image, the mail homes, OS, packages, the host's sendmail, DKIM
    records, and who listens on the ports the server needs."""

    def command(self, paths, root, data, container, image, ports):
        q = shlex.quote
        files = " ".join(q(p) for p in sorted(paths))
        fmt = q("{{.State.Status}} {{.State.StartedAt}} {{.Image}} {{.RestartCount}}")
        port_re = q(":(" + "|".join(str(p) for p in sorted(ports)) + ")$")
        return "\n".join([
            "echo '## files'", f"stat -c '%a %n' {files} 2>/dev/null",
            "echo '## sums'", f"sha256sum {files} 2>/dev/null",
            "echo '## docker'", "command -v docker",
            "echo '## docker_package'",
            'd=$(command -v docker) && dpkg -S "$(readlink -f "$d")" 2>/dev/null | cut -d: -f1',
            "echo '## daemon'", "docker info >/dev/null 2>&1 && echo yes",
            "echo '## systemd'", "[ -d /run/systemd/system ] && echo yes",
            "echo '## compose'",
            "if docker compose version >/dev/null 2>&1; then echo 'docker compose';"
            " elif docker-compose version >/dev/null 2>&1; then echo docker-compose; fi",
            "echo '## container'", f"docker inspect -f {fmt} {q(container)} 2>/dev/null",
            "echo '## image'", f"docker image inspect -f '{{{{.Id}}}}' {q(image)} 2>/dev/null",
            "echo '## homes'",
            f"find {q(data + '/mail')} -mindepth 1 -maxdepth 1 -type d -printf '%f %U\\n' "
            "2>/dev/null",
            "echo '## os'", ". /etc/os-release && echo \"$ID $VERSION_ID\"",
            "echo '## packages'",
            "dpkg-query -W -f '${Package} ${db:Status-Abbrev}\\n' " + " ".join(PACKAGES)
            + " 2>/dev/null",
            "echo '## sendmail'", f"dpkg -S {SENDMAIL} 2>/dev/null",
            "echo '## truename'", f"dpkg-divert --truename {SENDMAIL} 2>/dev/null",
            "echo '## shim'", f"grep -qF {q(SHIM_MARK)} {SENDMAIL} 2>/dev/null && echo yes",
            "echo '## applied'", f"cat {q(root + '/keys/applied')} 2>/dev/null",
            "echo '## dkim'",
            f"for f in {q(root + '/keys/dkim')}/*.txt; do [ -f \"$f\" ] && "
            "printf '%s %s\\n' \"$(basename \"$f\" .txt)\" \"$(cat \"$f\")\"; done",
            # who listens on our ports; 1 = a process of our container (same pid namespace)
            "echo '## listeners'",
            f"cpid=$(docker inspect -f '{{{{.State.Pid}}}}' {q(container)} 2>/dev/null)",
            'cns=$(readlink "/proc/${cpid:-0}/ns/pid" 2>/dev/null)',
            "if command -v ss >/dev/null; then ss -Hltnp 2>/dev/null | while read -r _ _ _ local _ users; do"
            f" echo \"$local\" | grep -Eq {port_re} || continue;"
            " pid=$(echo \"$users\" | sed -n 's/.*pid=\\([0-9]*\\).*/\\1/p');"
            ' ns=$(readlink "/proc/${pid:-0}/ns/pid" 2>/dev/null);'
            ' if [ -n "$cns" ] && [ "$ns" = "$cns" ]; then o=1; else o=0; fi;'
            ' echo "$o $local $users"; done; else echo no-ss; fi',
            "echo '## addresses'",
            "ip -o addr show 2>/dev/null | awk '{ sub(\"/.*\", \"\", $4); print $4 }'",
            "echo '## host_mail_for'",
            f"c=$(sed -n 's/^container = //p' {SENDMAIL_INI} 2>/dev/null | head -n1);"
            ' [ -n "$c" ] && { docker inspect "$c" >/dev/null 2>&1 && echo "1 $c" || echo "0 $c"; }',
            "true",
        ])

    def process(self, output) -> HostState:
        raw: dict[str, list[str]] = {s: [] for s in SECTIONS}
        section = None
        for line in output:
            if line.startswith("## ") and line[3:] in raw:
                section = line[3:]
            elif section:
                raw[section].append(line)
        modes = {}
        for line in raw["files"]:
            mode, _, path = line.partition(" ")
            modes[path] = int(mode, 8)
        sums = {}
        for line in raw["sums"]:
            digest, _, path = line.partition("  ")
            sums[path] = digest
        parts = raw["container"][0].split() if raw["container"] else []
        container = (Container(parts[0], parts[1], parts[2],
                               int(parts[3]) if parts[3:] and parts[3].isdigit() else 0)
                     if len(parts) >= 3 else None)
        os_id, _, version = (raw["os"][0] if raw["os"] else "").partition(" ")
        truename = raw["truename"][0].strip() if raw["truename"] else None
        listeners = [parse_listener(line) for line in raw["listeners"] if line != "no-ss"]
        return HostState(
            files={p: (modes[p], sums.get(p)) for p in modes},
            docker=bool(raw["docker"]),
            docker_package=raw["docker_package"][0].strip() if raw["docker_package"] else None,
            daemon=bool(raw["daemon"]),
            systemd=bool(raw["systemd"]),
            compose=raw["compose"][0] if raw["compose"] else None,
            container=container,
            image=raw["image"][0] if raw["image"] else None,
            homes={name: int(uid) for name, _, uid in
                   (line.rpartition(" ") for line in raw["homes"]) if uid.isdigit()},
            os=(os_id, version),
            packages=frozenset(line.split()[0] for line in raw["packages"]
                               if len(line.split()) > 1 and line.split()[1].startswith("ii")),
            # the package whose /usr/sbin/sendmail it is (not the diversion lines of dpkg -S)
            sendmail_owner=next((line.split(":")[0] for line in raw["sendmail"]
                                 if not line.startswith("diversion by")), None),
            sendmail_truename=truename if truename and truename != SENDMAIL else None,
            sendmail_shim=bool(raw["shim"]),
            dkim=dict(line.split(" ", 1) for line in raw["dkim"] if " " in line),
            applied={name: digest for digest, _, name in
                     (line.partition("  ") for line in raw["applied"])},
            listeners=tuple(x for x in listeners if x),
            ss="no-ss" not in raw["listeners"],
            addresses=frozenset(raw["addresses"]) if raw["addresses"] else None,
            host_mail_for=next(((name, exists == "1") for exists, _, name in
                                (line.partition(" ") for line in raw["host_mail_for"])), None),
        )


class Fqdn(FactBase):
    """The host's fully qualified name (`hostname -f`)."""

    def command(self):
        return "hostname -f 2>/dev/null || hostname"

    def process(self, output):
        return output[0].strip() if output else None
