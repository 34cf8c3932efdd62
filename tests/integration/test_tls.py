"""testssl.sh (Debian's package) against every TLS port of the real container: no HIGH or
CRITICAL finding, TLS 1.2 minimum, server cipher order, forward-secret AEAD suites only.

The container gets a certificate like a real one (RSA-2048, 90 days, names the address
testssl connects to, a CRL URL) from a test CA that testssl is told to trust (--add-ca): the
scan then judges the TLS configuration, not the self-signed fallback certificate (which testssl
rates CRITICAL for trust, HIGH for its 10-year validity and missing revocation info)."""

from __future__ import annotations

import datetime
import json
import re
import shutil
import subprocess
import time

import pytest

from stack import fresh_stack

pytestmark = pytest.mark.docker
NAME = "mor-test-tls"
PORTS = {"smtp": 3925, "submission": 3987, "submissions": 3965, "imap": 3943, "imaps": 3995}
# port -> testssl's STARTTLS protocol (None: TLS from the first byte)
SCANS = {PORTS["smtp"]: "smtp", PORTS["submission"]: "smtp", PORTS["submissions"]: None,
         PORTS["imap"]: "imap", PORTS["imaps"]: None}
CHECKS = ["-p", "-s", "-f", "-P", "-E", "-U", "-S"]   # everything but client simulation
FORWARD_SECRET = {"ECDH", "DH", "ECDHE", "DHE"}


def ca_and_leaf(hostname: str) -> tuple[bytes, bytes, bytes]:
    """A test CA (PEM) and a leaf certificate and key (PEM) it signed."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Mail-o-Rama test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=365))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                         True)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName(hostname), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False,
                                         False), True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                [x509.UniformResourceIdentifier("http://ca.mailorama.test/ca.crl")],
                None, None, None)]), False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return (ca.public_bytes(pem), leaf.public_bytes(pem),
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


@pytest.fixture(scope="module")
def scans(image, tmp_path_factory):
    """testssl's JSON findings per port; the five scans run at once."""
    if not shutil.which("testssl"):
        pytest.fail("testssl.sh is not installed: run tests/rig/up.sh (bash tests/run does)")
    base = tmp_path_factory.mktemp("tls")
    stack = fresh_stack(NAME, base, mailorama_listen=["127.0.0.1"], mailorama_ports=PORTS)
    ca, cert, key = ca_and_leaf("mail.bundy.net")
    (base / "ca.pem").write_bytes(ca)
    user_tls = stack.root / "keys" / "tls-user"
    user_tls.mkdir(parents=True)
    (user_tls / "cert.pem").write_bytes(cert)
    (user_tls / "key.pem").write_bytes(key)
    for path in (user_tls / "cert.pem", user_tls / "key.pem", user_tls):
        path.chmod(0o700 if path.is_dir() else 0o600)
    stack.up()
    try:
        started = time.monotonic()
        running = {}
        for port, starttls in SCANS.items():
            out = base / f"testssl-{port}.json"
            command = ["testssl", "--jsonfile", str(out), "--warnings", "off", "--quiet",
                       "--color", "0", "--add-ca", str(base / "ca.pem"), *CHECKS]
            if starttls:
                command += ["-t", starttls]
            running[port] = (out, subprocess.Popen(command + [f"127.0.0.1:{port}"],
                                                   stdout=subprocess.DEVNULL,
                                                   stderr=subprocess.PIPE))
        results = {}
        for port, (out, proc) in running.items():
            _, err = proc.communicate(timeout=600)
            assert out.exists(), f"testssl on port {port} wrote no JSON: {err.decode()[-2000:]}"
            results[port] = json.loads(out.read_text())
        print(f"testssl: {len(SCANS)} ports in {time.monotonic() - started:.0f} s")
        yield results
    finally:
        stack.save_logs()
        stack.compose("down", check=False)
        stack.remove()


def offered_ciphers(findings: list[dict]) -> list[tuple[str, str]]:
    """(cipher name, key exchange) of every suite testssl found offered."""
    out = []
    for f in findings:
        if re.match(r"^cipher[-_](tls1_\d_|ssl\d_)?x[0-9a-f]+$", f["id"]):
            m = re.search(r"x[0-9a-f]+\s+(\S+)\s+(\S+)", f["finding"])
            assert m, f
            out.append((m.group(1), m.group(2)))
    return out


@pytest.mark.parametrize("port", list(SCANS))
def test_testssl_finds_nothing(scans, port):
    findings = scans[port]
    by_id = {f["id"]: f for f in findings}
    assert not [f for f in findings if f["id"] == "scanProblem" or f["severity"] == "FATAL"]
    bad = [f"{f['id']}: {f['finding']}" for f in findings if f["severity"] in ("HIGH", "CRITICAL")]
    assert not bad, bad
    for old in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        assert by_id[old]["finding"].startswith("not offered"), by_id[old]
    assert by_id["TLS1_2"]["finding"].startswith("offered")
    assert by_id["TLS1_3"]["finding"].startswith("offered")
    order = [f for f in findings if f["id"].startswith("cipher_order")]   # 3.2: one per protocol
    assert order and all(f["finding"].startswith("server") for f in order), order
    ciphers = offered_ciphers(findings)
    assert ciphers, "testssl listed no offered cipher"
    no_fs = [c for c in ciphers if c[1] not in FORWARD_SECRET]
    assert not no_fs, no_fs
    cbc = [c for c in ciphers if not re.search(r"GCM|CHACHA20|POLY1305", c[0])]
    assert not cbc, cbc
