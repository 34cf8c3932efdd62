"""mailorama.dns: the records every host and hosted domain needs, and their zone-file text."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import dkim
import dns.rdatatype
import dns.zone
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailorama import config as cfg
from mailorama.dns import (conflicts, dkim_txt, mta_sts_id, records, served_files, to_json,
                           txt_strings, zone_line, zone_text)
from mailorama.settings import settings_from

REPO = Path(__file__).resolve().parents[2]
CONFIG = cfg.load(REPO / "mail")


def _pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.fixture(scope="module")
def keys():
    return {"rsa": _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
            "ed25519": _pem(ed25519.Ed25519PrivateKey.generate())}


@pytest.fixture(scope="module")
def txt(keys):
    return {name: dkim_txt(pem) for name, pem in keys.items()}


def settings(**data):
    return settings_from({"mailorama_hostname": "mail.bundy.net",
                          **{f"mailorama_{k}": v for k, v in data.items()}})


def parse(text: str) -> dns.zone.Zone:
    """The zone text as a zone file under the root, the way a DNS server loads it."""
    return dns.zone.from_text(". 3600 IN SOA ns. host. 1 3600 600 86400 300\n"
                              ". 3600 IN NS ns.\n" + text, origin=".", relativize=False,
                              check_origin=False)


def test_dkim_txt_is_what_verifiers_read(keys, txt):
    """RSA: base64 DER SubjectPublicKeyInfo; Ed25519: the raw key (RFC 8463). dkimpy verifies
    signatures made with each private key against its value."""
    assert txt["rsa"].startswith("v=DKIM1; k=rsa; p=MIIBIjAN")
    assert txt["ed25519"].startswith("v=DKIM1; k=ed25519; p=") and len(txt["ed25519"]) == 66
    message = (b"From: al@bundy.net\r\nTo: peg@bundy.net\r\nSubject: hi\r\n"
               b"Date: Fri, 27 Nov 2026 09:00:00 +0000\r\n\r\nhello\r\n")
    raw = serialization.load_pem_private_key(keys["ed25519"], None).private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
        serialization.NoEncryption())
    signing = {"rsa": keys["rsa"], "ed25519": base64.b64encode(raw)}   # dkimpy's forms
    for name, algorithm in (("rsa", b"rsa-sha256"), ("ed25519", b"ed25519-sha256")):
        signature = dkim.sign(message, name.encode(), b"bundy.net", signing[name],
                              signature_algorithm=algorithm)
        assert dkim.verify(signature + message, dnsfunc=lambda n, timeout=5: txt[name].encode())


def test_dkim_txt_refuses_other_keys():
    from cryptography.hazmat.primitives.asymmetric import ec

    with pytest.raises(ValueError, match="RSA or Ed25519"):
        dkim_txt(_pem(ec.generate_private_key(ec.SECP256R1())))


def test_rsa_key_split_at_255_bytes_and_parsed_back_unchanged(txt):
    recs = records(CONFIG, settings(), txt, ["203.0.113.25"])
    rsa_record = next(r for r in recs if r.name == "rsa._domainkey.bundy.net")
    assert len(rsa_record.value) > 255
    strings = txt_strings(rsa_record.value)
    assert [len(s) for s in strings[:-1]] == [255] * (len(strings) - 1)
    assert "".join(strings) == rsa_record.value
    zone = parse(zone_text("mail.bundy.net", recs, []))
    rdata = zone.find_rdataset("rsa._domainkey.bundy.net.", "TXT")[0]
    assert len(rdata.strings) == 2 and all(len(s) <= 255 for s in rdata.strings)
    assert b"".join(rdata.strings).decode() == rsa_record.value


def test_every_record_parses_back_to_its_value(txt):
    recs = records(CONFIG, settings(), txt, ["203.0.113.25", "2001:db8::25"])
    zone = parse(zone_text("mail.bundy.net", recs, served_files(CONFIG, settings())))
    for r in recs:
        rdataset = zone.find_rdataset(r.name + ".", r.type)
        if r.type == "TXT":
            values = {b"".join(x.strings).decode() for x in rdataset}
        else:
            values = {x.to_text() for x in rdataset}
        assert r.value in values, r
        assert rdataset.ttl == 3600


def test_each_domain_gets_the_full_set(txt):
    recs = records(CONFIG, settings(ports={"submissions": 1465}), txt, ["203.0.113.25"])
    for domain in CONFIG.domains:
        mine = {(r.name, r.type): r for r in recs if r.section == domain}
        assert mine[(domain, "MX")].value == "10 mail.bundy.net."
        assert mine[(domain, "TXT")].value == "v=spf1 mx ~all"
        assert mine[(f"rsa._domainkey.{domain}", "TXT")].value == txt["rsa"]
        assert mine[(f"ed25519._domainkey.{domain}", "TXT")].value == txt["ed25519"]
        assert mine[(f"_dmarc.{domain}", "TXT")].value == \
            f"v=DMARC1; p=none; rua=mailto:postmaster@{domain}"
        assert mine[(f"_smtp._tls.{domain}", "TXT")].value == \
            f"v=TLSRPTv1; rua=mailto:postmaster@{domain}"
        assert mine[(f"_mta-sts.{domain}", "TXT")].value.startswith("v=STSv1; id=")
        assert mine[(f"_submissions._tcp.{domain}", "SRV")].value == "0 1 1465 mail.bundy.net."
        assert mine[(f"_submission._tcp.{domain}", "SRV")].value == "10 1 587 mail.bundy.net."
        assert mine[(f"_imaps._tcp.{domain}", "SRV")].value == "0 1 993 mail.bundy.net."
        assert mine[(f"_imap._tcp.{domain}", "SRV")].value == "10 1 143 mail.bundy.net."
        levels = {k: r.level for k, r in mine.items()}
        assert {k for k, v in levels.items() if v == "required"} == {
            (domain, "MX"), (domain, "TXT"), (f"rsa._domainkey.{domain}", "TXT"),
            (f"ed25519._domainkey.{domain}", "TXT"), (f"_dmarc.{domain}", "TXT")}
    host = {(r.name, r.type): r for r in recs if r.section == "mail.bundy.net"}
    assert host[("mail.bundy.net", "A")].value == "203.0.113.25"
    assert host[("mail.bundy.net", "TXT")].value == "v=spf1 a -all"
    ptr = [r for r in recs if r.type == "PTR"]
    assert [(r.name, r.value, r.level) for r in ptr] == [
        ("25.113.0.203.in-addr.arpa", "mail.bundy.net.", "required")]


def test_selectors_follow_the_settings(txt):
    recs = records(CONFIG, settings(dkim_selectors={"rsa": "a1", "ed25519": "a2"}),
                   {"a1": txt["rsa"], "a2": txt["ed25519"]}, [])
    names = {r.name for r in recs if "_domainkey" in r.name}
    assert "a1._domainkey.bundy.net" in names and "a2._domainkey.nomaam.org" in names


def test_unknown_address_and_missing_keys_are_placeholders_commented_out():
    recs = records(CONFIG, settings(), {}, [])
    holes = [r for r in recs if r.placeholder]
    assert {(r.type, r.name) for r in holes} >= {
        ("A", "mail.bundy.net"), ("PTR", "<reversed address>.in-addr.arpa"),
        ("TXT", "rsa._domainkey.bundy.net"), ("TXT", "ed25519._domainkey.darcy.net")}
    assert "mailorama_addresses" in next(r for r in holes if r.type == "A").purpose
    text = zone_text("mail.bundy.net", recs, [])
    assert ";; rsa._domainkey.bundy.net. 3600 IN TXT \"v=DKIM1; k=rsa; p=<the key in " \
           "/opt/mail-o-rama/keys/dkim/rsa.txt>\"" in text
    zone = parse(text)      # still a valid zone: the placeholders are comments
    assert zone.get_rdataset("rsa._domainkey.bundy.net.", "TXT") is None
    assert zone.get_rdataset("bundy.net.", "MX") is not None


def test_smarthost_spf(txt):
    by_name = records(CONFIG, settings(relay_host="smtp.provider.example:587"), txt, [])
    spf = next(r for r in by_name if r.name == "bundy.net" and r.type == "TXT")
    assert spf.value == "v=spf1 mx include:<SPF domain of smtp.provider.example> ~all"
    assert spf.placeholder and "operator documents" in spf.purpose
    assert not any(r.name == "mail.bundy.net" and r.type == "TXT" for r in by_name)
    by_ip = records(CONFIG, settings(relay_host="198.51.100.9:25"), txt, [])
    spf = next(r for r in by_ip if r.name == "bundy.net" and r.type == "TXT")
    assert spf.value == "v=spf1 mx ip4:198.51.100.9 ~all" and not spf.placeholder


def test_mta_sts_policy_lists_every_mx_and_its_id_follows_it():
    one = served_files(CONFIG, settings())
    both = served_files(CONFIG, settings(), {"bundy.net": ["mail.bundy.net", "mx2.bundy.net"]})
    assert one[0].url == "https://mta-sts.bundy.net/.well-known/mta-sts.txt"
    assert one[0].text == ("version: STSv1\r\nmode: testing\r\nmx: mail.bundy.net\r\n"
                           "max_age: 604800\r\n")
    assert "mx: mx2.bundy.net\r\n" in both[0].text
    assert mta_sts_id(one[0].text) != mta_sts_id(both[0].text)
    assert mta_sts_id(one[0].text).isalnum() and len(mta_sts_id(one[0].text)) <= 32
    text = zone_text("x", [], one)
    assert "; serve at https://mta-sts.bundy.net/.well-known/mta-sts.txt:" in text
    assert ";   mode: testing" in text


def test_two_hosts_with_different_keys_for_one_name_are_an_error(txt, keys):
    other = dkim_txt(_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    mx = {d: ["mail.bundy.net", "mx2.bundy.net"] for d in CONFIG.domains}
    a = records(CONFIG, settings(), txt, ["203.0.113.25"], mx)
    b = records(CONFIG, settings(hostname="mx2.bundy.net"), {**txt, "rsa": other},
                ["203.0.113.26"], mx)
    errors = conflicts({"a": a, "b": b})
    assert len(errors) == len(CONFIG.domains)
    assert errors[0].startswith("rsa._domainkey.bundy.net: hosts a and b hold different DKIM")
    assert "mailorama_dkim_selectors" in errors[0]
    # own selectors per host, or the same keys: no conflict (SPF, DMARC, MTA-STS agree)
    c = records(CONFIG, settings(hostname="mx2.bundy.net",
                                 dkim_selectors={"rsa": "b-rsa", "ed25519": "b-ed"}),
                {"b-rsa": other, "b-ed": txt["ed25519"]}, ["203.0.113.26"], mx)
    assert conflicts({"a": a, "c": c}) == []


def test_zone_line_escapes_quotes():
    from mailorama.dns import Record

    r = Record("x", "x.example", "TXT", 'say "hi" \\ bye', "recommended", "")
    assert zone_line(r) == 'x.example. 3600 IN TXT "say \\"hi\\" \\\\ bye"'
    rdata = parse(zone_line(r) + "\n").find_rdataset("x.example.", "TXT")[0]
    assert rdata.strings == (b'say "hi" \\ bye',)


def test_json_carries_strings_and_levels(txt):
    recs = records(CONFIG, settings(), txt, ["203.0.113.25"])
    out = json.loads(to_json([{"host": "h", "hostname": "mail.bundy.net", "records": recs,
                               "files": served_files(CONFIG, settings())}]))
    host = out["hosts"][0]
    rsa_record = next(r for r in host["records"] if r["name"] == "rsa._domainkey.bundy.net")
    assert "".join(rsa_record["strings"]) == txt["rsa"] and rsa_record["level"] == "required"
    assert {r["level"] for r in host["records"]} == {"required", "recommended"}
    assert host["files"][0]["url"].startswith("https://mta-sts.")
    assert dns.rdatatype.from_text(host["records"][0]["type"])
