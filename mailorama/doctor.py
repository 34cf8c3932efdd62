"""`mailorama doctor`: the live DNS, TLS, ports, relay and blocklists of a host, checked against
the records `mailorama dns` prints.

Pure evaluation (expected records + what was observed -> `Result`s) first, unit-tested; the thin
I/O that observes (dnspython queries, SMTP/IMAP probes) after it.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from .config import shown as escaped  # text from DNS or a server, safe for a terminal
from .dns import REQUIRED, RECOMMENDED, Record, zone_line

OK, MISSING, WRONG, UNKNOWN = "ok", "missing", "wrong", "unknown"
CERT_DAYS = 14
# (zone, lists IPv6 too). Spamhaus refuses queries through public resolvers: use your own.
BLOCKLISTS = (("zen.spamhaus.org", True), ("bl.spamcop.net", False),
              ("b.barracudacentral.org", False), ("psbl.surriel.com", False))
OUTSIDE = ("mailorama-doctor@example.com", "mailorama-doctor@example.net")  # RFC 2606 names
SPF_LOOKUPS = 10


@dataclass(frozen=True)
class Result:
    check: str
    status: str          # ok, missing, wrong, unknown (could not check)
    level: str
    detail: str = ""
    fix: str = ""        # the exact record to set, or what to do

    @property
    def failed(self) -> bool:
        return self.status in (MISSING, WRONG)


class Unresolved(Exception):
    """A DNS query failed for another reason than "no such record" (timeout, SERVFAIL)."""


# --- SPF (RFC 7208), enough to tell whether a record authorises an address -------------------

class _SpfError(Exception):
    pass


def spf_result(domain: str, ip: str, lookup, budget: list[int] | None = None) -> str:
    """pass, fail, softfail, neutral, none or permerror for `ip` sending as `domain`.
    `lookup(name, rdtype) -> [str]` ([] when there is no such record; raises Unresolved).
    Macros and ptr are not evaluated (a term with them never matches)."""
    budget = [SPF_LOOKUPS] if budget is None else budget
    try:
        found = [t for t in lookup(domain, "TXT") if re.match(r"v=spf1( |$)", t, re.I)]
        if not found:
            return "none"
        if len(found) > 1:
            return "permerror"
        return _spf_eval(found[0], domain, ipaddress.ip_address(ip), lookup, budget)
    except (_SpfError, ValueError):
        return "permerror"


def _spend(budget):
    budget[0] -= 1
    if budget[0] < 0:
        raise _SpfError("more than 10 DNS lookups")


def _spf_addresses(name, lookup, version):
    return [ipaddress.ip_address(a) for a in lookup(name, "A" if version == 4 else "AAAA")]


def _spf_eval(record, domain, ip, lookup, budget) -> str:
    results = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
    redirect = None
    for term in record.split()[1:]:
        if "=" in term and ":" not in term.split("=")[0]:
            key, _, value = term.partition("=")
            if key.lower() == "redirect":
                redirect = value
            continue
        qualifier = term[0] if term[0] in results else "+"
        term = term.lstrip("+-~?")
        mech, _, arg = term.partition(":")
        mech, arg, cidr = _spf_cidr(mech.lower(), arg, ip.version)
        target = arg or domain
        if "%" in target:
            continue
        match = False
        if mech == "all":
            match = True
        elif mech in ("ip4", "ip6"):
            match = ip.version == int(mech[2]) and ip in ipaddress.ip_network(arg, strict=False)
        elif mech == "a":
            _spend(budget)
            match = any(_within(ip, a, cidr) for a in _spf_addresses(target, lookup, ip.version))
        elif mech == "mx":
            _spend(budget)
            hosts = [m.split()[-1].rstrip(".") for m in lookup(target, "MX")][:10]
            match = any(_within(ip, a, cidr) for h in hosts
                        for a in _spf_addresses(h, lookup, ip.version))
        elif mech == "include":
            _spend(budget)
            inner = spf_result(target, str(ip), lookup, budget)
            if inner in ("none", "permerror"):
                raise _SpfError(f"include:{target} has no valid SPF record")
            match = inner == "pass"
        elif mech == "exists":
            _spend(budget)
            match = bool(lookup(target, "A"))
        elif mech == "ptr":
            _spend(budget)
        else:
            raise _SpfError(f"unknown mechanism {mech}")
        if match:
            return results[qualifier]
    if redirect and "%" not in redirect:
        _spend(budget)
        inner = spf_result(redirect, str(ip), lookup, budget)
        return "permerror" if inner == "none" else inner
    return "neutral"


def _spf_cidr(mech, arg, version):
    """(mechanism, domain, prefix length for `version`) of a/mx terms like a:x/24//64 or mx/24."""
    if mech.split("/")[0] not in ("a", "mx"):
        return mech, arg, None
    text = arg
    if "/" in mech:
        mech, _, rest = mech.partition("/")
        text = "/" + rest
    domain, _, cidrs = text.partition("/")
    v4, _, v6 = cidrs.partition("/")
    v6 = v6.lstrip("/") if v6 else ""
    length = (v4 if version == 4 else v6) or None
    return mech, domain, int(length) if length else None


