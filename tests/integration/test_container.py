"""The mail server container against real clients: every behaviour of the issue, on 127.0.0.x."""

from __future__ import annotations

import datetime
import imaplib
import smtplib
import time

import dkim
import pytest

from stack import PASSWORDS, PORTS, SINK_PORT, Sink, docker, fresh_stack, sh
from mail import arrived, imap, message, send, smtp, subjects, tls, wait_for
from certs import make_cert
from mailorama.cli import hash_password

pytestmark = pytest.mark.docker
NAME = "mor-test-box"
SMTP, SUB, SUBS, IMAP, IMAPS = (PORTS[k] for k in ("smtp", "submission", "submissions",
                                                   "imap", "imaps"))


@pytest.fixture(scope="module")
def box(image, tmp_path_factory):
    stack = fresh_stack(NAME, tmp_path_factory.mktemp("box"),
                        mailorama_listen=["127.0.0.1", "127.0.0.2"],
                        mailorama_relay_host=f"127.0.0.1:{SINK_PORT}")
    stack.up()
    yield stack
    stack.save_logs()
    stack.compose("down", check=False)
    stack.remove()


def login(name):
    return name, PASSWORDS[name]


def test_inbound_for_every_target_kind(box, sink):
    send(SMTP, message("bob@rooney.example", "al@bundy.net", "to-account"))
    send(SMTP, message("bob@rooney.example", "family@bundy.net", "to-nested"))
    send(SMTP, message("bob@rooney.example", "marcy@darcy.net", "other-domain"))
    send(SMTP, message("bob@rooney.example", "shoes@bundy.net", "to-external"))
    assert arrived(IMAP, *login("al"), "to-account")
    for name in ("al", "peg", "kelly", "bud"):      # family -> parents, kids -> 4 accounts
        assert arrived(IMAP, *login(name), "to-nested")
    assert arrived(IMAP, *login("marcy"), "other-domain")
    assert "to-nested" not in subjects(IMAP, *login("marcy"))
    # shoes@ goes to al and is forwarded to gary, SRS-rewritten so SPF passes at gary's end
    assert arrived(IMAP, *login("al"), "to-external")
    forwarded = wait_for(lambda: sink.find("to-external"), what="the forward at the sink")[0]
    assert forwarded["to"] == ["gary@garys-shoes.example"]
    assert forwarded["from"].startswith("SRS0=") and forwarded["from"].endswith("@bundy.net")
    # the Maildir on the host holds it, owned by al's uid
    maildir = box.data / "mail" / "al" / "Maildir"
    assert any(maildir.glob("new/*")) or any(maildir.glob("cur/*"))
    assert (box.data / "mail" / "al").stat().st_uid == 1000


def test_no_forged_hosted_senders_from_outside(box):
    """Unauthenticated mail 'from' a hosted address to a hosted one is refused; logged in, fine."""
    for source in ("127.0.0.1", "127.0.0.2"):
        with smtp(SMTP, source) as s:
            s.ehlo("client.test")
            code, text = s.mail("al@bundy.net")          # refused at once (mailorama-filter)
            assert code == 550 and b"log in to send as it" in text, (source, code, text)
            s.rset()
            s.mail("bob@rooney.example")                # a foreign sender is fine
            assert s.rcpt("peg@bundy.net")[0] == 250
    send(SUB, message("al@bundy.net", "peg@bundy.net", "al-to-peg"), starttls=True,
         login=login("al"))
    assert arrived(IMAP, *login("peg"), "al-to-peg")
    # a forward inside: al (logged in) to shoes@, which goes to al and out to gary
    send(SUB, message("al@bundy.net", "shoes@bundy.net", "al-to-shoes"), starttls=True,
         login=login("al"))
    assert arrived(IMAP, *login("al"), "al-to-shoes")


def test_unknown_recipients_get_550(box):
    # the host name has the aliases (root@, postmaster@...) only, not every account name
    for rcpt in ("nobody@bundy.net", "nobody@mail.bundy.net", "al@mail.bundy.net"):
        with smtp(SMTP) as s:
            s.ehlo("client.test")
            s.mail("bob@rooney.example")
            code, text = s.rcpt(rcpt)
            assert code == 550, (rcpt, code, text)


