"""The deploy's decisions, pure: what a host has (HostState) and what it should have in, the
steps to take (or the reason to refuse) out. `mailorama.deploy` only turns them into operations."""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field

from .facts import SENDMAIL, SENDMAIL_INI, HostState
from .offsite import marker as offsite_marker
from .offsite import secrets as offsite_secrets
from .settings import Settings, _is_ip

# Compose commands by distribution, for mailorama_install_docker.
DOCKER_PACKAGES = {
    ("debian", "12"): (("docker.io", "docker-compose"), "docker-compose"),
    ("debian", "13"): (("docker.io", "docker-compose"), "docker compose"),
    ("ubuntu", "24.04"): (("docker.io", "docker-compose-v2"), "docker compose"),
}
# Where the shim's diversion keeps msmtp-mta's own sendmail.
MSMTP_DIVERTED = f"{SENDMAIL}.msmtp"
HOST_MAIL_FILES = ("/etc/msmtprc", "/etc/mail-o-rama/msmtp-aliases", SENDMAIL_INI)


def _overlap(a: str, b: str) -> bool:
    """Do two bind addresses collide (the same, or either is a wildcard)?"""
    wild = {"0.0.0.0", "::", "*"}
    if a in wild or b in wild:
        return True
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return a == b


def port_conflicts(settings: Settings, have: HostState) -> list[str]:
    """Ports the server needs that another process already listens on."""
    wanted = list(settings.listen) or ["0.0.0.0"]
    problems = []
    for service, port in settings.ports:
        for other in have.listeners:
            if other.ours or other.port != port:
                continue
            if any(_overlap(address, other.address)
                   for address in (["127.0.0.1"] if service == "hostmail" else wanted)):
                pid = f" (pid {other.pid})" if other.pid else ""
                problems.append(
                    f"port {port} on {other.address} is taken by '{other.process}'{pid}; "
                    f"mailorama_ports['{service}'] needs it: stop that service, or set "
                    f"mailorama_ports = {{'{service}': ...}} or mailorama_listen to other "
                    "addresses")
                break
    return problems


def missing_addresses(settings: Settings, have: HostState) -> list[str]:
    """Listen addresses the host does not have (a daemon could not bind them)."""
    if have.addresses is None:
        return []
    known = {str(ipaddress.ip_address(a)) for a in have.addresses if _is_ip(a)}
    # all of 127.0.0.0/8 is local on Linux; other addresses must be the host's own
    return [f"mailorama_listen: {address} is not an address of this host (it has "
            f"{', '.join(sorted(known))}); fix the address or leave the list empty for all"
            for address in settings.listen if str(ipaddress.ip_address(address)) not in known
            and not (ipaddress.ip_address(address).version == 4
                     and ipaddress.ip_address(address).is_loopback)]


@dataclass(frozen=True)
class DockerPlan:
    packages: tuple[str, ...] = ()   # to install
    start: bool = False              # systemctl enable --now docker
    compose: str | None = None
    errors: tuple[str, ...] = ()


def docker_plan(settings: Settings, have: HostState) -> DockerPlan:
    """Install Docker from the distribution when asked (never over docker.com's packages),
    start a stopped daemon with systemd, or say why the deploy cannot go on."""
    compose = have.compose
    packages: tuple[str, ...] = ()
    if settings.install_docker and not (have.docker_package or "").startswith("docker-ce"):
        wanted = DOCKER_PACKAGES.get(have.os)
        if wanted is None:
            return DockerPlan(errors=(
                f"mailorama_install_docker knows Debian 12/13 and Ubuntu 24.04, not "
                f"{' '.join(have.os)}; install Docker yourself",))
        packages = tuple(p for p in wanted[0] if p not in have.packages)
        compose = compose or wanted[1]
        if packages:   # freshly installed: the package starts its daemon
            return DockerPlan(packages=packages, compose=compose)
    if not have.docker:
        return DockerPlan(errors=("no docker command; install Docker or set "
                                  "mailorama_install_docker = True",))
    if not compose:
        return DockerPlan(errors=("neither `docker compose` (v2) nor `docker-compose` (v1.29+) "
                                  "works; install one or set mailorama_install_docker = True",))
    if not have.daemon:
        if not have.systemd:
            return DockerPlan(errors=(
                "Docker is installed but its daemon does not answer (`docker info` fails) and "
                "there is no systemd to start it: start dockerd and deploy again",))
        return DockerPlan(packages=packages, start=True, compose=compose)
    return DockerPlan(packages=packages, compose=compose)


def selector_clashes(published: dict, host: str, domains, dkim: dict[str, str]) -> list[str]:
    """Hosts of one run that publish different DKIM keys under the same DNS name.
    `published` ((domain, selector) -> (host, TXT value)) collects them over the run's hosts."""
    problems = []
    for domain in domains:
        for selector, value in sorted(dkim.items()):
            other, known = published.setdefault((domain, selector), (host, value))
            if known != value:
                problems.append(
                    f"{selector}._domainkey.{domain}: {other} and {host} have different DKIM "
                    "keys under the same DNS name; give each host its own selectors, e.g. "
                    f"mailorama_dkim_selectors = {{'rsa': '{host.split('.')[0]}-rsa', "
                    f"'ed25519': '{host.split('.')[0]}-ed25519'}} in its host data")
    return problems


@dataclass(frozen=True)
class StackPlan:
    rebuild: bool = False
    start: bool = False          # compose up -d
    apply: tuple[str, ...] = ()  # changed config names applied live