def _within(ip, address, cidr) -> bool:
    if ip.version != address.version:
        return False
    if cidr is None:
        return ip == address
    return ip in ipaddress.ip_network(f"{address}/{cidr}", strict=False)


# --- records -----------------------------------------------------------------------------------

def _tags(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(";"):
        key, eq, value = part.partition("=")
        if eq:
            out[key.strip().lower()] = re.sub(r"\s+", "", value)
    return out


def _name(text: str) -> str:
    return text.rstrip(".").lower()


def _fix(r: Record) -> str:
    return ("fill in and set: " if r.placeholder else "set: ") + zone_line(r)


def check_record(r: Record, observed: list[str], lookup, addresses: list[str]) -> Result:
    """One expected record against the values observed at its name and type. `lookup` is for
    SPF's own queries; `addresses`: the host's addresses SPF must authorise."""
    label = _label(r)
    if not observed:
        if r.type == "PTR":
            return Result(label, MISSING, r.level, f"no PTR for {_pointer_address(r.name)}",
                          f"ask the provider of that address to set: {zone_line(r)}")
        return Result(label, MISSING, r.level, f"no {r.type} record at {r.name}", _fix(r))
    shown = "; ".join(observed)
    if r.type in ("MX", "PTR", "SRV"):
        want = r.value.split()
        for value in observed:
            got = value.split()
            if r.type == "PTR" and _name(got[0]) == _name(want[0]):
                return Result(label, OK, r.level, shown)
            if r.type == "MX" and _name(got[-1]) == _name(want[-1]):
                return Result(label, OK, r.level, shown)
            if r.type == "SRV" and got[2:3] == want[2:3] and _name(got[3]) == _name(want[3]):
                return Result(label, OK, r.level, shown)
        fix = (f"ask the provider of that address to set: {zone_line(r)}" if r.type == "PTR"
               else _fix(r))
        return Result(label, WRONG, r.level, f"{r.name} {r.type} is {shown}", fix)
    if r.type in ("A", "AAAA"):
        if r.placeholder:
            return Result(label, OK, r.level, f"{shown} (the host's own address is unknown: "
                          "not compared)")
        want = {ipaddress.ip_address(a) for a in r.value.split()}
        if want <= {ipaddress.ip_address(v) for v in observed}:
            extra = "" if len(observed) == len(want) else " (and other addresses)"
            return Result(label, OK if not extra else WRONG, r.level, shown + extra,
                          "" if not extra else f"remove the other addresses; {_fix(r)}")
        return Result(label, WRONG, r.level, f"{r.name} {r.type} is {shown}", _fix(r))
    return _check_txt(r, observed, lookup, addresses)


def _check_txt(r: Record, observed, lookup, addresses) -> Result:
    label = _label(r)
    kind = _kind(r.value)
    # DKIM's v= is optional: every TXT at a _domainkey name is a key record
    mine = [v for v in observed if kind == "v=dkim1" or _kind(v) == kind]
    if not mine:
        return Result(label, MISSING, r.level, f"no {kind} TXT record at {r.name} (found: "
                      f"{'; '.join(observed)})", _fix(r))
    if len(mine) > 1:
        return Result(label, WRONG, r.level, f"{len(mine)} {kind} records at {r.name}: "
                      "receivers take that as an error; keep one", _fix(r))
    value = mine[0]
    if kind == "v=spf1":
        return _check_spf(r, value, lookup, addresses)
    tags, want = _tags(value), _tags(r.value)
    if kind == "v=dkim1":
        if r.placeholder:
            return Result(label, OK, r.level, f"{value[:60]}... (the host holds no key yet: "
                          "not compared)")
        if tags.get("p") != want.get("p") or tags.get("k", "rsa") != want.get("k", "rsa"):
            return Result(label, WRONG, r.level, "another key than the host signs with (stale?)",
                          _fix(r))
        return Result(label, OK, r.level, "the host's key")
    if kind == "v=dmarc1" and tags.get("p") not in ("none", "quarantine", "reject"):
        return Result(label, WRONG, r.level, f"{value}: no valid p= policy", _fix(r))
    if kind == "v=dmarc1" and tags.get("p") == "none":
        return Result(label, OK, r.level, f"{value} (reports only: tighten p= once the reports "
                      "are clean)")
    if kind == "v=tlsrptv1" and "rua" not in tags:
        return Result(label, WRONG, r.level, f"{value}: no rua=", _fix(r))
    if kind == "v=stsv1" and not re.fullmatch(r"[A-Za-z0-9]{1,32}", tags.get("id", "")):
        return Result(label, WRONG, r.level, f"{value}: no valid id=", _fix(r))
    return Result(label, OK, r.level, value)


def _check_spf(r: Record, value: str, lookup, addresses) -> Result:
    label = _label(r)
    try:
        if spf_result(r.name, "192.0.2.1", lookup) == "pass":
            return Result(label, WRONG, r.level, f"{value} lets every host on the internet send "
                          f"as {r.name}", _fix(r))
        if r.placeholder:       # a smarthost: the relay's include cannot be checked here
            extra = [t for t in value.split()[1:] if t.lstrip("+").split(":")[0].split("=")[0]
                     in ("include", "ip4", "ip6", "a", "exists", "redirect")]
            if not extra:
                return Result(label, WRONG, r.level, f"{value} does not name the smarthost",
                              _fix(r))
            return Result(label, OK, r.level, f"{value} (the smarthost's part not checked)")
        for address in addresses:
            result = spf_result(r.name, address, lookup)
            if result != "pass":
                return Result(label, WRONG, r.level, f"{value} gives {result} for the host's "
                              f"address {address}", _fix(r))
    except Unresolved as e:
        return Result(label, UNKNOWN, r.level, f"{value}: {e}")
    return Result(label, OK, r.level, value)


def _kind(text: str) -> str:
    """The version tag a TXT value starts with (v=spf1, v=DKIM1...), lower-cased."""
    words = text.split(";")[0].split()
    return words[0].lower() if words else ""


def _pointer_address(name: str) -> str:
    labels = name.split(".")
    if name.endswith(".in-addr.arpa"):
        return ".".join(reversed(labels[:4]))
    if name.endswith(".ip6.arpa"):
        digits = "".join(reversed(labels[:32]))
        return str(ipaddress.ip_address(int(digits, 16).to_bytes(16, "big")))
    return name


def _label(r: Record) -> str:
    if r.type == "PTR":
        return f"PTR {_pointer_address(r.name)}"
    if r.type == "TXT":
        kind = _kind(r.value)
        name = {"v=spf1": "SPF", "v=dkim1": "DKIM", "v=dmarc1": "DMARC", "v=tlsrptv1": "TLS-RPT",
                "v=stsv1": "MTA-STS"}.get(kind, "TXT")
        return f"{name} {r.name}"
    return f"{r.type} {r.name}"


# --- certificate, ports, relay, blocklists --------------------------------------------------

def check_certificate(der: bytes, hostname: str, now: datetime.datetime, ports: list[int],
                      days: int = CERT_DAYS) -> list[Result]:
    """The certificate served on `ports`: names `hostname`, valid now and `days` from now."""
    from cryptography import x509

    label = f"certificate (port {', '.join(map(str, ports))})"
    fix = "set mailorama_tls_cert/_key to a certificate for the host name (e.g. Let's Encrypt)"
    cert = x509.load_der_x509_certificate(der)
    try:
        names = cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = [a.value for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    out = []
    if not any(_name_matches(n, hostname) for n in names):
        out.append(Result(f"{label}: name", WRONG, REQUIRED, f"for {', '.join(names)}, not "
                          f"{hostname}", fix))
    else:
        out.append(Result(f"{label}: name", OK, REQUIRED, f"for {', '.join(names)}"))
    end, start = cert.not_valid_after_utc, cert.not_valid_before_utc
    left = end - now
    if start > now or left.total_seconds() <= 0:
        out.append(Result(f"{label}: dates", WRONG, REQUIRED, f"valid {start:%Y-%m-%d} to "
                          f"{end:%Y-%m-%d}: not valid now", "renew it (certbot renew); " + fix))
    elif left < datetime.timedelta(days=days):
        out.append(Result(f"{label}: dates", WRONG, REQUIRED, f"expires {end:%Y-%m-%d %H:%M} "
                          f"UTC, in {round(left.total_seconds() / 86400)} days (less than {days})",
                          "renew it now (certbot renew), or " + fix))
    else:
        out.append(Result(f"{label}: dates", OK, REQUIRED, f"valid until {end:%Y-%m-%d} "
                          f"({left.days} days)"))
    return out


def _name_matches(pattern: str, hostname: str) -> bool:
    pattern, hostname = pattern.lower().rstrip("."), hostname.lower().rstrip(".")
    if pattern.startswith("*."):
        return "." in hostname and hostname.split(".", 1)[1] == pattern[2:]
    return pattern == hostname


def check_relay(replies: list[tuple[str, str, int, str]]) -> Result:
    """replies: (sender, recipient, RCPT code, reply text) of the relay probes on port 25."""
    for sender, recipient, code, text in replies:
        if 200 <= code < 400:
            return Result("not an open relay", WRONG, REQUIRED,
                          f"MAIL FROM:<{sender}> RCPT TO:<{recipient}> was accepted ({code} "
                          f"{text})", "refuse mail for other domains unless logged in")
    probes = ", ".join(f"{s} -> {r}: {c}" for s, r, c, _ in replies)
    return Result("not an open relay", OK, REQUIRED, f"refused ({probes})")


def dnsbl_name(address: str, zone: str) -> str:
    """The DNSBL query name for `address` in `zone` (reversed octets or nibbles)."""
    pointer = ipaddress.ip_address(address).reverse_pointer
    return pointer.rsplit(".", 2)[0] + "." + zone


def check_blocklist(address: str, zone: str, answers: list[str]) -> Result:
    """A-record answers of one blocklist for one address (no answer: not listed)."""
    label = f"blocklist {zone} ({address})"
    if not answers:
        return Result(label, OK, REQUIRED, "not listed")
    if any(a.startswith("127.255.255.") for a in answers) or \
            not all(a.startswith("127.") for a in answers):
        return Result(label, UNKNOWN, RECOMMENDED, f"answer {', '.join(answers)}: the list "
                      "refused the query (public or unregistered resolver?); ask it through "
                      "your own resolver (--resolver)")
    return Result(label, WRONG, REQUIRED, f"listed ({', '.join(answers)})",
                  f"see the list's lookup page for {address}, fix the cause, ask for removal")


def exit_code(results: list[Result]) -> int:
    """1 when a required check failed; 2 when none failed but a required one could not be
    checked (nothing verified is no pass); else 0."""
    if any(r.failed and r.level == REQUIRED for r in results):
        return 1
    return 2 if any(r.status == UNKNOWN and r.level == REQUIRED for r in results) else 0


def text_report(title: str, results: list[Result]) -> str:
    lines = [title]
    for r in results:
        status = r.status if r.status == OK else r.status.upper()
        lines.append(f"  {status:8} {r.level:12} {r.check}: {escaped(r.detail)}")
        if r.fix and r.status != OK:
            lines.append(f"  {'':8} {'':12} -> {escaped(r.fix)}")
    failed = [r for r in results if r.failed]
    required = sum(r.level == REQUIRED for r in failed)
    lines.append(f"  {required} required and {len(failed) - required} recommended check(s) "
                 f"failed, {sum(r.status == UNKNOWN for r in results)} could not be checked")
    return "\n".join(lines)


def as_dicts(results: list[Result]) -> list[dict]:
    return [asdict(r) for r in results]


# --- the thin I/O -------------------------------------------------------------------------------

def resolver(spec: str | None, timeout: float = 5.0):
    """A dnspython resolver: the system's, or `IP[:PORT]` (IPv6: [IP]:PORT)."""
    import dns.resolver

    if not spec:
        r = dns.resolver.Resolver()
    else:
        r = dns.resolver.Resolver(configure=False)
        host, port = spec, 53
        match = re.fullmatch(r"\[(.+)\](?::(\d+))?", spec) or re.fullmatch(r"([^:]+)(?::(\d+))?",
                                                                          spec)
        if match:
            host, port = match[1], int(match[2] or 53)
        try:
            r.nameservers, r.port = [str(ipaddress.ip_address(host))], port
        except ValueError:
            raise ValueError(f"--resolver {spec}: expected IP[:PORT] like 127.0.0.1:5353 or "
                             "[::1]:5353") from None
    r.lifetime = timeout
    return r


def make_lookup(res):
    """lookup(name, rdtype) -> [str] over `res`: TXT strings joined, names as written."""
    import dns.exception
    import dns.resolver

    cache: dict = {}

    def lookup(name: str, rdtype: str) -> list[str]:
        key = (name.lower().rstrip("."), rdtype)
        if key not in cache:
            try:
                answer = res.resolve(key[0] + ".", rdtype, search=False)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                cache[key] = []
            except dns.exception.DNSException as e:
                raise Unresolved(f"{name} {rdtype}: {e.__class__.__name__}: {e}") from None
            else:
                cache[key] = [b"".join(r.strings).decode(errors="replace") if rdtype == "TXT"
                              else r.to_text() for r in answer]
        return cache[key]
    return lookup


def check_dns(expected: list[Record], lookup, addresses: list[str]) -> list[Result]:
    """Query every expected record (in parallel) and check it."""
    wanted = [r for r in expected if not r.name.startswith("<")]

    def one(r: Record) -> Result:
        try:
            return check_record(r, lookup(r.name, r.type), lookup, addresses)
        except Unresolved as e:
            return Result(_label(r), UNKNOWN, r.level, str(e))
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, wanted))


