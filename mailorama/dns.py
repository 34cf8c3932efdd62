"""Every DNS record a Mail-o-Rama host and its hosted domains need, and how to print them.

Pure: `records` takes the validated config and settings, the DKIM TXT values the host holds
(selector -> "v=DKIM1; k=...; p=...") and the host's public addresses, and returns plain
`Record`s; `zone_text` and `to_json` render them. `mailorama dns` prints them, `mailorama
doctor` checks the live DNS against them.

Choices, as a mail admin would make them:
- SPF `v=spf1 mx ~all`: `mx` authorises exactly the hosts that take the domain's mail (this one,
  and every other Mail-o-Rama host serving the domain) with no address to keep in sync. `~all`,
  not `-all`: every message carries two DKIM signatures, so DMARC passes on DKIM alone, and a
  receiver that rejects on an SPF hard fail before it looks at DKIM (RFC 7489 10.1) would drop
  mail forwarded without SRS that DMARC would accept. With a smarthost the mail leaves from the
  relay's addresses: its own SPF include must be added (the relay's operator documents it).
- DMARC `p=none` with aggregate reports to postmaster@ the domain: receivers report what passes
  and fails without any mail being refused; after a few weeks of clean reports, move to
  `p=quarantine`, then `p=reject`. Gmail and Yahoo want a DMARC record from every sender.
- MTA-STS `mode: testing` and TLS-RPT: senders report TLS failures but still deliver; switch to
  `enforce` only with a certificate public CAs sign (mailorama_tls_cert).
- SRV (RFC 6186, RFC 8314): implicit TLS ports first (priority 0), STARTTLS ports after (10).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
from dataclasses import asdict, dataclass

from .config import MailConfig
from .settings import Settings

TTL = 3600
REQUIRED, RECOMMENDED = "required", "recommended"
MTA_STS_MAX_AGE = 604800      # one week (RFC 8461 suggests weeks)


@dataclass(frozen=True)
class Record:
    """One DNS record. `value` is the presentation form (TXT: the text itself, unquoted);
    `placeholder` marks a value with a part the user must fill in first."""

    section: str              # the zone it belongs to (a domain, the host name, reverse DNS)
    name: str                 # absolute, lower-case, no trailing dot
    type: str
    value: str
    level: str
    purpose: str
    ttl: int = TTL
    placeholder: bool = False


@dataclass(frozen=True)
class ServedFile:
    """A file a web server must serve (the MTA-STS policy): Mail-o-Rama runs no web server."""

    url: str
    text: str
    level: str
    purpose: str


def dkim_txt(private_key_pem: bytes) -> str:
    """The DKIM TXT value for a private key: RSA: base64 DER SubjectPublicKeyInfo;
    Ed25519: the raw 32-byte public key (RFC 8463)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    key = serialization.load_pem_private_key(private_key_pem, password=None)
    if isinstance(key, rsa.RSAPrivateKey):
        kind, public = "rsa", key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        kind, public = "ed25519", key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        raise ValueError("a DKIM key must be RSA or Ed25519")
    return f"v=DKIM1; k={kind}; p={base64.b64encode(public).decode()}"


def txt_strings(text: str) -> list[str]:
    """`text` cut into character-strings of at most 255 bytes (RFC 1035 3.3.14)."""
    data = text.encode()
    return [data[i:i + 255].decode() for i in range(0, len(data), 255)] or [""]


def relay_spf(relay_host: str) -> tuple[str, bool]:
    """The SPF term for a smarthost `host:port` and whether the user must fill it in."""
    host = relay_host.rpartition(":")[0].strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"include:<SPF domain of {host}>", True
    return f"ip{address.version}:{address}", False


def mta_sts_policy(mx_hosts: list[str]) -> str:
    lines = ["version: STSv1", "mode: testing", *(f"mx: {h}" for h in sorted(mx_hosts)),
             f"max_age: {MTA_STS_MAX_AGE}"]
    return "\r\n".join(lines) + "\r\n"


def mta_sts_id(policy: str) -> str:
    """A policy id (RFC 8461: 1-32 letters and digits) that changes whenever the policy does."""
    return hashlib.sha256(policy.encode()).hexdigest()[:20]