@pytest.mark.parametrize("source", ["127.0.0.1", "127.0.0.2"])
def test_no_open_relay(box, sink, source):
    for host in ("127.0.0.1", "127.0.0.2"):
        with smtplib.SMTP(host, SMTP, source_address=(source, 0), timeout=15) as s:
            s.ehlo("client.test")
            assert not s.has_extn("auth")               # never AUTH on port 25
            s.mail("al@bundy.net")                      # even with a hosted sender
            code, _ = s.rcpt("victim@elsewhere.example")
            assert code >= 500, f"relay from {source} to {host}: {code}"
            s.rset()
            s.starttls(context=tls())
            s.ehlo("client.test")
            assert not s.has_extn("auth")               # nor after TLS
            s.mail("al@bundy.net")
            code, _ = s.rcpt("victim@elsewhere.example")
            assert code >= 500
    # submission without AUTH relays nothing either
    with smtplib.SMTP("127.0.0.1", SUB, source_address=(source, 0), timeout=15) as s:
        s.starttls(context=tls())
        s.ehlo("client.test")
        code, _ = s.mail("al@bundy.net")
        if code < 400:
            code, _ = s.rcpt("victim@elsewhere.example")
        assert code >= 500
    time.sleep(1)
    assert not sink.find("victim@elsewhere.example")


def test_submission_requires_tls_then_auth(box):
    with smtp(SUB) as s:
        s.ehlo("client.test")
        assert not s.has_extn("auth")                   # no AUTH before TLS
        code, _ = s.mail("al@bundy.net")
        assert code == 530                              # Must issue a STARTTLS first
    for mechanism in ("PLAIN", "LOGIN"):
        with smtp(SUB) as s:
            s.starttls(context=tls())
            s.ehlo("client.test")
            assert mechanism in s.esmtp_features["auth"].upper()
            s.user, s.password = login("peg")
            code, _ = s.auth(mechanism, getattr(s, f"auth_{mechanism.lower()}"))
            assert code == 235
    with smtp(SUB) as s:
        s.starttls(context=tls())
        s.ehlo("client.test")
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login("peg", "wrong password")
    with smtplib.SMTP_SSL("127.0.0.1", SUBS, context=tls(), timeout=15) as s:  # implicit TLS
        s.login(*login("al"))
        assert s.noop()[0] == 250


def test_senders_only_their_own_addresses(box, sink):
    # peg may send as peg@ and as family@ (it delivers to her), not as al@
    send(SUB, message("peg@bundy.net", "bob@rooney.example", "peg-own"), starttls=True,
         login=login("peg"))
    send(SUB, message("family@bundy.net", "bob@rooney.example", "peg-family"), starttls=True,
         login=login("peg"))
    with pytest.raises(smtplib.SMTPSenderRefused) as e:
        send(SUB, message("al@bundy.net", "bob@rooney.example", "peg-as-al"), starttls=True,
             login=login("peg"))
    assert e.value.smtp_code == 530
    with smtplib.SMTP_SSL("127.0.0.1", SUBS, context=tls(), timeout=15) as s:
        s.login(*login("peg"))
        with pytest.raises(smtplib.SMTPSenderRefused):
            s.send_message(message("al@bundy.net", "bob@rooney.example", "peg-as-al-2"))
    wait_for(lambda: sink.find("peg-own") and sink.find("peg-family"), what="peg's mail")
    assert not sink.find("peg-as-al")
    # the header From: is rewritten to the checked envelope sender before signing: no forged
    # From:, and both signatures (d=bundy.net) verify (tests/integration/test_signing.py: more)
    send(SUB, message("marcy@darcy.net", "bob@rooney.example", "peg-header-as-marcy"),
         sender="peg@bundy.net", starttls=True, login=login("peg"))
    data = wait_for(lambda: sink.find("peg-header-as-marcy"), what="peg's mail")[0]["data"]
    headers = data.split(b"\r\n\r\n")[0]
    assert b"From: peg@bundy.net" in headers and b"marcy@darcy.net" not in headers
    assert b"darcy.net" not in headers and headers.count(b"d=bundy.net;") == 2
    records = dns_records(box)
    checker = dkim.DKIM(data)
    assert [checker.verify(idx=i, dnsfunc=lambda name, timeout=5: records.get(
        name if isinstance(name, bytes) else name.encode())) for i in range(2)] == [True, True]


