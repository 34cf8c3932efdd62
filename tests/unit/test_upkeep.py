"""Offsite backup settings, the host's upkeep scripts and the deploy's upkeep decisions (pure)."""

from __future__ import annotations

import hashlib
import shlex
import subprocess

import pytest

from mailorama.decide import UpkeepPlan, offsite_marker_path, upkeep_plan
from mailorama.facts import HostState
from mailorama.offsite import (Offsite, forget_args, marker, marker_command, shown_repository,
                               ssh_command)
from mailorama.render import diff_sides, offsite_secrets, render_host, upkeep_scripts
from mailorama.settings import SettingsError, settings_from
from mailorama.upkeep import upkeep_notes

OFFSITE = {"repository": "sftp:backup@store.example:/srv/restic/mail", "password": "s3cret pw",
           "ssh_key": "/root/.ssh/backup"}


def settings(**data):
    return settings_from({"mailorama_hostname": "mail.example.org",
                          **{f"mailorama_{k}": v for k, v in data.items()}})


def errors(**data) -> list[str]:
    with pytest.raises(SettingsError) as e:
        settings(**data)
    return e.value.errors


def test_defaults_local_backups_only_weekly_updates():
    s = settings()
    assert s.backup_offsite is None and s.auto_update is True
    assert dict(s.backup_keep) == {"daily": 7, "weekly": 4, "monthly": 6, "yearly": 0}
    assert set(upkeep_scripts(s)) == {"backup", "check", "update"}


def test_the_summary_says_where_alarms_go():
    """Without Mail-o-Rama's host mail the self-check mails through whatever sendmail the host
    has: the summary says so instead of promising alarms."""
    check = [line for line in upkeep_notes(settings()) if line.startswith("self-check")]
    assert check == ["self-check: daily, /usr/local/sbin/mailorama-check-mail-o-rama (mails root "
                     "only when something is wrong)"]
    check = [line for line in upkeep_notes(settings(host_mail="none"))
             if line.startswith("self-check")]
    assert "as mailorama_host_mail = 'none': without one its alarms reach nobody" in check[0]


def test_offsite_and_keep_are_validated_with_the_setting_named():
    s = settings(backup_offsite=OFFSITE, backup_keep={"daily": 14})
    assert s.backup_offsite == Offsite(**OFFSITE)
    assert dict(s.backup_keep)["daily"] == 14 and dict(s.backup_keep)["monthly"] == 6
    for bad, text in [
        ({"password": "x"}, "repository must be a restic repository"),
        ({**OFFSITE, "repository": "ftp://x/y"}, "repository must be a restic repository"),
        ({**OFFSITE, "repository": "sftp:nohostpath"}, "is not 'sftp:user@host:/path'"),
        ({**OFFSITE, "password": ""}, "password must be a non-empty string"),
        ({**OFFSITE, "password": "a\nb"}, "password must be a non-empty string"),
        ({**OFFSITE, "ssh_key": "key"}, "ssh_key must be an absolute path"),
        ({**OFFSITE, "repository": "/srv/restic"}, "ssh_key is for 'sftp:' repositories only"),
        ({**OFFSITE, "user": "x"}, "unknown key(s) user"),
        ("sftp:x:/y", "must be a dict"),
        ({**OFFSITE, "repository": "rest:http://u:pw@h/ x"}, "got 'rest:http://u:********@h/ x'"),
    ]:
        found = errors(backup_offsite=bad)
        assert any(e.startswith("mailorama_backup_offsite: ") and text in e for e in found), \
            (bad, found)
    assert any("weekly must be a whole number" in e for e in errors(backup_keep={"weekly": -1}))
    assert any("unknown period 'hourly'" in e for e in errors(backup_keep={"hourly": 1}))
    assert any("keeps nothing" in e for e in errors(
        backup_keep={"daily": 0, "weekly": 0, "monthly": 0}))
    assert any(e.startswith("mailorama_auto_update: must be True or False")
               for e in errors(auto_update="yes"))


def test_credentials_of_other_backends_reach_restic_and_nothing_else():
    """An s3: repository's keys (any backend's variables) go to the root-only env file, quoted
    so that bash reads back exactly the value; --diff never shows them; ours cannot be set."""
    hostile = "a'b\"c $(touch /tmp/x) `id` \\ ;x"
    s = settings(backup_offsite={"repository": "s3:https://s3.example/bucket", "password": "pw",
                                 "env": {"AWS_ACCESS_KEY_ID": "AKIA1",
                                         "AWS_SECRET_ACCESS_KEY": hostile}})
    env = offsite_secrets(s)["/opt/mail-o-rama/offsite/env"]
    out = subprocess.run(["bash", "-c", 'set -a; . /dev/stdin; set +a; '
                          'printf "%s\\n" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"'],
                         input=env, capture_output=True, text=True, check=True).stdout
    assert out == f"AKIA1\n{hostile}\n"
    old, new = diff_sides("/opt/mail-o-rama/offsite/env", [], env.splitlines())
    assert "AWS_SECRET_ACCESS_KEY=********" in new and not any(
        "AKIA1" in line or "touch" in line for line in new)
    for bad, text in [({"RESTIC_PASSWORD": "x"}, "RESTIC_PASSWORD is set from repository"),
                      ({"aws_key": "x"}, "'aws_key' is not a variable name"),
                      ({"A": "x\ny"}, "A must be a non-empty string on one line"),
                      ({1: "x", "B": 2}, "1 is not a variable name"),
                      (["A=b"], "must be a dict of environment variables")]:
        found = errors(backup_offsite={**OFFSITE, "env": bad})
        assert any(e.startswith("mailorama_backup_offsite['env']: ") and text in e
                   for e in found), (bad, found)