def _srv(settings: Settings, domain: str) -> list[Record]:
    host, port = settings.hostname, settings.port
    services = (("submissions", 0, "mail submission, implicit TLS (RFC 8314)"),
                ("submission", 10, "mail submission, STARTTLS (RFC 6186)"),
                ("imaps", 0, "IMAP, implicit TLS (RFC 8314)"),
                ("imap", 10, "IMAP, STARTTLS (RFC 6186)"))
    return [Record(domain, f"_{name}._tcp.{domain}", "SRV", f"{prio} 1 {port[name]} {host}.",
                   RECOMMENDED, f"mail clients find the server for {domain}: {what}")
            for name, prio, what in services]


def records(config: MailConfig, settings: Settings, dkim: dict[str, str],
            addresses: list[str] | tuple[str, ...],
            mx_hosts: dict[str, list[str]] | None = None) -> list[Record]:
    """Every record the host and its domains need. `dkim`: selector -> TXT value as the host
    holds it (missing ones become placeholders); `addresses`: the host's public addresses (none:
    placeholders); `mx_hosts`: domain -> every host name serving it (default: this host)."""
    host = settings.hostname
    addresses = sorted((ipaddress.ip_address(a) for a in addresses),
                       key=lambda a: (a.version, int(a)))
    out = _host_records(settings, addresses)
    for domain in config.domains:
        mx = (mx_hosts or {}).get(domain) or [host]
        out.append(Record(domain, domain, "MX", f"10 {host}.", REQUIRED,
                          f"mail for {domain} goes to {host}"))
        if settings.relay_host:
            term, fill = relay_spf(settings.relay_host)
            out.append(Record(domain, domain, "TXT", f"v=spf1 mx {term} ~all", REQUIRED,
                              f"SPF: mail from {domain} leaves through the smarthost "
                              f"{settings.relay_host}: authorise it"
                              + (" (its operator documents the include to use)" if fill else ""),
                              placeholder=fill))
        else:
            out.append(Record(domain, domain, "TXT", "v=spf1 mx ~all", REQUIRED,
                              f"SPF: the hosts that take mail for {domain} may send it; "
                              "others soft-fail (DKIM carries DMARC)"))
        for algorithm, selector in sorted(settings.dkim_selectors, reverse=True):
            name = f"{selector}._domainkey.{domain}"
            value = dkim.get(selector)
            purpose = (f"DKIM {algorithm} key (selector {selector}); "
                       + ("both signatures must verify" if algorithm == "rsa" else
                          "RFC 8463, next to RSA for receivers that know Ed25519"))
            if value:
                out.append(Record(domain, name, "TXT", value, REQUIRED, purpose))
            else:
                out.append(Record(domain, name, "TXT", f"v=DKIM1; k={algorithm}; p=<the key in "
                                  f"{settings.root}/keys/dkim/{selector}.txt>", REQUIRED,
                                  purpose + "; the deploy makes the key: deploy first",
                                  placeholder=True))
        out.append(Record(domain, f"_dmarc.{domain}", "TXT",
                          f"v=DMARC1; p=none; rua=mailto:postmaster@{domain}", REQUIRED,
                          "DMARC: start with reports only (p=none); after weeks of clean "
                          "reports to postmaster@ move to p=quarantine, then p=reject"))
        out.append(Record(domain, f"_smtp._tls.{domain}", "TXT",
                          f"v=TLSRPTv1; rua=mailto:postmaster@{domain}", RECOMMENDED,
                          "TLS-RPT: senders report TLS failures delivering to you"))
        policy = mta_sts_policy(mx)
        out.append(Record(domain, f"_mta-sts.{domain}", "TXT",
                          f"v=STSv1; id={mta_sts_id(policy)}", RECOMMENDED,
                          f"MTA-STS: only with the policy served at {_policy_url(domain)} "
                          "(see below); the id changes with the policy"))
        out += _srv(settings, domain)
    return out + _reverse_records(settings, addresses)


def _host_records(settings: Settings, addresses: list) -> list[Record]:
    host = settings.hostname
    out = []
    for address in addresses:
        kind = "A" if address.version == 4 else "AAAA"
        out.append(Record(host, host, kind, str(address), REQUIRED,
                          f"the host name's IPv{address.version} address: MX targets must have "
                          "one, and reverse DNS must point back to the same name"))
    if not addresses:
        out.append(Record(host, host, "A", "<the host's public IPv4 address>", REQUIRED,
                          "the host's public address is unknown (none on its interfaces: NAT?): "
                          "set mailorama_addresses, or --data mailorama_addresses=IP; add an "
                          "AAAA record too if it has IPv6", placeholder=True))
    if not settings.relay_host:
        out.append(Record(host, host, "TXT", "v=spf1 a -all", RECOMMENDED,
                          "SPF for the HELO name: bounces (empty sender) are checked against it"))
    return out


