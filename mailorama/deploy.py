"""pyinfra deploys for Mail-o-Rama: a thin shell that pushes what `mailorama.render` produces.

    from mailorama.deploy import mail_server
    mail_server()

Settings come from host data (`mailorama_*`, see group_data/all.py). Everything is validated
while pyinfra prepares the run, before any operation reaches any host.
"""

from __future__ import annotations

import hashlib
import shlex
import sys
import uuid
from io import BytesIO
from pathlib import Path, PurePosixPath

from pyinfra import host, state
from pyinfra.api import FileUploadCommand, deploy, operation
from pyinfra.api.exceptions import DeployError
from pyinfra.api.state import BaseStateCallback
from pyinfra.operations import apt, server

from . import config as cfg
from .facts import Fqdn, MailoramaHost
from .plan import HomePlan, config_problems, plan_homes
from .render import (backup_command, certbot_hook, image_files, render, render_host,
                     smtp_address, tls_copies, tls_copy_command, tls_paths)
from .settings import Settings, SettingsError, settings_from

# Compose commands by distribution, for mailorama_install_docker.
DOCKER_PACKAGES = {
    ("debian", "12"): (["docker.io", "docker-compose"], "docker-compose"),
    ("debian", "13"): (["docker.io", "docker-compose"], "docker compose"),
    ("ubuntu", "24.04"): (["docker.io", "docker-compose-v2"], "docker compose"),
}
_configs: dict[Path, cfg.MailConfig] = {}
_summaries: dict[str, list[str]] = {}


def _q(path) -> str:
    return shlex.quote(str(path))


def host_settings() -> Settings:
    """This host's validated settings; DeployError naming every bad key."""
    data = host.data.dict()
    fqdn = None if data.get("mailorama_hostname") else host.get_fact(Fqdn)
    try:
        return settings_from(data, fqdn=fqdn)
    except SettingsError as e:
        raise DeployError(f"settings of {host.name}:\n" + "\n".join(e.errors)) from None


def host_config(settings: Settings) -> cfg.MailConfig:
    """The validated mail config for this host (each folder parsed once per run)."""
    folder = Path(settings.config_dir)
    if not folder.is_absolute():
        folder = Path(state.cwd or ".") / folder
    folder = folder.resolve()
    if folder not in _configs:
        try:
            _configs[folder] = cfg.load(folder)
        except cfg.ConfigError as e:
            raise DeployError(
                f"mail config {folder} has {len(e.errors)} error(s); nothing was deployed:\n"
                + "\n".join(e.errors)) from None
    problems = config_problems(_configs[folder], settings, str(folder))
    if problems:
        raise DeployError(f"{host.name}: refusing to deploy:\n" + "\n".join(problems))
    return _configs[folder]


@operation()
def sync(files: dict[str, tuple[bytes, int]], dirs: dict[str, int], have: dict):
    """Create `dirs` (path -> mode) and upload each of `files` (path -> (content, mode)) whose
    content or mode differs from `have` (path -> (mode, sha256), the MailoramaHost fact).

    With sudo/su, pyinfra uploads as the SSH user to a temporary file first: that file goes
    into a folder only the SSH user can enter, never world-readable into /tmp."""
    for path, mode in sorted(dirs.items()):
        if have.get(path, (None,))[0] != mode:
            yield f"install -d -m {mode:o} {_q(path)}"
    uploads = [(p, c, m) for p, (c, m) in sorted(files.items())
               if have.get(p, (None, None))[1] != hashlib.sha256(c).hexdigest()]
    args = host.current_op_global_arguments or {}
    staging = None
    if uploads and any(args.get(k) for k in ("_sudo", "_su_user", "_doas", "_dzdo")):
        staging = f"/tmp/mail-o-rama-upload-{uuid.uuid4().hex}"
        yield f'install -d -m 0700 -o "${{SUDO_USER:-$(id -un)}}" {staging}'
    for n, (path, content, mode) in enumerate(uploads):
        yield f"mkdir -p {_q(PurePosixPath(path).parent)}"
        temp = f"{staging}/{n}" if staging else host.get_temp_filename(path)
        yield FileUploadCommand(BytesIO(content), path, remote_temp_filename=temp)
        yield f"chmod {mode:o} {_q(path)}"
    if staging:
        yield f"rm -rf {staging}"
    uploaded = {path for path, _, _ in uploads}
    for path, (content, mode) in sorted(files.items()):
        if path not in uploaded and have.get(path, (None,))[0] != mode:
            yield f"chmod {mode:o} {_q(path)}"


