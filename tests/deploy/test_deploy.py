"""Real deploys: `pyinfra inventory.py deploy.py` over SSH to the rig's sshd on 127.0.0.1.

The tests run in file order against one deployed host (this machine, reached over SSH).
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mail import arrived, imap, message, send, smtp, subjects, wait_for
from mailorama import config as cfg
from mailorama.cli import hash_password
from certs import make_cert
from project import NAME, PORTS, Project, started_at

pytestmark = pytest.mark.deploy
SMTP, IMAP = PORTS["smtp"], PORTS["imap"]
PW = cfg.EXAMPLE_PASSWORDS


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    subprocess.run(["docker", "rm", "-f", NAME], capture_output=True)
    p = Project(tmp_path_factory.mktemp("deploy"))
    yield p
    subprocess.run(["docker", "rm", "-f", NAME], capture_output=True)
    Path(f"/etc/cron.d/{NAME}").unlink(missing_ok=True)


def test_first_deploy_serves_mail(project):
    result = project.deploy()
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout)
    # the keys are made by the deploy: the first summary already has the records
    keys = project.root / "keys" / "dkim"
    for selector in ("rsa", "ed25519"):
        value = (keys / f"{selector}.txt").read_text().strip()
        assert f'{selector}._domainkey.bundy.net. 3600 IN TXT "{value[:200]}' in result.stderr
    assert (keys / "rsa.key").stat().st_mode & 0o077 == 0
    assert out["results"]["totals"]["error"] == 0
    send(SMTP, message("bob@rooney.example", "al@bundy.net", "first-deploy"))
    assert arrived(IMAP, "al", PW["al"], "first-deploy")
    assert oct(project.root.joinpath("config").stat().st_mode & 0o777) == "0o700"
    assert project.root.joinpath("config/passwd").stat().st_mode & 0o077 == 0


def test_no_change_redeploy_changes_nothing(project):
    before = started_at()
    result = project.deploy()
    assert result.returncode == 0, result.stderr[-3000:]
    totals = json.loads(result.stdout)["results"]["totals"]
    assert totals["success"] == 0 and totals["error"] == 0 and totals["no_change"] > 0, totals
    assert "server unchanged" in result.stderr
    txt = (project.root / "keys" / "dkim" / "rsa.txt").read_text().strip()
    assert f'rsa._domainkey.darcy.net. 3600 IN TXT "{txt[:200]}' in result.stderr
    assert "bundy.net. 3600 IN MX 10 mail.bundy.net." in result.stderr
    assert '_dmarc.nomaam.org. 3600 IN TXT "v=DMARC1; p=none' in result.stderr
    assert started_at() == before


def test_config_the_container_did_not_apply_is_applied_again(project):
    applied = project.root / "keys" / "applied"
    good = applied.read_text()
    applied.write_text(good.replace(good.split()[0], "0" * 64))   # as if apply had failed
    result = project.deploy()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Apply changed config live" in result.stderr
    assert applied.read_text() == good
    assert json.loads(project.deploy().stdout)["results"]["totals"]["success"] == 0


def test_new_dkim_selectors_go_live_with_their_records(project):
    before = started_at()
    new = {"rsa": "rsa2027", "ed25519": "ed2027"}
    result = project.deploy(mailorama_dkim_selectors=new)
    assert result.returncode == 0, result.stderr[-3000:]
    records = (project.root / "keys" / "dkim" / "rsa2027.txt").read_text()
    assert records.startswith("v=DKIM1; k=rsa; p=")
    again = project.deploy(mailorama_dkim_selectors=new)
    assert f'rsa2027._domainkey.bundy.net. 3600 IN TXT "{records.strip()[:200]}' in again.stderr
    assert "ed2027._domainkey.nomaam.org. 3600 IN TXT" in again.stderr
    project.deployed()
    assert started_at() == before


def test_dry_run_shows_changes_and_touches_nothing(project):
    files, before = project.host_state(), started_at()
    original = project.file("virtuals").read_text()
    project.file("virtuals").write_text(original + "dry@bundy.net al\n")
    try:
        result = project.deploy("--dry")
    finally:
        project.file("virtuals").write_text(original)
    assert result.returncode == 0, result.stderr[-3000:]
    plan = {op["name"]: op["hosts_with_change"] for op in json.loads(result.stdout)["plan"]}
    assert plan["Mail-o-Rama mail server | Stack folders and config"] == ["127.0.0.1"]
    assert any(name.endswith("Apply changed config live (recipients, senders, virtuals)")
               for name in plan), plan
    assert project.host_state() == files and started_at() == before
    assert "nothing was changed; a deploy would:" in result.stderr
    assert "  push recipients, senders, virtuals" in result.stderr
    assert "applied" not in result.stderr.split("--> Mail-o-Rama on")[1]


def test_diff_shows_the_changed_lines_with_secrets_masked(project):
    files = project.host_state()
    originals = {name: project.file(name).read_text() for name in ("virtuals", "accounts")}
    project.file("virtuals").write_text(originals["virtuals"] + "difftest@bundy.net al\n")
    new_hash = hash_password("another-secret", rounds=5000)
    project.file("accounts").write_text(originals["accounts"].replace(
        originals["accounts"].split("\n")[-2].split()[-1], new_hash))
    try:
        result = project.deploy("--dry", "--diff")
    finally:
        for name, text in originals.items():
            project.file(name).write_text(text)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "+ difftest@bundy.net al" in result.stderr, result.stderr[-4000:]
    assert f"Will modify {project.root}/config/virtuals" in result.stderr
    changed = originals["accounts"].split("\n")[-2].split()[0]
    assert f"+ {changed} ********  (changed)" in result.stderr, result.stderr[-4000:]
    assert new_hash not in result.stderr and "$6$" not in result.stderr
    assert project.host_state() == files


def test_added_address_domain_and_account_apply_live(project):
    before = started_at()
    with project.file("domains").open("a") as f:
        f.write("griffs.net\n")
    with project.file("accounts").open("a") as f:
        f.write(f"griff 1010 {hash_password('grease', rounds=5000)}\n")
    with project.file("virtuals").open("a") as f:
        f.write("griff@griffs.net griff\npostmaster@griffs.net griff\nabuse@griffs.net griff\n"
                "new@bundy.net peg\n")
    result = project.deploy()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Apply changed config live" in result.stderr
    send(SMTP, message("bob@rooney.example", ["griff@griffs.net", "new@bundy.net"], "added"))
    assert arrived(IMAP, "griff", "grease", "added")
    assert arrived(IMAP, "peg", PW["peg"], "added")
    assert started_at() == before


BROKEN = [
    ("virtuals", "pegy@bundy.net pegy\n", "target 'pegy' is neither an account"),
    ("accounts", "dup 1001 $6$rounds=5000$abc$" + "a" * 86 + "\n", "uid 1001 of account 'dup'"),
    ("accounts", "plain 1050 hunter2\n", "account 'plain': the password is not hashed"),
    ("virtuals", "x@nothosted.example al\n", "which is not in domains"),
    ("virtuals", "a@bundy.net b@bundy.net\nb@bundy.net a@bundy.net\n", "delivers to itself"),
]


@pytest.mark.parametrize("name, extra, expected", BROKEN)
def test_broken_config_touches_nothing(project, name, extra, expected):
    before, files = started_at(), project.host_state()
    original = project.file(name).read_text()
    lines = len(original.splitlines())
    project.file(name).write_text(original + extra)
    try:
        result = project.deploy()
    finally:
        project.file(name).write_text(original)
    assert result.returncode != 0
    assert f"{name}:{lines + 1}: " in result.stderr and expected in result.stderr, result.stderr
    assert "Beginning operation run" not in result.stderr
    assert project.host_state() == files and started_at() == before
    with smtp(SMTP) as s:                               # the old config still serves
        s.ehlo("client.test")
        s.mail("bob@rooney.example")
        assert s.rcpt("griff@griffs.net")[0] == 250


def test_published_passwords_never_leave_loopback(project):
    files = project.host_state()
    result = project.deploy(mailorama_listen=[])
    assert result.returncode != 0
    assert "use the example's published passwords" in result.stderr
    assert project.host_state() == files


def test_renumbering_an_account_with_mail(project):
    accounts = project.file("accounts").read_text()
    project.file("accounts").write_text(accounts.replace("al         1000", "al         1099"))
    files = project.host_state()
    result = project.deploy()
    assert result.returncode != 0
    assert "account 'al' now has uid 1099, but its mail on the host is owned by uid 1000" \
        in result.stderr
    assert project.host_state() == files
    result = project.deploy(mailorama_allow_renumber=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "re-owned the mail of 'al' to uid 1099" in result.stderr
    assert (project.data / "mail" / "al").stat().st_uid == 1099
    assert "first-deploy" in wait_for(lambda: subjects(IMAP, "al", PW["al"]),
                                      what="al's old mail")
    send(SMTP, message("bob@rooney.example", "al@bundy.net", "after-renumber"))
    assert arrived(IMAP, "al", PW["al"], "after-renumber")


def host_sendmail(subject: str, env: dict | None = None):
    subprocess.run(["/usr/sbin/sendmail", "root"], input=f"Subject: {subject}\n\ntest\n",
                   text=True, check=True, timeout=60, env=env)


def diversion() -> str:
    return subprocess.run(["dpkg-divert", "--listpackage", "/usr/sbin/sendmail"],
                          capture_output=True, text=True).stdout.strip()


def installed(package: str) -> bool:
    out = subprocess.run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}", package],
                         capture_output=True, text=True)
    return out.stdout.startswith("ii")


def in_inbox(user: str, text: str) -> bool:
    """A message whose body holds `text` is in the user's INBOX."""
    conn = imap(IMAP, user, PW[user])
    conn.select("INBOX")
    _, found = conn.search(None, "BODY", f'"{text}"')
    conn.logout()
    return bool(found[0].split())


