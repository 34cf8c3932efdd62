"""mailorama.doctor's pure checks: expected records + observed answers -> ok / missing / wrong.
(The live doctor against a real DNS server and container: tests/dns/test_doctor.py.)"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from mailorama import config as cfg
from mailorama.dns import records
from mailorama.doctor import (MISSING, OK, UNKNOWN, WRONG, Result, check_blocklist,
                              check_certificate, check_record, check_relay, dnsbl_name,
                              exit_code, resolver, spf_result, text_report)
from mailorama.settings import settings_from

REPO = Path(__file__).resolve().parents[2]
CONFIG = cfg.load(REPO / "mail")
SETTINGS = settings_from({"mailorama_hostname": "mail.bundy.net"})
ADDRESS = "203.0.113.25"
DKIM = {"rsa": "v=DKIM1; k=rsa; p=AAAA", "ed25519": "v=DKIM1; k=ed25519; p=BBBB"}
EXPECTED = {(r.name, r.type): r for r in records(CONFIG, SETTINGS, DKIM, [ADDRESS])}


def dns_of(zone: dict):
    """A lookup over a dict {(name, type): [values]}."""
    def lookup(name, rdtype):
        return zone.get((name.rstrip(".").lower(), rdtype), [])
    return lookup


GOOD = dns_of({
    ("bundy.net", "MX"): ["10 mail.bundy.net."],
    ("mail.bundy.net", "A"): [ADDRESS],
    ("bundy.net", "TXT"): ["google-site-verification=x", "v=spf1 mx ~all"],
})


def check(name, rdtype, observed, lookup=GOOD):
    return check_record(EXPECTED[(name, rdtype)], observed, lookup, [ADDRESS])


@pytest.mark.parametrize("record, result", [
    ("v=spf1 mx ~all", "pass"),
    ("v=spf1 a:mail.bundy.net -all", "pass"),
    ("v=spf1 ip4:203.0.113.0/24 -all", "pass"),
    ("v=spf1 ip4:198.51.100.1 ~all", "softfail"),
    ("v=spf1 a/24 -all", "fail"),                     # bundy.net has no A record
    ("v=spf1 mx/24 -all", "pass"),
    ("v=spf1 ip6:2001:db8::/32 -all", "fail"),
    ("v=spf1 include:spf.provider.example mx -all", "pass"),
    ("v=spf1 include:nothing.example -all", "permerror"),
    ("v=spf1 redirect=spf.provider.example", "fail"),
    ("v=spf1 ?all", "neutral"),
    ("v=spf1 +all", "pass"),
    ("v=spf1 a", "neutral"),
    ("v=spf1 frobnicate -all", "permerror"),
    ("v=spf1 " + "include:spf.provider.example " * 11 + "-all", "permerror"),
])
def test_spf_result(record, result):
    lookup = dns_of({
        ("bundy.net", "TXT"): [record], ("bundy.net", "MX"): ["10 mail.bundy.net."],
        ("mail.bundy.net", "A"): [ADDRESS],
        ("spf.provider.example", "TXT"): ["v=spf1 ip4:198.51.100.0/24 -all"],
    })
    assert spf_result("bundy.net", ADDRESS, lookup) == result


def test_two_spf_records_are_a_permerror():
    lookup = dns_of({("bundy.net", "TXT"): ["v=spf1 mx ~all", "v=spf1 -all"]})
    assert spf_result("bundy.net", ADDRESS, lookup) == "permerror"
    assert spf_result("nomaam.org", ADDRESS, lookup) == "none"


def test_mx():
    assert check("bundy.net", "MX", ["10 mail.bundy.net."]).status == OK
    assert check("bundy.net", "MX", ["10 mx1.other.example.", "20 mail.bundy.net."]).status == OK
    wrong = check("bundy.net", "MX", ["10 mx.elsewhere.example."])
    assert (wrong.status, wrong.level) == (WRONG, "required")
    assert wrong.fix == "set: bundy.net. 3600 IN MX 10 mail.bundy.net."
    assert check("bundy.net", "MX", []).status == MISSING


def test_spf_record_checked_by_what_it_authorises():
    assert check("bundy.net", "TXT", ["v=spf1 mx ~all", "other"]).status == OK
    assert check("bundy.net", "TXT", ["v=spf1 a:mail.bundy.net -all"]).status == OK
    without_host = dns_of({("bundy.net", "TXT"): ["v=spf1 ip4:198.51.100.1 ~all"]})
    wrong = check("bundy.net", "TXT", ["v=spf1 ip4:198.51.100.1 ~all"], without_host)
    assert wrong.status == WRONG and "softfail for the host's address 203.0.113.25" in wrong.detail
    assert wrong.fix == 'set: bundy.net. 3600 IN TXT "v=spf1 mx ~all"'
    everyone = dns_of({("bundy.net", "TXT"): ["v=spf1 +all"]})
    assert "every host on the internet" in check("bundy.net", "TXT", ["v=spf1 +all"],
                                                 everyone).detail
    assert check("bundy.net", "TXT", ["v=spf1 mx ~all", "v=spf1 -all"]).status == WRONG
    assert check("bundy.net", "TXT", ["google-site-verification=x"]).status == MISSING


def test_spf_with_a_smarthost_needs_more_than_mx():
    smarthost = settings_from({"mailorama_hostname": "mail.bundy.net",
                               "mailorama_relay_host": "smtp.provider.example:587"})
    spf = next(r for r in records(CONFIG, smarthost, DKIM, [ADDRESS])
               if (r.name, r.type) == ("bundy.net", "TXT"))
    only_mx = dns_of({("bundy.net", "TXT"): ["v=spf1 mx ~all"]})
    result = check_record(spf, ["v=spf1 mx ~all"], only_mx, [ADDRESS])
    assert result.status == WRONG and result.fix.startswith("fill in and set: ")
    relayed = dns_of({("bundy.net", "TXT"): ["v=spf1 mx include:spf.provider.example ~all"],
                      ("spf.provider.example", "TXT"): ["v=spf1 ip4:198.51.100.0/24 -all"]})
    assert check_record(spf, ["v=spf1 mx include:spf.provider.example ~all"], relayed,
                        [ADDRESS]).status == OK


def test_dkim():
    assert check("rsa._domainkey.bundy.net", "TXT", [DKIM["rsa"]]).status == OK
    assert check("rsa._domainkey.bundy.net", "TXT", ["k=rsa; p=AAAA"]).status == OK  # no v=
    stale = check("rsa._domainkey.bundy.net", "TXT", ["v=DKIM1; k=rsa; p=OLDKEY"])
    assert stale.status == WRONG and "stale" in stale.detail
    assert stale.fix == 'set: rsa._domainkey.bundy.net. 3600 IN TXT "v=DKIM1; k=rsa; p=AAAA"'
    assert check("ed25519._domainkey.bundy.net", "TXT", []).status == MISSING
    assert check("ed25519._domainkey.bundy.net", "TXT", [DKIM["ed25519"], DKIM["ed25519"]
                                                         + "x"]).status == WRONG


def test_dmarc_tlsrpt_mta_sts():
    assert check("_dmarc.bundy.net", "TXT", ["v=DMARC1; p=reject"]).status == OK
    assert "reports only" in check("_dmarc.bundy.net", "TXT", ["v=DMARC1; p=none"]).detail
    assert check("_dmarc.bundy.net", "TXT", ["v=DMARC1; rua=mailto:x@y"]).status == WRONG
    missing = check("_dmarc.bundy.net", "TXT", [])
    assert missing.status == MISSING and missing.level == "required"
    assert missing.fix == ('set: _dmarc.bundy.net. 3600 IN TXT "v=DMARC1; p=none; '
                           'rua=mailto:postmaster@bundy.net"')
    assert check("_smtp._tls.bundy.net", "TXT", ["v=TLSRPTv1; rua=mailto:a@b"]).status == OK
    assert check("_smtp._tls.bundy.net", "TXT", ["v=TLSRPTv1;"]).status == WRONG
    assert check("_mta-sts.bundy.net", "TXT", ["v=STSv1; id=20260101"]).status == OK
    assert check("_mta-sts.bundy.net", "TXT", ["v=STSv1; id=no-dashes"]).status == WRONG
    assert check("_mta-sts.bundy.net", "TXT", []).level == "recommended"


def test_srv_a_and_ptr():
    assert check("_imaps._tcp.bundy.net", "SRV", ["0 1 993 mail.bundy.net."]).status == OK
    assert check("_imaps._tcp.bundy.net", "SRV", ["0 1 995 mail.bundy.net."]).status == WRONG
    assert check("mail.bundy.net", "A", [ADDRESS]).status == OK
    assert check("mail.bundy.net", "A", ["198.51.100.1"]).status == WRONG
    assert check("mail.bundy.net", "A", [ADDRESS, "198.51.100.1"]).status == WRONG
    ptr = "25.113.0.203.in-addr.arpa"
    assert check(ptr, "PTR", ["mail.bundy.net."]).status == OK
    wrong = check(ptr, "PTR", ["203-0-113-25.dsl.provider.example."])
    assert wrong.status == WRONG and wrong.check == "PTR 203.0.113.25"
    assert wrong.fix == ("ask the provider of that address to set: "
                         "25.113.0.203.in-addr.arpa. 3600 IN PTR mail.bundy.net.")
    assert check(ptr, "PTR", []).status == MISSING


def _cert(names, days):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def test_certificate():
    now = datetime.datetime.now(datetime.timezone.utc)
    good = check_certificate(_cert(["mail.bundy.net"], 60), "mail.bundy.net", now, [25, 465])
    assert [r.status for r in good] == [OK, OK] and good[0].check.startswith(
        "certificate (port 25, 465)")
    assert check_certificate(_cert(["*.bundy.net"], 60), "mail.bundy.net", now, [25])[0] \
        .status == OK
    other = check_certificate(_cert(["www.bundy.net"], 60), "mail.bundy.net", now, [25])
    assert other[0].status == WRONG and "not mail.bundy.net" in other[0].detail
    expiring = check_certificate(_cert(["mail.bundy.net"], 3), "mail.bundy.net", now, [25])[1]
    assert expiring.status == WRONG and "in 3 days" in expiring.detail
    assert "renew" in expiring.fix
    expired = check_certificate(_cert(["mail.bundy.net"], 60), "mail.bundy.net",
                                now + datetime.timedelta(days=90), [25])[1]
    assert expired.status == WRONG and "not valid now" in expired.detail


def test_relay():
    refused = check_relay([("a@example.com", "b@example.net", 550, "Invalid recipient"),
                           ("postmaster@bundy.net", "b@example.net", 530, "no")])
    assert refused.status == OK
    open_relay = check_relay([("a@example.com", "b@example.net", 250, "Recipient ok")])
    assert (open_relay.status, open_relay.level) == (WRONG, "required")


def test_blocklists():
    assert dnsbl_name("203.0.113.25", "zen.spamhaus.org") == "25.113.0.203.zen.spamhaus.org"
    assert dnsbl_name("2001:db8::1", "zen.spamhaus.org") == (
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.spamhaus.org")
    assert check_blocklist(ADDRESS, "zen.spamhaus.org", []).status == OK
    listed = check_blocklist(ADDRESS, "zen.spamhaus.org", ["127.0.0.2"])
    assert (listed.status, listed.level) == (WRONG, "required")
    refused = check_blocklist(ADDRESS, "zen.spamhaus.org", ["127.255.255.254"])
    assert refused.status == UNKNOWN and "--resolver" in refused.detail


def test_exit_code_and_report():
    results = [Result("a", OK, "required"), Result("b", MISSING, "recommended", "x", "set: y")]
    assert exit_code(results) == 0
    results.append(Result("c", WRONG, "required", "bad", "set: z"))
    assert exit_code(results) == 1
    # nothing verified is no pass: a required check that could not be made gives 2
    assert exit_code(results[:1] + [Result("d", UNKNOWN, "required")]) == 2
    assert exit_code(results[:1] + [Result("d", UNKNOWN, "recommended")]) == 0
    report = text_report("title", results)
    assert "  WRONG    required     c: bad\n" in report and "-> set: z" in report
    assert report.endswith("1 required and 1 recommended check(s) failed, 0 could not be checked")


def test_the_report_escapes_what_dns_sends():
    """A TXT record is anybody's bytes: a terminal escape or a newline in it is shown, not run."""
    hostile = check("_dmarc.bundy.net", "TXT", ["v=DMARC1; p=x\x1b]0;owned\x07\n  OK fake"])
    report = text_report("title", [hostile])
    assert "\x1b" not in report and "\x07" not in report and "\n  OK fake" not in report
    assert "p=x\\x1b]0;owned\\x07\\n  OK fake: no valid p= policy" in report


@pytest.mark.parametrize("spec, server, port", [
    ("127.0.0.1:6653", "127.0.0.1", 6653), ("192.0.2.53", "192.0.2.53", 53),
    ("[::1]:5353", "::1", 5353), ("::1", "::1", 53)])
def test_resolver_spec(spec, server, port):
    r = resolver(spec)
    assert (r.nameservers, r.port) == ([server], port)


def test_resolver_spec_refused():
    with pytest.raises(ValueError, match="--resolver ns.example: expected IP"):
        resolver("ns.example")