def test_sftp_command_for_every_sftp_form():
    known = "/opt/m/offsite/known_hosts"
    cmd = shlex.split(ssh_command("sftp://root@127.0.0.1:2222//var/tmp/r", "/k", known))
    assert cmd[-5:] == ["-p", "2222", "root@127.0.0.1", "-s", "sftp"]
    assert "StrictHostKeyChecking=accept-new" in cmd and f"UserKnownHostsFile={known}" in cmd
    assert cmd[cmd.index("-i") + 1] == "/k"
    assert "ConnectTimeout=30" in cmd          # a server that never answers fails, no hang
    assert shlex.split(ssh_command("sftp:u@h.example:/p", None, known))[-3:] == \
        ["u@h.example", "-s", "sftp"]
    assert shlex.split(ssh_command("sftp:h.example:rel/p", None, known))[-3] == "h.example"
    assert "-p" not in shlex.split(ssh_command("sftp:h:/p", None, known))
    assert shlex.split(ssh_command("sftp://u@[::1]:22//p", None, known))[-3] == "u@::1"
    assert ssh_command("rest:https://h/", None, known) is None
    assert forget_args((("daily", 7), ("weekly", 0), ("monthly", 6))) == \
        "--keep-daily 7 --keep-monthly 6"


def test_secrets_are_their_own_files_and_never_in_scripts():
    s = settings(backup_offsite=OFFSITE)
    files = render_host(s)
    secret = offsite_secrets(s)
    assert set(secret) == {"/opt/mail-o-rama/offsite/env", "/opt/mail-o-rama/offsite/password"}
    assert files["/opt/mail-o-rama/offsite/password"] == "s3cret pw\n"
    assert all("s3cret" not in text for path, text in files.items() if path not in secret)
    assert "--keep-daily 7 --keep-weekly 4 --keep-monthly 6" in \
        files["/usr/local/sbin/mailorama-backup-mail-o-rama"]


def test_offsite_secrets_are_masked_in_diff_and_summaries():
    s = settings(backup_offsite={"repository": "rest:https://u:hunter2@h.example:8000/m",
                                 "password": "s3cret pw"})
    secret = offsite_secrets(s)
    before = {"/opt/mail-o-rama/offsite/password": ["old s3cret"],
              "/opt/mail-o-rama/offsite/env": ["RESTIC_REPOSITORY=rest:https://u:old@h/"]}
    for path, text in secret.items():
        old, new = diff_sides(path, before[path], text.splitlines())
        assert not any(w in line for w in ("s3cret", "hunter2", "old@")
                       for line in old + new), (old, new)
    assert diff_sides("/opt/mail-o-rama/offsite/password", ["a"], ["b"]) == \
        (["********"], ["********  (changed)"])
    assert shown_repository("rest:https://u:hunter2@h.example:8000/m") == \
        "rest:https://u:********@h.example:8000/m"
    assert shown_repository("sftp://root@h:22//p") == "sftp://root@h:22//p"


def test_the_verified_marker_is_made_on_the_host_from_the_secret_files():
    """The deploy's command (what ps and -vv show) names the files, never a value derived
    from the password; the host's sha256sum of them is the marker the deploy expects."""
    s = settings(backup_offsite=OFFSITE)
    secret = offsite_secrets(s)
    command = marker_command(secret, "/opt/mail-o-rama/offsite/verified")
    assert "s3cret" not in command and marker(secret).split()[0] not in command
    out = subprocess.run(["sha256sum"], input="".join(secret[p] for p in sorted(secret)),
                         capture_output=True, text=True, check=True).stdout
    assert out == marker(secret)
    other = offsite_secrets(settings(backup_offsite={**OFFSITE, "password": "new"}))
    assert marker(other) != marker(secret)


def test_scripts_are_valid_bash_and_cron_spreads_the_jobs():
    s = settings(backup_offsite=OFFSITE)
    files = render_host(s)
    for path, text in files.items():
        if path.startswith("/usr/local/sbin/"):
            assert text.startswith("#!/bin/bash\n")
            subprocess.run(["bash", "-n"], input=text, text=True, check=True)
    cron = files["/etc/cron.d/mail-o-rama"].splitlines()
    jobs = [line for line in cron if line[:1].isdigit()]
    assert len(jobs) == 3 and jobs[2].split()[4] in "0123456"
    assert "/usr/local/sbin/mailorama-update-mail-o-rama" in jobs[2]
    other = render_host(settings(hostname="mx2.example.org", auto_update=False))
    assert "mailorama-update" not in other["/etc/cron.d/mail-o-rama"]


def test_upkeep_plan_installs_restic_and_checks_the_repository_once():
    s = settings(backup_offsite=OFFSITE)
    assert upkeep_plan(settings(), HostState()) == UpkeepPlan()
    missing = upkeep_plan(s, HostState())
    assert missing.error and "ssh_key /root/.ssh/backup not found on the host" in missing.error
    have = HostState(files={"/root/.ssh/backup": (0o644, "x")})
    assert upkeep_plan(s, have) == UpkeepPlan(packages=("restic",), key_mode=True, init=True)
    digest = hashlib.sha256(marker(offsite_secrets(s)).encode()).hexdigest()
    done = HostState(files={"/root/.ssh/backup": (0o600, "x"),
                            offsite_marker_path(s): (0o600, digest)},
                     packages=frozenset({"restic"}))
    assert upkeep_plan(s, done) == UpkeepPlan()
    other = settings(backup_offsite={**OFFSITE, "password": "new"})
    assert upkeep_plan(other, done).init        # a new password is checked again