def _reverse_records(settings: Settings, addresses: list) -> list[Record]:
    host = settings.hostname
    out = []
    reverse = "reverse DNS: ask the provider of each address (not in your own zone)"
    for address in addresses:
        out.append(Record(reverse, address.reverse_pointer, "PTR", f"{host}.", REQUIRED,
                          f"reverse DNS of {address} names {host} (forward-confirmed): big "
                          "providers refuse mail from addresses without it"))
    if not addresses:
        out.append(Record(reverse, "<reversed address>.in-addr.arpa", "PTR", f"{host}.",
                          REQUIRED, "reverse DNS of the host's address names the host",
                          placeholder=True))
    return out


def _policy_url(domain: str) -> str:
    return f"https://mta-sts.{domain}/.well-known/mta-sts.txt"


def served_files(config: MailConfig, settings: Settings,
                 mx_hosts: dict[str, list[str]] | None = None) -> list[ServedFile]:
    """The MTA-STS policy of each domain and where it must be served."""
    return [ServedFile(_policy_url(d), mta_sts_policy((mx_hosts or {}).get(d)
                                                       or [settings.hostname]),
                       RECOMMENDED, f"MTA-STS policy: an HTTPS server for mta-sts.{d} with a "
                       "valid certificate serves it as text/plain (Mail-o-Rama runs none); "
                       "without it, leave the _mta-sts record out")
            for d in config.domains]


def conflicts(by_host: dict[str, list[Record]]) -> list[str]:
    """Records two hosts would publish under one name with different values (a DNS name holds
    one DKIM key, one SPF, one DMARC record): what is wrong and what to do."""
    seen: dict[tuple[str, str], dict[str, list[str]]] = {}
    for host, recs in sorted(by_host.items()):
        for r in recs:
            if r.type == "TXT" and not r.placeholder:
                seen.setdefault((r.name, r.type), {}).setdefault(r.value, []).append(host)
    out = []
    for (name, kind), values in sorted(seen.items()):
        if len(values) < 2:
            continue
        hosts = " and ".join(", ".join(h) for h in values.values())
        if "._domainkey." in name:
            out.append(f"{name}: hosts {hosts} hold different DKIM keys for it; give each host "
                       "its own selectors (host data mailorama_dkim_selectors = {'rsa': "
                       "'<host>-rsa', 'ed25519': '<host>-ed25519'}) and deploy, or copy one "
                       "host's keys/dkim/ to the others")
        else:
            out.append(f"{name} {kind}: hosts {hosts} want different values; give them the "
                       "same settings for it (e.g. mailorama_relay_host)")
    return out


def zone_line(r: Record) -> str:
    """The record as one zone-file line (RFC 1035), TXT cut into 255-byte strings."""
    value = r.value
    if r.type == "TXT":
        value = " ".join('"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
                         for s in txt_strings(r.value))
    return f"{r.name}. {r.ttl} IN {r.type} {value}"


def zone_text(host: str, recs: list[Record], files: list[ServedFile]) -> str:
    """A zone-file text: sections per zone, each record after a comment with its level and
    purpose; placeholder records commented out (';;') until filled in."""
    lines = [f"; Mail-o-Rama DNS records for {host} (`mailorama dns`)",
             "; required: without it mail is refused, lost or fails authentication",
             "; recommended: better delivery, TLS security and mail client set-up",
             "; ';;' lines hold a <value> to fill in before they go into a zone"]
    section = None
    for r in recs:
        if r.section != section:
            section = r.section
            lines += ["", f"; ==== {section}"]
        lines.append(f"; {r.level}: {r.purpose}")
        lines.append((";; " if r.placeholder else "") + zone_line(r))
    for f in files:
        lines += ["", f"; {f.level}: {f.purpose}", f"; serve at {f.url}:"]
        lines += [f";   {line}" for line in f.text.splitlines()]
    return "\n".join(lines) + "\n"


def to_json(hosts: list[dict]) -> str:
    """hosts: [{"host", "hostname", "records", "files", "errors"}] as JSON; TXT records carry
    their 255-byte `strings` too."""
    out = []
    for h in hosts:
        recs = []
        for r in h["records"]:
            item = asdict(r)
            if r.type == "TXT":
                item["strings"] = txt_strings(r.value)
            recs.append(item)
        out.append({**h, "records": recs, "files": [asdict(f) for f in h["files"]]})
    return json.dumps({"hosts": out}, indent=2)