def dns_records(box) -> dict[bytes, bytes]:
    keys = box.root / "keys" / "dkim"
    return {f"{sel}._domainkey.bundy.net.".encode(): (keys / f"{sel}.txt").read_bytes().strip()
            for sel in ("rsa", "ed25519")}


def test_outgoing_mail_is_dkim_signed_rsa_and_ed25519(box, sink):
    send(SUB, message("al@bundy.net", "bob@rooney.example", "signed"), starttls=True,
         login=login("al"))
    data = wait_for(lambda: sink.find("signed"), what="signed mail at the sink")[0]["data"]
    records = dns_records(box)
    signatures = [line for line in data.split(b"\r\n") if line.startswith(b"DKIM-Signature:")]
    assert len(signatures) == 2
    assert b"a=rsa-sha256" in data and b"a=ed25519-sha256" in data

    def dnsfunc(name, timeout=5):
        return records.get(name if isinstance(name, bytes) else name.encode())

    d = dkim.DKIM(data)
    assert [d.verify(idx=i, dnsfunc=dnsfunc) for i in range(2)] == [True, True]
    tampered = data.replace(b"hello", b"jello")
    assert not dkim.verify(tampered, dnsfunc=dnsfunc)


def test_imap_starttls_and_imaps_and_no_cleartext(box):
    send(SMTP, message("bob@rooney.example", "kelly@bundy.net", "for-kelly"))
    assert arrived(IMAP, *login("kelly"), "for-kelly")
    conn = imaplib.IMAP4("127.0.0.2", IMAP, timeout=15)     # from 127.0.0.2: not "secure"
    try:
        assert "LOGINDISABLED" in conn.capabilities
        with pytest.raises(imaplib.IMAP4.error):
            conn.login(*login("kelly"))
    finally:
        conn.shutdown()
    conn = imaplib.IMAP4("127.0.0.2", IMAP, timeout=15)
    conn.starttls(ssl_context=tls())
    assert conn.login(*login("kelly"))[0] == "OK"
    conn.logout()
    conn = imap(IMAPS, *login("kelly"), implicit_tls=True)
    conn.select("INBOX")
    assert conn.search(None, "ALL")[1][0]
    conn.logout()
    with pytest.raises(imaplib.IMAP4.error):
        imap(IMAPS, "kelly", "wrong", implicit_tls=True)


def test_container_sendmail_uses_aliases(box):
    box.exec("sendmail", "root", input=b"Subject: cron says hi\n\nhi\n")
    assert arrived(IMAP, *login("al"), "cron says hi")
    # name@hostname is system mail through the same aliases (what msmtp on the host sends, on
    # the host mail port; from outside, port 25 refuses the host name as sender)
    send(box.settings.port["hostmail"],
         message("root@mail.bundy.net", "root@mail.bundy.net", "root-at-hostname"))
    assert arrived(IMAP, *login("al"), "root-at-hostname")
    with smtp(SMTP) as s:
        s.ehlo("client.test")
        assert s.mail("root@mail.bundy.net")[0] == 550


def test_changed_tables_apply_live_without_restart(box, sink):
    started = box.started_at()
    with (box.config_dir / "accounts").open("a") as f:
        f.write(f"griff 1010 {hash_password('grease', rounds=5000)}\n")
    with (box.config_dir / "virtuals").open("a") as f:
        f.write("griff@nomaam.org griff\nnew@bundy.net peg\ngriff@griffs.net griff\n")
    with (box.config_dir / "domains").open("a") as f:
        f.write("griffs.net\n")          # a new domain changes smtpd.conf (DKIM signing domains)
    with smtp(SMTP) as s:
        s.ehlo("client.test")
        s.mail("bob@rooney.example")
        assert s.rcpt("new@bundy.net")[0] == 550         # not there yet
    box.render()
    out = box.exec("mailorama-apply").stdout.decode()
    assert "virtuals" in out and "passwd" in out and "restarted smtpd" in out, out
    send(SMTP, message("bob@rooney.example", ["new@bundy.net", "griff@nomaam.org",
                                              "griff@griffs.net"], "after-apply"))
    assert arrived(IMAP, *login("peg"), "after-apply")
    assert arrived(IMAP, "griff", "grease", "after-apply")   # a new account, live
    assert (box.data / "mail" / "griff").stat().st_uid == 1010
    send(SUB, message("griff@griffs.net", "bob@rooney.example", "griff-sends"), starttls=True,
         login=("griff", "grease"))                           # credentials table updated
    signed = wait_for(lambda: sink.find("griff-sends"), what="griff's mail")[0]["data"]
    assert b"d=griffs.net" in signed                           # signed for the new domain
    assert box.started_at() == started                         # no restart
    assert box.exec("mailorama-apply").stdout.decode().strip() == "unchanged"