def stack_plan(have: HostState, changed_conf: list[str], changed_image: list[str],
               changed_compose: list[str], changed_tls: list[str]) -> StackPlan:
    """Rebuild when the image context changed or there is no image; (re)start when the image,
    the compose file changed or the container is not running; else apply changes live."""
    rebuild = bool(changed_image) or have.image is None
    running = have.container is not None and have.container.status == "running"
    start = rebuild or bool(changed_compose) or not running
    names = tuple(sorted({p.rsplit("/", 1)[-1] for p in changed_conf + changed_tls}))
    return StackPlan(rebuild, start, () if start else names)


@dataclass(frozen=True)
class HostMailPlan:
    error: str | None = None
    remove: tuple[str, ...] = ()     # files to delete (ours only)
    undivert: bool = False           # give /usr/sbin/sendmail back to msmtp-mta
    divert: bool = False             # move msmtp-mta's sendmail aside for ours
    packages: tuple[str, ...] = ()
    taken_from: str | None = None    # the container the host's mail goes to until now


def host_mail_plan(settings: Settings, have: HostState) -> HostMailPlan:
    """msmtp and shim: our /usr/sbin/sendmail (msmtp-mta's diverted aside, nothing removed);
    none: ours removed, msmtp-mta's given back. Another MTA's sendmail is never touched. One
    container serves a host's mail: another one's is taken over (said), never removed."""
    mode = settings.host_mail
    packages = tuple(p for p in ("cron",) if p not in have.packages)
    other = (have.host_mail_for[0] if have.host_mail_for and have.host_mail_for[1]
             and have.host_mail_for[0] != settings.container else None)
    if other and mode == "none":
        return HostMailPlan(packages=packages)
    ours_diverted = have.sendmail_truename == MSMTP_DIVERTED
    exists = SENDMAIL in have.files
    plain_msmtp = have.sendmail_owner == "msmtp-mta" and have.sendmail_truename is None
    foreign = exists and not have.sendmail_shim and not plain_msmtp
    if have.sendmail_truename and not ours_diverted:
        foreign = True
    if mode == "none":
        remove = tuple(p for p in HOST_MAIL_FILES if p in have.files)
        if have.sendmail_shim:
            remove += (SENDMAIL,)
        return HostMailPlan(remove=remove, undivert=ours_diverted and not foreign,
                            packages=packages)
    if foreign:
        owner = (f"package {have.sendmail_owner}" if have.sendmail_owner
                 and not have.sendmail_truename else "no package")
        return HostMailPlan(error=f"{SENDMAIL} belongs to {owner}; Mail-o-Rama leaves another "
                                  "MTA alone: remove it, or set mailorama_host_mail = 'none'")
    if "msmtp-mta" not in have.packages:
        packages += ("msmtp-mta",)
    return HostMailPlan(divert=not ours_diverted, packages=packages, taken_from=other)


@dataclass
class Step:
    """One thing the deploy does, as a summary line: `done` once it ran, `would` before."""

    would: str
    done: str
    op: object = None            # the pyinfra OperationMeta that does it


@dataclass
class Summary:
    """What a host's run did (or would do), for the lines printed at its end."""

    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # warnings, jobs: true either way
    records: list[str] = field(default_factory=list)  # the DNS records, with the keys made
    # the records as they stand when the key-making step did not run (a dry run, a failure):
    # new keys that never reached the host must not be published
    records_unmade: list[str] = field(default_factory=list)
    keys_step: int | None = None                      # index of that step in `steps`


def summary_lines(summary: Summary, executed: bool, results: list[bool | None]) -> list[str]:
    """The summary as printed: `executed` False (a dry run, or stopped before running) speaks
    of what would happen; else each step as done, failed or not reached (`results`: per step,
    True ok, False failed, None never ran)."""
    lines = []
    if not executed:
        if summary.steps:
            lines.append("nothing was changed; a deploy would:")
            lines += [f"  {step.would}" for step in summary.steps]
        else:
            lines.append("server unchanged (nothing to do)")
    else:
        for step, ok in zip(summary.steps, results):
            if ok:
                lines.append(step.done)
            elif ok is False:
                lines.append(f"FAILED: {step.would}")
            else:
                lines.append(f"not done (the run stopped before it): {step.would}")
        if not summary.steps:
            lines.append("server unchanged")
    made = summary.keys_step is None or results[summary.keys_step] is True
    return lines + (summary.records if made else summary.records_unmade) + summary.notes


def offsite_marker_path(settings: Settings) -> str:
    """Written once the offsite repository answered to the configured password."""
    return f"{settings.root}/offsite/verified"


@dataclass(frozen=True)
class UpkeepPlan:
    error: str | None = None
    packages: tuple[str, ...] = ()   # restic, for the offsite backups
    key_mode: bool = False           # make the SSH key root-only (0600)
    init: bool = False               # check the repository (initialise it when absent)


def upkeep_plan(settings: Settings, have: HostState) -> UpkeepPlan:
    """With an offsite repository: restic installed, the SSH key root-only, the repository
    checked (initialised when absent) whenever the repository or its password changed."""
    offsite = settings.backup_offsite
    if offsite is None:
        return UpkeepPlan()
    key = offsite.ssh_key
    if key and key not in have.files:
        return UpkeepPlan(error=f"mailorama_backup_offsite: ssh_key {key} not found on the "
                                "host; put the key there (root-only) or leave ssh_key out")
    marker = offsite_marker(offsite_secrets(settings.root, offsite))
    verified = have.files.get(offsite_marker_path(settings), (None, None))[1]
    return UpkeepPlan(
        packages=() if "restic" in have.packages else ("restic",),
        key_mode=bool(key) and have.files[key][0] != 0o600,
        init=verified != hashlib.sha256(marker.encode()).hexdigest())
