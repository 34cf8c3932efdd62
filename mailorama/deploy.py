"""pyinfra deploys for Mail-o-Rama: a thin shell that pushes what `mailorama.render` produces.

    from mailorama.deploy import mail_server
    mail_server()

Settings come from host data (`mailorama_*`, see group_data/all.py). Everything is validated
while pyinfra prepares the run, before any operation reaches any host.
"""

from __future__ import annotations

import hashlib
import ipaddress
import shlex
import sys
import uuid
from io import BytesIO
from pathlib import Path, PurePosixPath

from pyinfra import host, logger, state
from pyinfra.api import FactBase, FileUploadCommand, deploy, operation
from pyinfra.api.exceptions import DeployError
from pyinfra.api.state import BaseStateCallback, StateStage
from pyinfra.facts.files import FileContents
from pyinfra.operations import apt, server
from pyinfra.operations.util.files import generate_color_diff

from . import config as cfg
from . import sieve
from .decide import (HOST_MAIL_FILES, DockerPlan, HostMailPlan, StackPlan, Step, Summary,
                     docker_plan, host_mail_plan, missing_addresses, offsite_marker_path,
                     port_conflicts,
                     selector_clashes, stack_plan, summary_lines, upkeep_plan)
from .dns import records, zone_line
from .facts import SENDMAIL, Fqdn, HostState, MailoramaHost
from .plan import HomePlan, config_problems, plan_homes
from .render import (certbot_hook, diff_sides, dkim_files, image_files,
                     new_dkim_keys, offsite_secrets, render, render_host, smtp_address,
                     tls_copies, tls_copy_command, tls_paths, upkeep_lock)
from .settings import Settings, SettingsError, settings_from
from .upkeep import upkeep, upkeep_notes

_configs: dict[Path, cfg.MailConfig] = {}
_summaries: dict[str, Summary] = {}
_published: dict[tuple[str, str], tuple[str, str]] = {}   # (domain, selector) -> host, key


def _q(path) -> str:
    return shlex.quote(str(path))


def host_settings() -> Settings:
    """This host's validated settings; DeployError naming every bad key."""
    data = host.data.dict()
    unsupported = [flag for flag, on in (
        ("--su-user/_su_user", state.config.SU_USER or data.get("_su_user")),
        ("--doas/_doas", state.config.DOAS or data.get("_doas")),
        ("--dzdo/_dzdo", state.config.DZDO or data.get("_dzdo"))) if on]
    if unsupported:
        raise DeployError(f"{host.name}: {', '.join(unsupported)} is not supported (uploads of "
                          "password hashes and keys must stay private): log in as root, or use "
                          "--sudo; nothing was deployed")
    fqdn = None if data.get("mailorama_hostname") else host.get_fact(Fqdn)
    try:
        return settings_from(data, fqdn=fqdn)
    except SettingsError as e:
        raise DeployError(f"settings of {host.name} (nothing was deployed):\n"
                          + "\n".join(e.errors)) from None


def deploy_folder() -> Path:
    """The folder of deploy.py (relative settings paths start there), else the current one."""
    running = state.current_exec_filename
    base = Path(running).parent if running else Path(".")
    return (Path(state.cwd or ".") / base).resolve()


def host_config(settings: Settings) -> cfg.MailConfig:
    """The validated mail config for this host (each folder parsed once per run)."""
    folder = (deploy_folder() / settings.config_dir).resolve()
    if folder not in _configs:
        try:
            _configs[folder] = cfg.load(folder)
        except cfg.ConfigError as e:
            raise DeployError(
                f"mail config {folder} has {len(e.errors)} error(s); nothing was deployed:\n"
                + "\n".join(e.errors)) from None
    problems = config_problems(_configs[folder], settings, str(folder))
    if problems:
        raise DeployError(f"{host.name}: refusing to deploy (nothing was deployed):\n"
                          + "\n".join(problems))
    return _configs[folder]


def _show_diff(path: str, content: bytes, exists: bool):
    """--diff: the changed lines of one file, secrets masked."""
    old = (host.get_fact(FileContents, path=path) or []) if exists else []
    new = content.decode(errors="replace").splitlines()
    old_shown, new_shown = diff_sides(path, old, new)
    host.log(f"{'Will modify' if exists else 'Will create'} {path}", logger.info)
    for line in generate_color_diff([f"{x}\n" for x in old_shown],
                                    [f"{x}\n" for x in new_shown]):
        logger.info("  %s", line)