@operation()
def absent(paths: list[str], have: dict):
    """Remove those of `paths` that `have` shows on the host."""
    for path in paths:
        if path in have:
            yield f"rm -f {_q(path)}"


def _with_mode(content: bytes) -> tuple[bytes, int]:
    """Scripts (#!) executable, everything else 0644."""
    return content, 0o755 if content.startswith(b"#!") else 0o644


def _stack_files(config, settings) -> tuple[dict, dict, dict]:
    """(config files, image files, compose file): absolute path -> (content, mode)."""
    root = settings.root
    rendered = render(config, settings)
    conf = {f"{root}/{rel}": (text.encode(), 0o600) for rel, text in rendered.items()
            if rel.startswith("config/")}
    image = {f"{root}/{rel}": _with_mode(content) for rel, content in image_files().items()}
    compose = {f"{root}/compose.yaml": (rendered["compose.yaml"].encode(), 0o644)}
    return conf, image, compose


def _dirs(settings) -> dict[str, int]:
    root, data = settings.root, settings.data
    return {root: 0o755, f"{root}/config": 0o700, f"{root}/keys": 0o700, f"{root}/image": 0o755,
            data: 0o700, f"{data}/mail": 0o755, f"{data}/backup": 0o700}


def _changed(files: dict, have: dict) -> list[str]:
    return [p for p, (content, mode) in files.items()
            if have.get(p) != (mode, hashlib.sha256(content).hexdigest())]


@deploy("Mail-o-Rama: docker engine")
def docker_engine(settings: Settings, have: dict) -> str:
    """Install Docker and compose from the distribution when asked; return the compose command."""
    if settings.install_docker:
        packages, compose = DOCKER_PACKAGES.get(have["os"], (None, None))
        if packages is None:
            raise DeployError(f"{host.name}: mailorama_install_docker knows Debian 12/13 and "
                              f"Ubuntu 24.04, not {' '.join(have['os'])}; install Docker yourself")
        if not set(packages) <= have["packages"]:
            apt.packages(name="Install Docker engine and compose", packages=packages,
                         update=True, cache_time=3600)
        return have["compose"] or compose
    if not have["docker"]:
        raise DeployError(f"{host.name}: no docker command; install Docker or set "
                          "mailorama_install_docker = True")
    if not have["compose"]:
        raise DeployError(f"{host.name}: neither `docker compose` (v2) nor `docker-compose` "
                          "(v1.29+) works; install one or set mailorama_install_docker = True")
    return have["compose"]


@deploy("Mail-o-Rama: mail homes")
def mail_homes(settings: Settings, plan: HomePlan):
    """Move renamed accounts' mail and re-own renumbered accounts' mail (when allowed)."""
    mail = f"{settings.data}/mail"
    for old, new in plan.moves:
        server.shell(name=f"Move the mail of '{old}' to '{new}'",
                     commands=[f"mv {_q(f'{mail}/{old}')} {_q(f'{mail}/{new}')}"])
    for name, uid in plan.chowns:
        server.shell(name=f"Re-own the mail of '{name}' to uid {uid}",
                     commands=[f"chown -R {uid}:{uid} {_q(f'{mail}/{name}')}"])


@deploy("Mail-o-Rama: TLS certificate")
def certificate(settings: Settings, files: dict, hook_wanted: bool) -> list[str]:
    """Copy the user's certificate where the container reads it when it changed (or remove an
    earlier one's copies); return the paths that changed."""
    tls = tls_paths(settings)
    changed = [src for src, dst in tls.items() if files[src][1] != files.get(dst, (0, ""))[1]]
    if changed:
        server.shell(name="Copy the TLS certificate", commands=[tls_copy_command(settings)])
    elif not tls:
        copies = tls_copies(settings)
        absent(name="Remove the copies of an earlier certificate", paths=copies, have=files)
        changed = [p for p in copies if p in files]
    if not hook_wanted:
        absent(name="Remove the certbot hook", paths=[certbot_hook(settings)], have=files)
    return changed