def ours() -> bool:
    return b"Mail-o-Rama's sendmail" in Path("/usr/sbin/sendmail").read_bytes()


def test_host_sendmail_msmtp_shim_and_back(project):
    # msmtp: Mail-o-Rama's sendmail (msmtp-mta's diverted aside) hands mail to msmtp
    assert installed("msmtp-mta") and diversion() == "LOCAL" and ours()
    host_sendmail("via-msmtp")
    assert arrived(IMAP, "al", PW["al"], "via-msmtp")
    # input without a header block is the body (as every sendmail does), from root and others
    subprocess.run("echo headerless-from-root | /usr/sbin/sendmail root", shell=True, check=True,
                   timeout=60)
    wait_for(lambda: in_inbox("al", "headerless-from-root"), what="headerless mail")
    subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "sh", "-c",
                    "echo from-nobody-msmtp | /usr/sbin/sendmail root"], check=True, timeout=60)
    wait_for(lambda: in_inbox("al", "from-nobody-msmtp"), what="a non-root user's mail")

    project.deployed(mailorama_host_mail="shim")
    assert installed("msmtp-mta") and diversion() == "LOCAL" and ours()   # nothing removed
    assert "mode = shim" in Path("/etc/mail-o-rama/sendmail.ini").read_text()
    host_sendmail("via-shim")
    assert arrived(IMAP, "al", PW["al"], "via-shim")
    # a user without access to Docker: msmtp into the container (never a lost message)
    subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "sh", "-c",
                    "echo from-nobody-shim | /usr/sbin/sendmail root"], check=True, timeout=60)
    wait_for(lambda: in_inbox("al", "from-nobody-shim"), what="a non-root user's mail (shim)")
    # the environment names the container, and a wrong one fails loudly
    bad = subprocess.run(["/usr/sbin/sendmail", "root"], input="Subject: x\n\nx\n", text=True,
                         env=dict(os.environ, MAILORAMA_CONTAINER="no-such-box"))
    assert bad.returncode != 0
    assert project.deploy(mailorama_host_mail="shim").returncode == 0  # converged: no change

    project.deployed()                                      # back to msmtp
    assert installed("msmtp-mta") and Path("/etc/msmtprc").exists() and ours()
    assert "mode = msmtp" in Path("/etc/mail-o-rama/sendmail.ini").read_text()
    host_sendmail("via-msmtp-again")
    assert arrived(IMAP, "al", PW["al"], "via-msmtp-again")
    totals = project.deployed()["results"]["totals"]
    assert totals["success"] == 0, totals

    project.deployed(mailorama_host_mail="none")            # none: Mail-o-Rama's files go
    assert not Path("/etc/msmtprc").exists()
    assert not Path("/etc/mail-o-rama/msmtp-aliases").exists()
    assert diversion() == "" and Path("/usr/sbin/sendmail").resolve().name == "msmtp"
    project.deployed()
    assert Path("/etc/msmtprc").exists() and ours()