@operation()
def sync(files: dict[str, tuple[bytes, int]], dirs: dict[str, int], have: dict):
    """Create `dirs` (path -> mode) and upload each of `files` (path -> (content, mode)) whose
    content or mode differs from `have` (path -> (mode, sha256), the MailoramaHost fact).

    With sudo, pyinfra uploads as the SSH user to a temporary file first: that file goes
    into a folder only the SSH user can enter, never world-readable into /tmp."""
    uploads = [(p, c, m) for p, (c, m) in sorted(files.items())
               if have.get(p, (None, None))[1] != hashlib.sha256(c).hexdigest()]
    # before the first command: --dry's change detection stops reading at that one
    if state.config.DIFF:
        for path, content, _ in uploads:
            _show_diff(path, content, path in have)
    for path, mode in sorted(dirs.items()):
        if have.get(path, (None,))[0] != mode:
            yield f"install -d -m {mode:o} {_q(path)}"
    args = host.current_op_global_arguments or {}
    staging = None
    if uploads and args.get("_sudo"):
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


def host_sieve(settings: Settings, config: cfg.MailConfig) -> dict[str, str]:
    """The declarative Sieve filters (`<config_dir>/sieve/`), checked before anything is pushed;
    sievec compiles them in the container before they go live."""
    folder = (deploy_folder() / settings.config_dir).resolve()
    try:
        scripts = sieve.load(folder, (a.name for a in config.accounts))
    except cfg.ConfigError as e:
        raise DeployError(f"mail config {folder} has {len(e.errors)} error(s); nothing was "
                          "deployed:\n" + "\n".join(e.errors)) from None
    errors = sieve.check_errors(host.get_fact(
        SieveCheck, command=sieve.check_command(settings.image, scripts)) or []) if scripts else []
    if errors:
        raise DeployError(f"{host.name}: sievec refuses the filters in {folder} (nothing was "
                          "deployed):\n" + "\n".join(f"{folder}/{e}" for e in errors))
    return scripts


class SieveCheck(FactBase):
    """sievec's complaints about the declarative filters (sieve.check_command)."""

    def command(self, command):
        return command

    def process(self, output):
        return list(output)


def _stack_files(config, settings) -> tuple[dict, dict, dict]:
    """(config files, image files, compose file): absolute path -> (content, mode)."""
    root = settings.root
    rendered = render(config, settings, host_sieve(settings, config))
    conf = {f"{root}/{rel}": (text.encode(), 0o600) for rel, text in rendered.items()
            if rel.startswith("config/")}
    image = {f"{root}/{rel}": _with_mode(content) for rel, content in image_files().items()}
    compose = {f"{root}/compose.yaml": (rendered["compose.yaml"].encode(), 0o644)}
    return conf, image, compose


def _dirs(settings) -> dict[str, int]:
    root, data = settings.root, settings.data
    return {root: 0o755, f"{root}/config": 0o700, f"{root}/keys": 0o700, f"{root}/image": 0o755,
            data: 0o700, f"{data}/mail": 0o755, f"{data}/backup": 0o700, f"{data}/tmp": 0o1777,
            f"{root}/status": 0o700} | ({f"{root}/offsite": 0o700} if settings.backup_offsite
                                        else {})


def _changed(files: dict, have: dict) -> list[str]:
    return [p for p, (content, mode) in files.items()
            if have.get(p) != (mode, hashlib.sha256(content).hexdigest())]


@deploy("Mail-o-Rama: docker engine")
def docker_engine(plan: DockerPlan) -> list[Step]:
    """Install Docker and compose from the distribution, or start a stopped daemon."""
    steps = []
    if plan.packages:
        op = apt.packages(name="Install Docker engine and compose", packages=list(plan.packages),
                          update=True, cache_time=3600)
        steps.append(Step(f"install {', '.join(plan.packages)}",
                          f"installed {', '.join(plan.packages)}", op))
    if plan.start:
        op = server.shell(name="Start and enable the Docker daemon",
                          commands=["systemctl enable --now docker", "docker info >/dev/null"])
        steps.append(Step("start and enable the Docker daemon", "started the Docker daemon", op))
    return steps