def test_restart_with_a_rejected_config_serves_the_last_good_one(box):
    conf = box.root / "config" / "dovecot.conf"
    good = conf.read_text()
    conf.write_text(good + "mail_location = maildir:~/Maildir\n")   # a Dovecot 2.3 setting
    try:
        assert box.exec("mailorama-apply", check=False).returncode == 1
        docker("restart", box.name)
        box.wait_ready()
        send(SMTP, message("bob@rooney.example", "al@bundy.net", "after-bad-restart"))
        assert arrived(IMAP, *login("al"), "after-bad-restart")
        logs = docker("logs", "--since", "60s", box.name).stderr.decode()
        assert "running the last good one" in logs and "mail_location" in logs
    finally:
        conf.write_text(good)
    assert box.exec("mailorama-apply").returncode == 0


def test_queued_mail_survives_kill_and_recreate(box, sink):
    # nothing listens on the relay port now: the message waits in the queue on the host
    sink.stop()
    send(SUB, message("al@bundy.net", "bob@rooney.example", "queued-survivor"), starttls=True,
         login=login("al"))
    wait_for(lambda: box.exec("smtpctl", "show", "queue").stdout.strip(), what="a queued message")
    docker("kill", box.name)
    box.compose("up", "-d", "--force-recreate")
    box.wait_ready()
    sink.start()
    wait_for(lambda: box.exec("smtpctl", "show", "queue").stdout.strip(), what="the queue loaded")

    def delivered():  # retry now rather than at the queue's next scheduled attempt
        box.exec("smtpctl", "schedule", "all", check=False)
        return sink.find("queued-survivor")
    assert wait_for(delivered, timeout=60, interval=2, what="the queued message after recreate")


