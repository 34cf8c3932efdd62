"""The host's upkeep, as `upkeep_plan` decided: restic for the offsite backups, the SSH key
root-only, the offsite repository initialised when absent. The scripts and the cron file
themselves are host files (render_host), synced with the host mail path."""

from __future__ import annotations

import shlex

from pyinfra.api import deploy
from pyinfra.operations import apt, server

from .decide import Step, UpkeepPlan, offsite_marker_path
from .offsite import marker_command, shown_repository
from .render import offsite_secrets, upkeep_scripts
from .settings import Settings


@deploy("Mail-o-Rama: backups and updates")
def upkeep(settings: Settings, plan: UpkeepPlan) -> list[Step]:
    steps = []
    if plan.packages:
        op = apt.packages(name="Install restic", packages=list(plan.packages), update=True,
                          cache_time=3600)
        steps.append(Step("install restic", "installed restic", op))
    offsite = settings.backup_offsite
    if plan.key_mode:
        op = server.shell(name="Make the offsite SSH key root-only",
                          commands=[f"chmod 0600 {shlex.quote(offsite.ssh_key)}"])
        steps.append(Step(f"make {offsite.ssh_key} root-only (0600)",
                          f"made {offsite.ssh_key} root-only (0600)", op))
    if plan.init:
        shown = shown_repository(offsite.repository)
        op = server.shell(name="Initialise the offsite repository unless it exists", commands=[
            f"{upkeep_scripts(settings)['restic']} --init-if-absent",
            marker_command(offsite_secrets(settings), offsite_marker_path(settings))])
        steps.append(Step(f"check the offsite repository {shown} (initialise it when absent)",
                          f"checked the offsite repository {shown}", op))
    return steps


def upkeep_notes(settings: Settings) -> list[str]:
    """Summary lines: what runs when, and the commands an admin needs."""
    scripts = upkeep_scripts(settings)
    lines = [f"backup: daily, {scripts['backup']}"
             + (" (local archives, then offsite with restic)" if settings.backup_offsite
                else " (local archives only: set mailorama_backup_offsite)"),
             f"self-check: daily, {scripts['check']} (mails root only when something is wrong"
             + ("; through the host's own /usr/sbin/sendmail, as mailorama_host_mail = 'none': "
                "without one its alarms reach nobody)" if settings.host_mail == "none" else ")")]
    if settings.auto_update:
        lines.append(f"security updates: weekly, {scripts['update']}")
    if settings.backup_offsite:
        lines.append(f"disaster recovery: deploy, then {scripts['restore-offsite']}")
    return lines