@deploy("Mail-o-Rama: mail homes")
def mail_homes(settings: Settings, plan: HomePlan) -> list[Step]:
    """Move renamed accounts' mail and re-own renumbered accounts' mail (when allowed)."""
    mail = f"{settings.data}/mail"
    steps = []
    for old, new in plan.moves:
        op = server.shell(name=f"Move the mail of '{old}' to '{new}'",
                          commands=[f"mv {_q(f'{mail}/{old}')} {_q(f'{mail}/{new}')}"])
        steps.append(Step(f"move the mail of '{old}' to the renamed account '{new}'",
                          f"moved the mail of '{old}' to the renamed account '{new}'", op))
    for name, uid in plan.chowns:
        op = server.shell(name=f"Re-own the mail of '{name}' to uid {uid}",
                          commands=[f"chown -R {uid}:{uid} {_q(f'{mail}/{name}')}"])
        steps.append(Step(f"re-own the mail of '{name}' to uid {uid}",
                          f"re-owned the mail of '{name}' to uid {uid}", op))
    return steps


@deploy("Mail-o-Rama: TLS certificate")
def certificate(settings: Settings, files: dict, hook_wanted: bool) -> tuple[list[str], list]:
    """Copy the user's certificate where the container reads it when it changed (or remove an
    earlier one's copies); return the paths that changed and the summary steps."""
    tls = tls_paths(settings)
    changed = [src for src, dst in tls.items() if files[src][1] != files.get(dst, (0, ""))[1]]
    steps = []
    if changed:
        op = server.shell(name="Copy the TLS certificate", commands=[tls_copy_command(settings)])
        steps.append(Step("copy the changed TLS certificate", "copied the changed TLS certificate",
                          op))
    elif not tls:
        copies = tls_copies(settings)
        absent(name="Remove the copies of an earlier certificate", paths=copies, have=files)
        changed = [p for p in copies if p in files]
    if not hook_wanted:
        absent(name="Remove the certbot hook", paths=[certbot_hook(settings)], have=files)
    return changed, steps


@deploy("Mail-o-Rama: host mail path")
def host_mail(plan: HostMailPlan, have: HostState, files: dict) -> list[Step]:
    """The host's sendmail (`mailorama_host_mail`): msmtp and shim install Mail-o-Rama's
    /usr/sbin/sendmail (msmtp-mta's is diverted aside, no package removed); none removes it."""
    steps = []
    if plan.remove:
        op = absent(name="Remove Mail-o-Rama's host mail files", paths=list(plan.remove),
                    have=have.files)
        steps.append(Step(f"remove {', '.join(plan.remove)}", f"removed {', '.join(plan.remove)}",
                          op))
    if plan.undivert:
        op = server.shell(name="Give /usr/sbin/sendmail back to msmtp-mta", commands=[
            f"dpkg-divert --local --rename --remove {SENDMAIL}"])
        steps.append(Step("give /usr/sbin/sendmail back to msmtp-mta",
                          "gave /usr/sbin/sendmail back to msmtp-mta", op))
    if plan.packages:
        op = apt.packages(name=f"Install {' and '.join(plan.packages)}",
                          packages=list(plan.packages), update=True, cache_time=3600)
        steps.append(Step(f"install {', '.join(plan.packages)}",
                          f"installed {', '.join(plan.packages)}", op))
    if plan.divert:
        op = server.shell(name="Divert msmtp-mta's sendmail for Mail-o-Rama's", commands=[
            f"dpkg-divert --local --rename --divert {SENDMAIL}.msmtp --add {SENDMAIL}"])
        steps.append(Step("divert msmtp-mta's /usr/sbin/sendmail aside",
                          "diverted msmtp-mta's /usr/sbin/sendmail aside", op))
    changed = _changed(files, have.files)
    op = sync(name="Host mail path and backup cron job", files=files, dirs={}, have=have.files)
    if changed:
        moved = (f" (the host's mail moves here from the container {plan.taken_from}; "
                 f"mailorama_host_mail = 'none' leaves it there)" if plan.taken_from else "")
        steps.append(Step(f"write {', '.join(sorted(changed))}{moved}",
                          f"wrote {', '.join(sorted(changed))}{moved}", op))
    return steps