class _Line:
    """A line-based client for SMTP and IMAP greetings, over plain or TLS sockets."""

    def __init__(self, sock):
        self.sock, self.file = sock, sock.makefile("rb")

    def smtp(self) -> tuple[int, list[str]]:
        """One reply: at most 100 lines (a server that never ends one is broken)."""
        lines = []
        while True:
            line = self.file.readline(4096).decode(errors="replace").rstrip("\r\n")
            if not line:
                raise ConnectionError("connection closed")
            if len(lines) >= 100:
                raise ConnectionError("a reply of more than 100 lines")
            lines.append(line[4:])
            if line[3:4] != "-":
                return int(line[:3]), lines

    def send(self, text: str):
        self.sock.sendall(text.encode() + b"\r\n")

    def command(self, text: str) -> tuple[int, list[str]]:
        self.send(text)
        return self.smtp()


def _tls(ca: str | None, verify: bool) -> ssl.SSLContext:
    """Verifying (system CAs, or `ca`), or not: the certificate is then checked on its own."""
    context = ssl.create_default_context(cafile=ca)
    if not verify:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


def probe(address: str, port: int, kind: str, hostname: str, ca: str | None = None,
          verify: bool = False, timeout: float = 10) -> dict:
    """Connect to one service; returns {"greeting", "starttls", "auth_before_tls", "cert"}
    (cert: the DER certificate) or {"error"}."""
    out: dict = {}
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except OSError as e:
        return {"error": f"no answer on {address} port {port}: {e}"}
    try:
        if kind in ("submissions", "imaps"):
            sock = _tls(ca, verify).wrap_socket(sock, server_hostname=hostname)
            out["cert"] = sock.getpeercert(binary_form=True)
        conn = _Line(sock)
        if kind == "imaps":
            line = conn.file.readline(4096).decode(errors="replace").strip()
            out["greeting"] = line
            if not line.startswith("* OK"):
                out["error"] = f"unexpected greeting: {line}"
            conn.send("a LOGOUT")
            return out
        code, lines = conn.smtp()
        out["greeting"] = f"{code} {lines[0]}"
        code, ehlo = conn.command("EHLO mailorama-doctor.invalid")
        words = {line.split()[0].upper() for line in ehlo if line.split()}
        out["starttls"] = "STARTTLS" in words
        out["auth_before_tls"] = "AUTH" in words and kind != "submissions"
        if out["starttls"] and kind in ("smtp", "submission"):
            if conn.command("STARTTLS")[0] == 220:
                sock = _tls(ca, verify).wrap_socket(sock, server_hostname=hostname)
                out["cert"] = sock.getpeercert(binary_form=True)
                conn = _Line(sock)
        conn.send("QUIT")
    except (OSError, ValueError, ssl.SSLError) as e:
        out["error"] = f"{address} port {port}: {e}"
    finally:
        sock.close()
    return out