def test_backup_and_restore_round_trip(box):
    for i in range(3):
        send(SMTP, message("bob@rooney.example", "bud@bundy.net", f"keep-me-{i}"))
    wait_for(lambda: len([s for s in subjects(IMAP, *login("bud")) if s.startswith("keep-me")]) == 3,
             what="bud's three messages")
    backups = box.data / "backup" / "bud"
    backups.mkdir(parents=True, exist_ok=True)
    old = backups / "2020-01-01.tar.gz"
    old.write_bytes(b"old")
    box.exec("env", "BACKUP_RETENTION_DAYS=14", "/backup.sh")
    today = datetime.date.today().isoformat()
    assert (backups / f"{today}.tar.gz").stat().st_size > 100
    assert (box.data / "backup" / "al" / f"{today}.tar.gz").exists()
    assert not old.exists()                                # older than 14 days: deleted
    assert (backups / f"{today}.tar.gz").stat().st_mode & 0o077 == 0
    # a lost message comes back; the others are not doubled
    conn = imap(IMAP, *login("bud"))
    conn.select("INBOX")
    _, found = conn.search(None, "SUBJECT", '"keep-me-1"')
    conn.store(found[0], "+FLAGS", "\\Deleted")
    conn.expunge()
    conn.logout()
    assert "keep-me-1" not in subjects(IMAP, *login("bud"))
    assert box.exec("/restore.sh", "bud").returncode == 0
    restored = subjects(IMAP, *login("bud"))
    assert sorted(s for s in restored if s.startswith("keep-me")) == [f"keep-me-{i}" for i in range(3)]
    sh("rm", "-rf", str(box.data / "mail" / "bud" / "Maildir"))  # the whole Maildir lost
    assert box.exec("/restore.sh", "bud").returncode == 0
    restored = subjects(IMAP, *login("bud"))
    assert sorted(s for s in restored if s.startswith("keep-me")) == [f"keep-me-{i}" for i in range(3)]
    assert (box.data / "mail" / "bud" / "Maildir").stat().st_uid == 1003
    # a truncated or corrupt archive is refused loudly, and nothing is written
    good = (backups / f"{today}.tar.gz").read_bytes()
    for name, content in (("2001-01-01", good[: len(good) // 2]), ("2001-01-02", b"\x1f\x8bjunk")):
        (backups / f"{name}.tar.gz").write_bytes(content)
        result = box.exec("/restore.sh", "bud", name, check=False)
        assert result.returncode == 1, result
        assert b"damaged" in result.stderr and b"nothing restored" in result.stderr


def test_bad_config_stops_the_container_with_the_reason(image, tmp_path):
    stack = fresh_stack("mor-test-bad", tmp_path, mailorama_listen=["127.0.0.1"],
                        mailorama_ports={"smtp": 3525, "submission": 3587, "submissions": 3465,
                                         "imap": 3143, "imaps": 3993})
    stack.render()
    conf = stack.root / "config" / "dovecot.conf"
    conf.write_text(conf.read_text() + "mail_location = maildir:~/Maildir\n")
    try:
        stack.compose("up", "-d")

        def stopped():
            state = docker("inspect", "-f", "{{.State.Status}} {{.RestartCount}}", stack.name)
            status, restarts = state.stdout.decode().split()
            return status in ("exited", "restarting") or int(restarts) > 0
        wait_for(stopped, timeout=30, what="the container to stop")
        logs = docker("logs", stack.name).stderr.decode()
        assert "mail_location" in logs and "doveconf" in logs, logs
    finally:
        stack.compose("down", check=False)
        stack.remove()


def test_smarthost_with_login_over_tls(image, tmp_path):
    cert, key = make_cert("smarthost.test")
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    ports = {"smtp": 3625, "submission": 3687, "submissions": 3665, "imap": 3243, "imaps": 3893}
    stack = fresh_stack("mor-test-smarthost", tmp_path / "stack", mailorama_listen=["127.0.0.1"],
                        mailorama_ports=ports, mailorama_relay_host="127.0.0.1:2601",
                        mailorama_relay_auth={"user": "bundys", "password": "s3cret-relay"},
                        mailorama_relay_tls_verify=False)
    with Sink(2601, login=("bundys", "s3cret-relay"),
              tls_files=(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"))) as smarthost:
        try:
            stack.up()
            assert (stack.root / "config" / "relay-secrets").stat().st_mode & 0o077 == 0
            stack.exec("sendmail", "-f", "al@bundy.net", "bob@rooney.example",
                       input=b"From: al@bundy.net\nSubject: via-smarthost\n\nhi\n")
            got = wait_for(lambda: smarthost.find("via-smarthost"), timeout=60,
                           what="mail at the smarthost")[0]
            assert got["to"] == ["bob@rooney.example"] and smarthost.logins == ["bundys"]
            assert b"DKIM-Signature" in got["data"]
        finally:
            stack.save_logs()
            stack.compose("down", check=False)
            stack.remove()


def test_host_mail_port_takes_local_mail_and_never_relays(box):
    """The host's own mail (msmtp) enters on 127.0.0.1:<hostmail>: hosted addresses and the host
    name's aliases, from any sender of the host; nothing goes out from there."""
    port = box.settings.port["hostmail"]
    with smtp(port) as s:
        s.ehlo("host.test")
        s.mail("root@mail.bundy.net")
        assert s.rcpt("gary@garys-shoes.example")[0] == 550
        assert s.rcpt("al@bundy.net")[0] == 250
        assert s.rcpt("root@mail.bundy.net")[0] == 250
        s.rset()
        s.mail("")
        assert s.rcpt("bob@rooney.example")[0] == 550
    send(port, message("root@mail.bundy.net", "root@mail.bundy.net", "from-the-host"))
    assert arrived(IMAP, "al", PASSWORDS["al"], "from-the-host")
    with pytest.raises(ConnectionRefusedError):                # bound to 127.0.0.1 alone
        smtp(port, host="127.0.0.2")