@deploy("Mail-o-Rama mail server")
def mail_server():
    """Validate the config, push the stack, build and start the container, apply changes live,
    install the host's mail path and the backup cron job; print a summary per host at the end
    (under --dry: what would happen; after a failure: what did)."""
    print_summaries()
    settings = host_settings()
    config = host_config(settings)
    conf, image, compose = _stack_files(config, settings)
    secrets = offsite_secrets(settings)   # root-only
    host_files = {p: (t.encode(), 0o600) if p in secrets else _with_mode(t.encode())
                  for p, t in render_host(settings).items()}
    dirs = _dirs(settings)
    tls = tls_paths(settings)
    hook = certbot_hook(settings)
    key_paths = [f"{settings.root}/keys/dkim/{kind}.key" for kind, _ in settings.dkim_selectors]
    watched = (set(conf) | set(key_paths) | set(image) | set(compose) | set(dirs) | set(host_files) | set(tls)
               | set(tls_copies(settings)) | {hook, SENDMAIL, *HOST_MAIL_FILES}
               | {offsite_marker_path(settings)}
               | ({settings.backup_offsite.ssh_key} - {None} if settings.backup_offsite else set()))
    have: HostState = host.get_fact(
        MailoramaHost, paths=sorted(watched), root=settings.root, data=settings.data,
        container=settings.container, image=settings.image,
        ports=sorted(set(settings.port.values())))
    files = have.files

    # Preflight: every refusal before anything is pushed.
    homes = plan_homes(config, have.homes, settings.allow_renumber)
    engine = docker_plan(settings, have)
    mail = host_mail_plan(settings, have)
    upkept = upkeep_plan(settings, have)
    problems = list(homes.errors) + list(engine.errors) + ([mail.error] if mail.error else [])
    problems += [upkept.error] if upkept.error else []
    problems += [f"mailorama_tls_cert/_key: {path} not found on the host"
                 for path in tls if path not in files]
    problems += missing_addresses(settings, have) + port_conflicts(settings, have)
    if problems:
        raise DeployError(f"{host.name}: refusing to deploy (nothing was changed):\n"
                          + "\n".join(problems))

    dkim = {s: have.dkim.get(s) for _, s in settings.dkim_selectors}
    keys = {}
    if not all(path in files for path in key_paths):
        keys = dkim_files(settings, new_dkim_keys())
        dkim |= {PurePosixPath(p).stem: c.decode().strip() for p, (c, _) in keys.items()
                 if p.endswith(".txt")}
    clashes = selector_clashes(_published, host.name, config.domains,
                               {s: v for s, v in dkim.items() if v})
    if clashes:
        raise DeployError(f"{host.name}: refusing to deploy (nothing was changed):\n"
                          + "\n".join(clashes))

    summary = Summary()
    summary.steps += docker_engine(engine)
    if keys:
        op = sync(name="DKIM keys", files=keys, dirs={f"{settings.root}/keys": 0o700,
                                                      f"{settings.root}/keys/dkim": 0o755},
                  have=files)
        summary.keys_step = len(summary.steps)
        summary.steps.append(Step("make the DKIM keys (RSA-2048, Ed25519)",
                                  "made the DKIM keys (RSA-2048, Ed25519)", op))
    pushed_conf, changed_image = _changed(conf, files), _changed(image, files)
    # pushed before but rejected by the container (or never applied): apply again
    changed_conf = pushed_conf + [
        p for p in conf if p not in pushed_conf and have.container
        and have.applied.get(PurePosixPath(p).name) != files[p][1]]
    changed_compose = _changed(compose, files)
    pushed = sorted(set(pushed_conf + changed_image + changed_compose))
    op = sync(name="Stack folders and config", files=conf, dirs=dirs, have=files)
    ops = [op, sync(name="Image build context", files=image, dirs={}, have=files),
           sync(name="Compose file", files=compose, dirs={}, have=files)]
    if pushed:
        names = ", ".join(PurePosixPath(p).name for p in pushed)
        summary.steps.append(Step(f"push {names}", f"pushed {names}", ops))
    summary.steps += mail_homes(settings, homes)
    changed_tls, steps = certificate(settings, files, hook_wanted=hook in host_files)
    summary.steps += steps

    stack = stack_plan(have, changed_conf, changed_image, changed_compose, changed_tls)
    summary.steps += _stack_ops(settings, engine.compose, stack, have)
    summary.steps += host_mail(mail, have, host_files)
    summary.steps += upkeep(settings, upkept)
    public = settings.addresses or tuple(a for a in have.addresses or () if _is_global(a))
    summary.records = _dns_lines(settings, config, {s: v for s, v in dkim.items() if v}, public)
    summary.records_unmade = _dns_lines(settings, config, {s: v for s, v in have.dkim.items()
                                                           if v}, public)
    summary.notes = _notes(settings, config, homes)
    _summaries[host.name] = summary


