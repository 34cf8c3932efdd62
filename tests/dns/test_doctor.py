"""`mailorama dns` and `mailorama doctor` for real: the records `dns` prints (read over SSH from
the rig's host, like a deploy) served by Knot DNS on 127.0.0.1:6653, a running container with a
CA-signed certificate on test ports, and `doctor` pointed at both. All ok first; then one wrong
record at a time, each reported with the record to set. Then a message from a fresh account,
captured at a loopback sink, verified for both DKIM signatures against the served records and
scored by SpamAssassin offline."""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
import uuid
from email.utils import formatdate
from pathlib import Path

import dkim
import dns.resolver
import pytest

from knot import Knot
from mail import send, wait_for
from project import rig
from stack import REPO, Sink, all_ports, docker, fresh_stack
from mailorama.cli import hash_password

pytestmark = pytest.mark.docker
NAME = "mor-test-dns"
PORTS = {"smtp": 6525, "submission": 6587, "submissions": 6465, "imap": 6143, "imaps": 6993}
SINK = 6600
HOST = "mail.bundy.net"
MAILORAMA = str(Path(sys.executable).parent / "mailorama")
GRIFF = "bowling4ever"
INVENTORY = "hosts = [('127.0.0.1', {data!r})]\n"


def _key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _pem(cert=None, key=None) -> bytes:
    from cryptography.hazmat.primitives import serialization

    if cert is not None:
        return cert.public_bytes(serialization.Encoding.PEM)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert(subject_key, name: str, days: float, issuer=None):
    """A certificate for `name` valid `days` from now; self-signed CA without `issuer`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_cert, issuer_key = issuer or (None, subject_key)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer_cert.subject if issuer_cert else subject)
               .public_key(subject_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1))
               .not_valid_after(now + datetime.timedelta(days=days)))
    if issuer_cert:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), False)
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
    return builder.sign(issuer_key, hashes.SHA256())


class World:
    """The container, the DNS server and the deploy folder `dns` and `doctor` run from."""

    def __init__(self, base: Path, stack, knot: Knot):
        self.base, self.stack, self.knot = base, stack, knot
        self.zone = ""

    def mailorama(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([MAILORAMA, *args, "-C", str(self.base / "deploy")],
                              capture_output=True, text=True, timeout=120)

    def doctor(self, zone: str | None = None) -> tuple[int, dict[str, dict]]:
        """Serve `zone` (default: what `dns` printed), run doctor; (exit code, check -> result)."""
        self.knot.load(self.zone if zone is None else zone)
        result = self.mailorama("doctor", "--json", "--resolver", self.knot.resolver,
                                "--address", "127.0.0.1", "--ca", str(self.base / "ca.pem"))
        assert result.returncode in (0, 1) and result.stdout, result.stderr[-3000:]
        report = json.loads(result.stdout)["hosts"][0]["results"]
        return result.returncode, {r["check"]: r for r in report}

    def restart(self):
        """The container starts with the certificate in keys/tls-user (a restart, not
        mailorama-apply: this tests doctor, not the live hand-over)."""
        docker("restart", NAME)
        self.stack.wait_ready()

    def use_certificate(self, cert: bytes, key: bytes):
        tls = self.stack.root / "keys" / "tls-user"
        tls.mkdir(parents=True, exist_ok=True)
        for name, data in (("cert.pem", cert), ("key.pem", key)):
            (tls / name).write_bytes(data)
            (tls / name).chmod(0o600)


@pytest.fixture(scope="module")
def world(image, tmp_path_factory):
    base = tmp_path_factory.mktemp("dns")
    ca_key, leaf_key = _key(), _key()
    ca = _cert(ca_key, "Mail-o-Rama test CA", 30)
    (base / "ca.pem").write_bytes(_pem(ca))
    stack = fresh_stack(NAME, base / "stack", mailorama_listen=["127.0.0.1"],
                        mailorama_ports=PORTS, mailorama_relay_host=f"127.0.0.1:{SINK}")
    knot = Knot(base)
    world = World(base, stack, knot)
    world.ca = (ca, ca_key)
    world.leaf = (_pem(_cert(leaf_key, HOST, 90, (ca, ca_key))), _pem(key=leaf_key))
    world.use_certificate(*world.leaf)
    # a fresh account, never logged in, for the deliverability test
    with open(stack.config_dir / "accounts", "a") as f:
        f.write(f"griff 1010 {hash_password(GRIFF)}\n")
    with open(stack.config_dir / "virtuals", "a") as f:
        f.write("griff@bundy.net griff\n")
    env = rig()
    # The deploy folder as a user has it; the records describe direct delivery (the relay to
    # the sink only stands in for the internet).
    deploy = base / "deploy"
    (deploy / "group_data").mkdir(parents=True)
    (deploy / "group_data" / "all.py").write_text((REPO / "group_data" / "all.py").read_text())
    (deploy / "inventory.py").write_text(INVENTORY.format(data={
        "ssh_port": int(env["MAILORAMA_RIG_SSH_PORT"]), "ssh_user": "root",
        "ssh_key": env["MAILORAMA_RIG_SSH_KEY"],
        "ssh_known_hosts_file": env["MAILORAMA_RIG_SSH_KNOWN_HOSTS"],
        "mailorama_hostname": HOST, "mailorama_listen": ["127.0.0.1"],
        "mailorama_ports": all_ports(PORTS), "mailorama_root": str(stack.root),
        "mailorama_data": str(stack.data), "mailorama_container": NAME,
        "mailorama_config_dir": str(stack.config_dir), "mailorama_addresses": ["127.0.0.1"]}))
    try:
        stack.up()
        world.dns = world.mailorama("dns")
        world.zone = world.dns.stdout
        knot.start(world.zone)
        yield world
    finally:
        knot.stop()
        stack.save_logs()
        stack.compose("down", check=False)
        stack.remove()


@pytest.fixture(scope="module")
def sink():
    with Sink(SINK) as s:
        yield s


def test_dns_prints_every_record_with_the_hosts_keys(world):
    assert world.dns.returncode == 0, world.dns.stderr
    text = world.zone
    keys = world.stack.root / "keys" / "dkim"
    rsa_txt = (keys / "rsa.txt").read_text().strip()
    strings = re.findall(r'"([^"]*)"', next(line for line in text.splitlines()
                                             if line.startswith("rsa._domainkey.bundy.net.")))
    assert len(strings) == 2 and len(strings[0]) == 255 and "".join(strings) == rsa_txt
    assert f'ed25519._domainkey.darcy.net. 3600 IN TXT "{(keys / "ed25519.txt").read_text().strip()}"' in text
    for line in ("mail.bundy.net. 3600 IN A 127.0.0.1",
                 "1.0.0.127.in-addr.arpa. 3600 IN PTR mail.bundy.net.",
                 "bundy.net. 3600 IN MX 10 mail.bundy.net.",
                 'nomaam.org. 3600 IN TXT "v=spf1 mx ~all"',
                 '_dmarc.bundy.net. 3600 IN TXT "v=DMARC1; p=none; rua=mailto:postmaster@bundy.net"',
                 "_submission._tcp.bundy.net. 3600 IN SRV 10 1 6587 mail.bundy.net.",
                 "_imaps._tcp.bundy.net. 3600 IN SRV 0 1 6993 mail.bundy.net."):
        assert line in text
    assert ";; " not in text            # nothing left to fill in: keys and address known
    as_json = json.loads(world.mailorama("dns", "--json").stdout)["hosts"][0]
    assert as_json["host"] == "127.0.0.1" and as_json["hostname"] == HOST
    assert {r["level"] for r in as_json["records"]} == {"required", "recommended"}


def test_dns_as_a_sudoer(world):
    """The keys folder is root's: a sudoer reads it with --sudo, like the deploy; without,
    dns says so instead of printing placeholders."""
    user = f"ssh_user={rig()['MAILORAMA_RIG_SUDO_USER']}"
    refused = world.mailorama("dns", "--data", user)
    assert refused.returncode == 1
    assert "cannot read" in refused.stderr and "give --sudo" in refused.stderr
    assert world.mailorama("dns", "--data", user, "--sudo").stdout == world.zone


def test_doctor_all_ok(world):
    code, results = world.doctor()
    bad = {k: v for k, v in results.items() if v["status"] != "ok"}
    assert code == 0 and not bad, bad
    for check in ("SPF bundy.net", "DKIM rsa._domainkey.nomaam.org", "MX darcy.net",
                  "PTR 127.0.0.1", "A mail.bundy.net", "not an open relay",
                  "port 6525 (smtp)", "port 6993 (imaps)", "certificate trusted",
                  "blocklist zen.spamhaus.org (127.0.0.1)"):
        assert check in results
    assert "STARTTLS" in results["port 6525 (smtp)"]["detail"]


def _one(results: dict, check: str, status: str, fix: str, also: tuple = ()) -> None:
    """Exactly `check` (and the checks in `also`) failed, `check` with `status` and the fix."""
    failed = {k: v for k, v in results.items() if v["status"] != "ok"}
    assert sorted(failed) == sorted([check, *also]), failed
    assert failed[check]["status"] == status and failed[check]["fix"] == fix, failed[check]


def _swap(zone: str, start: str, new: str | None) -> str:
    """`zone` with the record line starting with `start` replaced by `new` (None: removed)."""
    lines = zone.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith(start))
    lines[index:index + 1] = [] if new is None else [new]
    return "\n".join(lines) + "\n"


def test_spf_without_the_host(world):
    spf = 'bundy.net. 3600 IN TXT "v=spf1 mx ~all"'
    code, results = world.doctor(_swap(world.zone, spf, 'bundy.net. 3600 IN TXT '
                                       '"v=spf1 ip4:192.0.2.99 ~all"'))
    assert code == 1
    _one(results, "SPF bundy.net", "wrong", f"set: {spf}")
    assert "softfail for the host's address 127.0.0.1" in results["SPF bundy.net"]["detail"]


def test_stale_dkim_key(world):
    from cryptography.hazmat.primitives.asymmetric import rsa
    from mailorama.dns import dkim_txt, zone_line, Record

    old = dkim_txt(_pem(key=rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    name = "rsa._domainkey.darcy.net"
    current = next(line for line in world.zone.splitlines() if line.startswith(name + "."))
    stale = zone_line(Record("", name, "TXT", old, "required", ""))
    code, results = world.doctor(_swap(world.zone, name + ".", stale))
    assert code == 1
    _one(results, f"DKIM {name}", "wrong", f"set: {current}")


def test_no_dmarc(world):
    line = '_dmarc.nomaam.org. 3600 IN TXT "v=DMARC1; p=none; rua=mailto:postmaster@nomaam.org"'
    code, results = world.doctor(_swap(world.zone, line, None))
    assert code == 1
    _one(results, "DMARC _dmarc.nomaam.org", "missing", f"set: {line}")


def test_mx_elsewhere(world):
    line = "bundy.net. 3600 IN MX 10 mail.bundy.net."
    code, results = world.doctor(_swap(world.zone, line, "bundy.net. 3600 IN MX 10 "
                                       "mx.elsewhere.example."))
    assert code == 1
    # SPF's `mx` follows the MX: it no longer covers the host either
    _one(results, "MX bundy.net", "wrong", f"set: {line}", also=("SPF bundy.net",))
    assert "mx.elsewhere.example" in results["MX bundy.net"]["detail"]


def test_ptr_mismatch(world):
    line = "1.0.0.127.in-addr.arpa. 3600 IN PTR mail.bundy.net."
    code, results = world.doctor(_swap(world.zone, line, "1.0.0.127.in-addr.arpa. 3600 IN PTR "
                                       "127-0-0-1.dsl.provider.example."))
    assert code == 1
    _one(results, "PTR 127.0.0.1", "wrong", f"ask the provider of that address to set: {line}")


def test_blocklisted_address(world):
    code, results = world.doctor(world.zone + "1.0.0.127.zen.spamhaus.org. 60 IN A 127.0.0.2\n")
    assert code == 1
    check = "blocklist zen.spamhaus.org (127.0.0.1)"
    _one(results, check, "wrong", "see the list's lookup page for 127.0.0.1, fix the cause, "
         "ask for removal")
    assert results[check]["detail"] == "listed (127.0.0.2)"


def test_expiring_certificate(world):
    key = _key()
    world.use_certificate(_pem(_cert(key, HOST, 3, world.ca)), _pem(key=key))
    try:
        world.restart()
        code, results = world.doctor()
    finally:
        world.use_certificate(*world.leaf)
        world.restart()
    assert code == 1
    failed = {k: v for k, v in results.items() if v["status"] != "ok"}
    assert list(failed) == ["certificate (port 6525, 6587, 6465, 6993): dates"], failed
    detail = next(iter(failed.values()))
    assert "in 3 days (less than 14)" in detail["detail"] and "renew" in detail["fix"]


def _resolve_txt(name, timeout=5):
    """dkimpy's DNS lookup, answered by the test's DNS server."""
    res = dns.resolver.Resolver(configure=False)
    res.nameservers, res.port = ["127.0.0.1"], 6653
    name = name.decode() if isinstance(name, bytes) else name
    try:
        return b"".join(res.resolve(name, "TXT")[0].strings)
    except dns.resolver.NXDOMAIN:
        return None


def test_fresh_account_sends_mail_that_verifies_and_scores_clean(world, sink):
    """A new account (added live) sends like Thunderbird through submission to an outside
    address; the copy at the sink carries two DKIM signatures that verify against the records
    the DNS server serves, and SpamAssassin (offline) scores it <= 0."""
    world.knot.load(world.zone)
    # lower-case From: until the signing rework lands (capitals break the signatures)
    message = (
        f"Message-ID: <{uuid.uuid4()}@bundy.net>\r\n"      # Thunderbird's form
        f"Date: {formatdate(localtime=True)}\r\n"
        "MIME-Version: 1.0\r\n"
        "User-Agent: Mozilla Thunderbird\r\n"
        "Content-Language: en-US\r\n"
        "To: Bob Rooney <bob@rooney.example>\r\n"
        "From: Griff <griff@bundy.net>\r\n"
        "Subject: Bowling on Thursday\r\n"
        "Content-Type: text/plain; charset=UTF-8; format=flowed\r\n"
        "Content-Transfer-Encoding: 7bit\r\n\r\n"
        "Hi Bob,\r\n\r\nare we still on for bowling on Thursday at eight? Al says he will\r\n"
        "bring the shoes, and Peg promised not to come.\r\n\r\nSee you there,\r\nGriff\r\n")
    from email import message_from_string, policy
    send(PORTS["submission"], message_from_string(message, policy=policy.SMTP),
         to=["bob@rooney.example"], sender="griff@bundy.net", login=("griff", GRIFF),
         starttls=True)
    got = wait_for(lambda: sink.find("Bowling on Thursday"), 30, what="the message at the sink")
    data = got[0]["data"]
    checker = dkim.DKIM(data)
    signatures = re.findall(rb"^DKIM-Signature:.*?\ba=([a-z0-9-]+)", data, re.M | re.S)
    assert sorted(signatures) == [b"ed25519-sha256", b"rsa-sha256"]
    assert [checker.verify(idx=i, dnsfunc=_resolve_txt) for i in range(2)] == [True, True]
    score = subprocess.run(["spamassassin", "-L", "-t"], input=data, capture_output=True,
                           timeout=120)
    status = re.search(rb"^X-Spam-Status: (\w+), score=(-?[0-9.]+)", score.stdout, re.M)
    assert status, score.stderr.decode()[-2000:]
    report = score.stdout.decode(errors="replace").split("Content analysis details:")[-1]
    logs = Path("/tmp/mor-test-logs")
    logs.mkdir(exist_ok=True)
    (logs / f"{NAME}-spamassassin.txt").write_text(report)      # the score, for a post-mortem
    assert float(status[2]) <= 0, report