def relay_probe(address: str, port: int, hosted: str, timeout: float = 10) -> list:
    """Ask port 25 to relay from outside to outside, and from a hosted domain to outside."""
    replies = []
    with socket.create_connection((address, port), timeout=timeout) as sock:
        conn = _Line(sock)
        conn.smtp()
        conn.command("EHLO mailorama-doctor.invalid")
        for sender in (OUTSIDE[0], f"postmaster@{hosted}"):
            code, text = conn.command(f"MAIL FROM:<{sender}>")
            if code == 250:
                code, text = conn.command(f"RCPT TO:<{OUTSIDE[1]}>")
            replies.append((sender, OUTSIDE[1], code, " ".join(text)))
            conn.command("RSET")
        conn.send("QUIT")
    return replies


def check_services(address: str, hostname: str, ports: dict[str, int], hosted: str,
                   ca: str | None, now: datetime.datetime) -> list[Result]:
    """Ports 25, 587, 465, 993: answer, STARTTLS where due, no AUTH before TLS; the
    certificates; the relay probe; the certificate's trust (recommended)."""
    results, certs = [], {}
    for kind in ("smtp", "submission", "submissions", "imaps"):
        port = ports[kind]
        seen = probe(address, port, kind, hostname)
        label = f"port {port} ({kind})"
        if "error" in seen:
            results.append(Result(label, WRONG, REQUIRED, seen["error"], "start the container, "
                                  f"open port {port} in the firewall"))
            continue
        if kind in ("smtp", "submission") and not seen.get("starttls"):
            results.append(Result(label, WRONG, REQUIRED, f"{seen['greeting']}; no STARTTLS",
                                  "offer STARTTLS (a TLS certificate for the host)"))
        elif seen.get("auth_before_tls"):
            results.append(Result(label, WRONG, REQUIRED, "offers AUTH before TLS (cleartext "
                                  "passwords)", "offer AUTH only after STARTTLS"))
        else:
            results.append(Result(label, OK, REQUIRED, seen["greeting"]
                                  + ("; STARTTLS" if seen.get("starttls") else "")))
        if seen.get("cert"):
            certs.setdefault(seen["cert"], []).append(port)
    for der, on in certs.items():
        results += check_certificate(der, hostname, now, on)
    if certs:
        port = ports["submissions"]
        trusted = probe(address, port, "submissions", hostname, ca=ca, verify=True)
        results.append(Result("certificate trusted", OK if "error" not in trusted else WRONG,
                              RECOMMENDED, trusted.get("error", f"verified for {hostname}"),
                              "" if "error" not in trusted else "mail clients warn about it: "
                              "set mailorama_tls_cert/_key to a CA-signed certificate"))
    try:
        results.append(check_relay(relay_probe(address, ports["smtp"], hosted)))
    except (OSError, ValueError) as e:
        results.append(Result("not an open relay", UNKNOWN, REQUIRED, f"probe failed: {e}"))
    return results


def check_blocklists(addresses: list[str], lookup) -> list[Result]:
    out = []
    for address in addresses:
        v6 = ipaddress.ip_address(address).version == 6
        for zone, lists_v6 in BLOCKLISTS:
            if v6 and not lists_v6:
                continue
            try:
                out.append(check_blocklist(address, zone, lookup(dnsbl_name(address, zone), "A")))
            except Unresolved as e:
                out.append(Result(f"blocklist {zone} ({address})", UNKNOWN, RECOMMENDED, str(e)))
    return out