@deploy("Mail-o-Rama: host mail path")
def host_mail(settings: Settings, have: dict, files: dict):
    """The host's sendmail: msmtp-mta into the container, the docker-exec shim, or neither.

    The shim takes /usr/sbin/sendmail by a local dpkg diversion of msmtp-mta's (undone when
    switching back), so no package is removed; another MTA's sendmail is never touched."""
    sendmail = "/usr/sbin/sendmail"
    owner, diverted, ours = (have["sendmail_owner"], have["sendmail_diverted"],
                             have["sendmail_shim"])
    # what is there now, if not the shim nor msmtp-mta's own, is someone else's
    foreign = not ours and sendmail in have["files"] and (diverted or owner != "msmtp-mta")
    if foreign and settings.host_mail != "none":
        raise DeployError(f"{host.name}: {sendmail} belongs to "
                          f"{'package ' + owner if owner and not diverted else 'no package'}; "
                          "Mail-o-Rama leaves another MTA alone: remove it, or set "
                          "mailorama_host_mail = 'none'")
    msmtp_files = ["/etc/msmtprc", "/etc/mail-o-rama/msmtp-aliases"]
    unwanted = {"msmtp": ["/etc/mail-o-rama/sendmail.ini"], "shim": msmtp_files,
                "none": msmtp_files + ["/etc/mail-o-rama/sendmail.ini"]}[settings.host_mail]
    if ours and settings.host_mail != "shim":
        unwanted.append(sendmail)
    absent(name="Remove the other host mail path", paths=unwanted, have=have["files"])
    if diverted and not foreign and settings.host_mail != "shim":
        server.shell(name="Give /usr/sbin/sendmail back to msmtp-mta", commands=[
            f"dpkg-divert --local --rename --remove {sendmail}"])
    if settings.host_mail == "shim" and owner == "msmtp-mta" and not diverted:
        server.shell(name="Divert msmtp-mta's sendmail for the shim", commands=[
            f"dpkg-divert --local --rename --divert {sendmail}.msmtp --add {sendmail}"])
    install = [] if "cron" in have["packages"] else ["cron"]
    if settings.host_mail == "msmtp" and "msmtp-mta" not in have["packages"]:
        install.append("msmtp-mta")
    if install:
        apt.packages(name=f"Install {' and '.join(install)}", packages=install, update=True,
                     cache_time=3600)
    sync(name="Host mail path and backup cron job", files=files, dirs={}, have=have["files"])


@deploy("Mail-o-Rama mail server")
def mail_server():
    """Validate the config, push the stack, build and start the container, apply changes live,
    install the host's mail path and the backup cron job; print a summary per host at the end."""
    print_summaries()
    settings = host_settings()
    config = host_config(settings)
    conf, image, compose = _stack_files(config, settings)
    host_files = {p: _with_mode(t.encode()) for p, t in render_host(settings).items()}
    dirs = _dirs(settings)
    tls = tls_paths(settings)
    hook = certbot_hook(settings)
    watched = (set(conf) | set(image) | set(compose) | set(dirs) | set(host_files) | set(tls)
               | set(tls_copies(settings)) | {hook, "/usr/sbin/sendmail", "/etc/msmtprc",
                                    "/etc/mail-o-rama/msmtp-aliases",
                                    "/etc/mail-o-rama/sendmail.ini"})
    have = host.get_fact(MailoramaHost, paths=sorted(watched), root=settings.root,
                         data=settings.data,
                         container=settings.container, image=settings.image)
    files = have["files"]

    plan = plan_homes(config, have["homes"], settings.allow_renumber)
    if plan.errors:
        raise DeployError(f"{host.name}: refusing to change accounts that have mail:\n"
                          + "\n".join(plan.errors))
    missing = [path for path in tls if path not in files]
    if missing:
        raise DeployError(f"{host.name}: mailorama_tls_cert/_key: {', '.join(missing)} not found "
                          "on the host")
    compose_cmd = docker_engine(settings, have)

    changed_conf, changed_image = _changed(conf, files), _changed(image, files)
    # pushed before but rejected by the container (or never applied): apply again
    changed_conf += [p for p in conf if p not in changed_conf and have["container"]
                     and have["applied"].get(PurePosixPath(p).name) != files[p][1]]
    changed_compose = _changed(compose, files)
    sync(name="Stack folders and config", files=conf, dirs=dirs, have=files)
    sync(name="Image build context", files=image, dirs={}, have=files)
    sync(name="Compose file", files=compose, dirs={}, have=files)
    mail_homes(settings, plan)
    changed_tls = certificate(settings, files, hook_wanted=hook in host_files)

    rebuild = bool(changed_image) or have["image"] is None
    running = (have["container"] or {}).get("status") == "running"
    if rebuild:
        server.shell(name="Build the image", commands=[
            f"docker build -q --network host -t {_q(settings.image)} {_q(settings.root + '/image')}"])
    if rebuild or changed_compose or not running:
        server.shell(name="Start the container", commands=[
            f"{compose_cmd} -p {_q(settings.container)} -f {_q(settings.root + '/compose.yaml')}"
            " up -d", _wait_ready(settings)])
    elif changed_conf or changed_tls:
        names = ", ".join(PurePosixPath(p).name for p in sorted(changed_conf + changed_tls))
        server.shell(name=f"Apply changed config live ({names})", commands=[
            f"docker exec {_q(settings.container)} mailorama-apply"
            f" || {{ [ $? = 3 ] && docker restart {_q(settings.container)}; }}"])

    host_mail(settings, have, host_files)
    _summaries[host.name] = _summary(settings, config, plan, changed_conf + changed_tls,
                                     changed_image, changed_compose, rebuild, running,
                                     have["dkim"])