def test_another_sendmail_is_never_replaced(project):
    sendmail = Path("/usr/sbin/sendmail")
    project.deployed(mailorama_host_mail="none")            # msmtp-mta's own sendmail back
    subprocess.run(["dpkg-divert", "--local", "--rename", "--divert", "/usr/sbin/sendmail.test",
                    "--add", str(sendmail)], check=True, capture_output=True)
    sendmail.write_text("#!/bin/sh\n# someone's own sendmail\nexit 0\n")
    try:
        for mode in ("shim", "msmtp"):
            result = project.deploy(mailorama_host_mail=mode)
            assert result.returncode != 0
            assert "/usr/sbin/sendmail belongs to no package; Mail-o-Rama leaves another MTA " \
                "alone" in result.stderr
            assert b"someone's own sendmail" in sendmail.read_bytes()
        assert project.deploy(mailorama_host_mail="none").returncode == 0
        assert b"someone's own sendmail" in sendmail.read_bytes()
    finally:
        sendmail.unlink()
        subprocess.run(["dpkg-divert", "--local", "--rename", "--remove", str(sendmail)],
                       check=True, capture_output=True)
    project.deployed()
    assert ours()


def test_cron_job_command_writes_todays_backups(project):
    cron = Path(f"/etc/cron.d/{NAME}").read_text()
    line = next(l for l in cron.splitlines() if l and l[0].isdigit())
    command = line.split(None, 6)[6]
    assert command == f"/usr/local/sbin/mailorama-backup-{NAME}"
    subprocess.run(["sh", "-c", command], check=True, timeout=120)
    today = datetime.date.today().isoformat()
    for account in ("al", "peg", "griff"):
        assert (project.data / "backup" / account / f"{today}.tar.gz").stat().st_size > 0