def _is_global(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_global
    except ValueError:
        return False


def _stack_ops(settings: Settings, compose_cmd: str, stack: StackPlan,
               have: HostState) -> list[Step]:
    """Build, (re)start or apply live, as `stack_plan` decided."""
    steps = []
    if stack.rebuild:
        op = server.shell(name="Build the image", commands=[_locked(
            settings, f"docker build -q --network host -t {_q(settings.image)} "
                      f"{_q(settings.root + '/image')}")])
        steps.append(Step("build the image", "built the image", op))
    if stack.start:
        op = server.shell(name="Start the container", commands=[_locked(
            settings,
            f"{compose_cmd} -p {_q(settings.container)} -f {_q(settings.root + '/compose.yaml')}"
            " up -d || exit 1; " + _wait_ready(settings, replaced=have.container is not None))])
        verb = "recreate" if have.container else "create"
        steps.append(Step(f"{verb} and start the container", f"{verb}d and started the container",
                          op))
    elif stack.apply:
        names = ", ".join(stack.apply)
        op = server.shell(name=f"Apply changed config live ({names})", commands=[_locked(
            settings, f"docker exec {_q(settings.container)} mailorama-apply"
                      f" || {{ [ $? = 3 ] && docker restart {_q(settings.container)}; }}")])
        steps.append(Step(f"apply {names} live (no restart)", f"applied {names} live", op))
    return steps


def _locked(settings: Settings, command: str) -> str:
    """`command` holding the lock the host's update and restore hold too: never at once."""
    return f"flock -w 900 {_q(upkeep_lock(settings))} sh -c {_q(command)}"


def _wait_ready(settings: Settings, replaced: bool, seconds: int = 60) -> str:
    """A shell loop: wait until both daemons answer. A container that exits or restarts is
    stopped (never left restart-looping) and the deploy fails with its log."""
    name = _q(settings.container)
    address = smtp_address(settings)
    check = (f"docker exec {name} mailorama-healthcheck {address} {settings.port['smtp']} "
             f"{settings.port['imap']} >/dev/null 2>&1")
    old = ("the previous container was replaced, so no mail is served until the cause is "
           "fixed and the deploy runs again" if replaced else "no mail is served until the "
           "cause is fixed and the deploy runs again")
    return (f"for i in $(seq {seconds * 2}); do {check} && exit 0; "
            f"case $(docker inspect -f '{{{{.State.Status}}}}' {name} 2>/dev/null) in "
            "exited|dead|restarting) break;; esac; sleep 0.5; done; "
            f"docker logs --tail 40 {name} >&2; docker stop {name} >/dev/null 2>&1; "
            f"echo 'the container did not become ready; it is stopped (not restart-looping), "
            f"see its log above; {old}' >&2; exit 1")


def _dns_lines(settings, config, dkim, addresses) -> list[str]:
    """The required DNS records as summary lines (';;': a value still to fill in)."""
    lines = ["DNS, the required records (all of them, the recommended too: mailorama dns):"]
    for record in records(config, settings, dkim, addresses):
        if record.level == "required":
            lines.append(f"  {';; ' if record.placeholder else ''}{zone_line(record)}")
    return lines


def _notes(settings, config, homes) -> list[str]:
    """Summary lines that hold whatever the run did: warnings, the host's jobs."""
    lines = []
    if not settings.tls_cert:
        lines.append("warning: self-signed TLS certificate; set mailorama_tls_cert/_key "
                     "for clients that verify")
    lines += [f"warning: {w}" for w in config.warnings]
    lines += [f"warning: mail of removed account '{o}' stays in {settings.data}/mail/{o}"
              for o in homes.orphans]
    lines += upkeep_notes(settings)
    return lines


def _results(step: Step) -> bool | None:
    """True when every operation of a step ran and succeeded, False when one failed, None when
    the run stopped before them."""
    ops = step.op if isinstance(step.op, list) else [step.op]
    if any(op.is_complete() and not op.did_succeed() for op in ops):
        return False
    return True if all(op.is_complete() for op in ops) else None


class SummaryPrinter(BaseStateCallback):
    """Prints each host's Mail-o-Rama summary to stderr when pyinfra is done with it."""

    @staticmethod
    def host_disconnect(state, host):
        summary = _summaries.pop(host.name, None)
        if summary is None:
            return
        executed = state.current_stage >= StateStage.Execute
        results = [_results(step) if executed else None for step in summary.steps]
        print(f"--> Mail-o-Rama on {host.name}:", file=sys.stderr)
        for line in summary_lines(summary, executed, results):
            print(f"    {line}", file=sys.stderr)


def print_summaries():
    """Register the summary printer once per run."""
    if not any(isinstance(h, SummaryPrinter) for h in state.callback_handlers):
        state.add_callback_handler(SummaryPrinter())
