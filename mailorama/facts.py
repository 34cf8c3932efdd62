"""What the deploy reads from a host, in one round trip: a no-change re-deploy stays fast."""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase

SECTIONS = ("files", "sums", "docker", "compose", "container", "image", "homes", "os",
            "packages", "sendmail", "diverted", "shim", "dkim", "applied")
SHIM_MARK = "Mail-o-Rama's sendmail shim"
PACKAGES = ("msmtp", "msmtp-mta", "cron", "docker.io", "docker-compose", "docker-compose-v2")


class MailoramaHost(FactBase):
    """The state of a Mail-o-Rama host: managed files (mode, sha256), Docker, compose, the
    container and image, the mail homes (name -> owner uid), OS, packages, DKIM records."""

    def command(self, paths, root, data, container, image):
        q = shlex.quote
        files = " ".join(q(p) for p in sorted(paths))
        fmt_container = q("{{.State.Status}} {{.State.StartedAt}} {{.Image}}")
        return "\n".join([
            "echo '## files'", f"stat -c '%a %n' {files} 2>/dev/null",
            "echo '## sums'", f"sha256sum {files} 2>/dev/null",
            "echo '## docker'", "command -v docker",
            "echo '## compose'",
            "if docker compose version >/dev/null 2>&1; then echo 'docker compose';"
            " elif docker-compose version >/dev/null 2>&1; then echo docker-compose; fi",
            "echo '## container'", f"docker inspect -f {fmt_container} {q(container)} 2>/dev/null",
            "echo '## image'", f"docker image inspect -f '{{{{.Id}}}}' {q(image)} 2>/dev/null",
            "echo '## homes'",
            f"find {q(data + '/mail')} -mindepth 1 -maxdepth 1 -type d -printf '%f %U\\n' "
            "2>/dev/null",
            "echo '## os'", ". /etc/os-release && echo \"$ID $VERSION_ID\"",
            "echo '## packages'",
            "dpkg-query -W -f '${Package} ${db:Status-Abbrev}\\n' " + " ".join(PACKAGES)
            + " 2>/dev/null",
            "echo '## sendmail'", "dpkg -S /usr/sbin/sendmail 2>/dev/null",
            "echo '## diverted'", "dpkg-divert --listpackage /usr/sbin/sendmail 2>/dev/null",
            "echo '## shim'",
            f"grep -qF {q(SHIM_MARK)} /usr/sbin/sendmail 2>/dev/null && echo yes",
            "echo '## applied'", f"cat {q(root + '/keys/applied')} 2>/dev/null",
            "echo '## dkim'",
            f"for f in {q(root + '/keys/dkim')}/*.txt; do [ -f \"$f\" ] && "
            "printf '%s %s\\n' \"$(basename \"$f\" .txt)\" \"$(cat \"$f\")\"; done",
            "true",
        ])

    def process(self, output):
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
        container = raw["container"][0].split() if raw["container"] else []
        os_id, _, version = (raw["os"][0] if raw["os"] else "").partition(" ")
        return {
            "files": {p: (modes[p], sums.get(p)) for p in modes},
            "docker": bool(raw["docker"]),
            "compose": raw["compose"][0] if raw["compose"] else None,
            "container": {"status": container[0], "started": container[1],
                          "image": container[2]} if len(container) == 3 else None,
            "image": raw["image"][0] if raw["image"] else None,
            "homes": {name: int(uid) for name, _, uid in
                      (line.rpartition(" ") for line in raw["homes"]) if uid.isdigit()},
            "os": (os_id, version),
            "packages": {line.split()[0] for line in raw["packages"]
                         if len(line.split()) > 1 and line.split()[1].startswith("ii")},
            # the package whose /usr/sbin/sendmail it is (not the diversion lines of dpkg -S)
            "sendmail_owner": next((line.split(":")[0] for line in raw["sendmail"]
                                    if not line.startswith("diversion by")), None),
            "sendmail_diverted": bool(raw["diverted"]),
            "sendmail_shim": bool(raw["shim"]),
            "dkim": dict(line.split(" ", 1) for line in raw["dkim"] if " " in line),
            # config file name -> sha256 of what the container last applied
            "applied": {name: digest for digest, _, name in
                        (line.partition("  ") for line in raw["applied"])},
        }


class Fqdn(FactBase):
    """The host's fully qualified name (`hostname -f`)."""

    def command(self):
        return "hostname -f 2>/dev/null || hostname"

    def process(self, output):
        return output[0].strip() if output else None