def served_cert(port: int, implicit: bool = True) -> bytes:
    import socket
    import ssl
    from mail import tls

    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with tls().wrap_socket(raw, server_hostname="mail.bundy.net") as s:
            return ssl.DER_cert_to_PEM_cert(s.getpeercert(binary_form=True)).encode()


def same_cert(pem_a: bytes, pem_b: bytes) -> bool:
    from cryptography import x509
    return x509.load_pem_x509_certificate(pem_a) == x509.load_pem_x509_certificate(pem_b)


def test_letsencrypt_certificate_and_its_renewal(project):
    """A certbot-style certificate (live/ symlinks into archive/) is served on submissions and
    IMAPS; certbot's deploy hook hands a renewed one over without restarting the container."""
    le = Path("/etc/letsencrypt")
    existed = le.exists()
    live, archive = le / "live" / NAME, le / "archive" / NAME
    hook = le / "renewal-hooks" / "deploy" / NAME
    live.mkdir(parents=True, exist_ok=True)
    archive.mkdir(parents=True, exist_ok=True)

    def certbot_writes(n: int) -> bytes:
        cert, key = make_cert("mail.bundy.net")
        (archive / f"fullchain{n}.pem").write_bytes(cert)
        (archive / f"privkey{n}.pem").write_bytes(key)
        (archive / f"privkey{n}.pem").chmod(0o600)
        for name in ("fullchain", "privkey"):
            link = live / f"{name}.pem"
            link.unlink(missing_ok=True)
            link.symlink_to(f"../../archive/{NAME}/{name}{n}.pem")
        return cert

    settings = {"mailorama_tls_cert": str(live / "fullchain.pem"),
                "mailorama_tls_key": str(live / "privkey.pem")}
    try:
        before = started_at()
        first = certbot_writes(1)
        result = project.deploy(**settings)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "self-signed" not in result.stderr
        assert same_cert(served_cert(PORTS["submissions"]), first)
        assert same_cert(served_cert(PORTS["imaps"]), first)
        copy = project.root / "keys" / "tls-user" / "key.pem"
        assert copy.stat().st_mode & 0o077 == 0 and copy.stat().st_uid == 0

        renewed = certbot_writes(2)                       # certbot renews, then runs its hooks
        subprocess.run(["sh", str(hook)], check=True, timeout=120)
        assert same_cert(wait_for(lambda: served_cert(PORTS["submissions"]) if same_cert(
            served_cert(PORTS["submissions"]), renewed) else None, what="renewed cert"), renewed)
        assert same_cert(served_cert(PORTS["imaps"]), renewed)
        assert project.deployed(**settings)["results"]["totals"]["success"] == 0

        project.deployed()                                 # no certificate: self-signed again
        assert not same_cert(served_cert(PORTS["submissions"]), renewed)
        assert not copy.exists() and not hook.exists()
        assert started_at() == before
    finally:
        shutil.rmtree(live, ignore_errors=True)
        shutil.rmtree(archive, ignore_errors=True)
        hook.unlink(missing_ok=True)
        if not existed:
            shutil.rmtree(le, ignore_errors=True)