def _wait_ready(settings: Settings, seconds: int = 60) -> str:
    """A shell loop: wait until both daemons answer; on failure show why (the container's log)."""
    name = _q(settings.container)
    address = smtp_address(settings)
    check = (f"docker exec {name} mailorama-healthcheck {address} {settings.port['smtp']} "
             f"{settings.port['imap']} >/dev/null 2>&1")
    return (f"for i in $(seq {seconds * 2}); do {check} && exit 0; sleep 0.5; done; "
            f"docker logs --tail 40 {name} >&2; echo 'the container did not get ready' >&2; "
            "exit 1")


def _summary(settings, config, plan, conf, image, compose, rebuild, running, dkim) -> list[str]:
    lines = [] if conf or rebuild or compose or not running else ["server unchanged"]
    if conf:
        lines.append("config changed: " + ", ".join(PurePosixPath(p).name for p in sorted(conf)))
    if image or rebuild:
        lines.append("image rebuilt")
    if compose or rebuild or not running:
        lines.append("container (re)started")
    domains = ",".join(config.domains)
    for _, selector in settings.dkim_selectors:
        if selector in dkim:
            lines.append(f"DNS TXT {selector}._domainkey.{{{domains}}}: {dkim[selector]}")
        else:
            lines.append(f"DNS TXT {selector}._domainkey.{{{domains}}}: made at the first start, "
                         f"see {settings.root}/keys/dkim/{selector}.txt (or re-run the deploy)")
    if not settings.tls_cert:
        lines.append("warning: self-signed TLS certificate; set mailorama_tls_cert/_key "
                     "for clients that verify")
    lines += [f"warning: {w}" for w in config.warnings]
    lines += [f"warning: mail of removed account '{o}' stays in {settings.data}/mail/{o}"
              for o in plan.orphans]
    lines += [f"moved the mail of '{old}' to the renamed account '{new}'"
              for old, new in plan.moves]
    lines += [f"re-owned the mail of '{name}' to uid {uid}" for name, uid in plan.chowns]
    lines.append(f"backup: daily, {backup_command(settings)}")
    return lines


class SummaryPrinter(BaseStateCallback):
    """Prints each host's Mail-o-Rama summary to stderr when pyinfra is done with it."""

    @staticmethod
    def host_disconnect(state, host):
        lines = _summaries.pop(host.name, None)
        if lines:
            print(f"--> Mail-o-Rama on {host.name}:", file=sys.stderr)
            for line in lines:
                print(f"    {line}", file=sys.stderr)


def print_summaries():
    """Register the summary printer once per run."""
    if not any(isinstance(h, SummaryPrinter) for h in state.callback_handlers):
        state.add_callback_handler(SummaryPrinter())
