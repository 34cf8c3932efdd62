"""The `dns` and `doctor` commands: read the deploy folder's hosts the way
`pyinfra inventory.py deploy.py` does (inventory, group_data, host data), fetch each host's DKIM
TXT values and public addresses over pyinfra's connection, and hand them to `mailorama.dns` and
`mailorama.doctor`.

The DKIM public values are read from `<mailorama_root>/keys/dkim/<selector>.txt` on the host
(the private keys never leave it). The host's public addresses are `mailorama_addresses` from its
host data, else the global addresses on its interfaces, else unknown (placeholders).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path



@dataclass
class MailHost:
    name: str                  # the inventory's name for it
    settings: object           # mailorama.settings.Settings
    config: object             # mailorama.config.MailConfig
    dkim: dict[str, str]       # selector -> TXT value
    addresses: list[str]       # public addresses, maybe none


class HostError(Exception):
    pass


def _dns_fact():
    from pyinfra.api import FactBase

    class MailoramaDns(FactBase):
        """DKIM TXT values (<root>/keys/dkim/*.txt) and global interface addresses."""

        def command(self, root):
            keys = shlex.quote(root + "/keys/dkim")
            return "\n".join([
                f"LC_ALL=C ls -d {keys}/. 2>&1 >/dev/null | grep -q 'Permission denied' "
                "&& echo '## unreadable'",
                "echo '## dkim'",
                f"for f in {keys}/*.txt; do [ -f \"$f\" ] && "
                "printf '%s %s\\n' \"$(basename \"$f\" .txt)\" \"$(cat \"$f\")\"; done",
                "echo '## addresses'",
                "ip -o addr show scope global 2>/dev/null | awk '{print $4}' || hostname -I",
                "true",
            ])

        def process(self, output):
            out, section = {"dkim": {}, "addresses": [], "unreadable": False}, None
            for line in output:
                if line == "## unreadable":
                    out["unreadable"] = True
                elif line in ("## dkim", "## addresses"):
                    section = line[3:]
                elif section == "dkim" and " " in line:
                    selector, _, value = line.partition(" ")
                    out["dkim"][selector] = value.strip()
                elif section == "addresses":
                    for word in line.split():
                        try:
                            address = ipaddress.ip_address(word.split("/")[0])
                        except ValueError:
                            continue
                        if address.is_global:
                            out["addresses"].append(str(address))
            return out
    return MailoramaDns


def load_hosts(folder: Path, inventory: str = "inventory.py", limit: list[str] | None = None,
               data: dict | None = None, sudo: bool = False) -> tuple[list[MailHost], list[str]]:
    """Every host of the deploy folder's inventory (or those in `limit`), connected to; and the
    errors (a host that cannot be reached or has a bad setting) as lines."""
    from pyinfra.api import Config, State
    from pyinfra.api.connect import connect_all, disconnect_all
    from pyinfra.api.exceptions import PyinfraError
    from pyinfra.context import ctx_config, ctx_host, ctx_inventory, ctx_state

    folder = folder.resolve()
    if not (folder / inventory).exists():
        raise HostError(f"{folder / inventory}: no such inventory; run from the deploy folder "
                        "(the one with inventory.py and deploy.py) or give -C DIR")
    if str(folder) not in sys.path:
        sys.path.append(str(folder))
    config = Config(SUDO=sudo)
    state = State(check_for_changes=False)
    state.cwd = str(folder)
    hosts, errors, configs = [], [], {}
    with ctx_state.use(state), ctx_config.use(config):
        inv = _inventory(folder / inventory, data or {})
        with ctx_inventory.use(inv):
            chosen = [h for h in inv if not limit or h.name in limit]
            if limit and len(chosen) < len(set(limit)):
                raise HostError(f"--limit {', '.join(limit)}: not in {inventory} (it has "
                                f"{', '.join(h.name for h in inv)})")
            state.init(inv, config, initial_limit=chosen)
            try:
                connect_all(state)
            except PyinfraError:
                pass                      # every host failed: each is reported below
            try:
                for host in chosen:
                    if not host.connected:
                        errors.append(f"{host.name}: cannot connect (see pyinfra's message)")
                        continue
                    with ctx_host.use(host):
                        try:
                            hosts.append(_mail_host(host, folder, configs))
                        except HostError as e:
                            errors.append(str(e))
            finally:
                disconnect_all(state)
    return hosts, errors


def _inventory(path: Path, data: dict):
    """pyinfra's inventory from `path` (and the group_data beside it); HostError naming the
    file and line where their Python fails, as a sentence, not a traceback."""
    import traceback

    from click import ClickException
    from pyinfra_cli.exceptions import UnexpectedExternalError
    from pyinfra_cli.inventory import make_inventory

    try:
        return make_inventory(str(path), override_data=data, cwd=str(path.parent))
    except SyntaxError as e:
        raise HostError(f"{e.filename}:{e.lineno}: {e.msg}; fix the Python there") from None
    except UnexpectedExternalError as e:
        lines = [f.lineno for f in traceback.extract_tb(e.exception.__traceback__)
                 if f.filename == e.filename]
        where = f"{e.filename}:{lines[-1]}" if lines else e.filename
        raise HostError(f"{where}: {type(e.exception).__name__}: {e.exception}; fix the "
                        "Python there") from None
    except ClickException as e:
        raise HostError(e.format_message()) from None


def _mail_host(host, folder: Path, configs: dict) -> MailHost:
    """One connected host's settings, mail config (each folder parsed once), DKIM values and
    addresses; HostError naming what is wrong."""
    from . import config as cfg
    from .facts import Fqdn
    from .settings import SettingsError, settings_from

    host_data = host.data.dict()
    fqdn = None if host_data.get("mailorama_hostname") else host.get_fact(Fqdn)
    try:
        settings = settings_from(host_data, fqdn=fqdn)
    except SettingsError as e:
        raise HostError(f"settings of {host.name}:\n" + "\n".join(e.errors)) from None
    path = Path(settings.config_dir)
    path = (path if path.is_absolute() else folder / path).resolve()
    if path not in configs:
        try:
            configs[path] = cfg.load(path)
        except cfg.ConfigError as e:
            raise HostError(f"mail config {path}:\n" + "\n".join(e.errors)) from None
    seen = host.get_fact(_dns_fact(), root=settings.root)
    if seen["unreadable"]:
        raise HostError(f"{host.name}: cannot read {settings.root}/keys/dkim as this SSH user: "
                        "give --sudo (as for the deploy)")
    return MailHost(host.name, settings, configs[path], seen["dkim"],
                    list(settings.addresses) or seen["addresses"])


def _mx_hosts(hosts: list[MailHost]) -> dict[str, list[str]]:
    out: dict[str, set] = {}
    for h in hosts:
        for domain in h.config.domains:
            out.setdefault(domain, set()).add(h.settings.hostname)
    return {d: sorted(names) for d, names in out.items()}


def _load(args) -> tuple[list[MailHost], list[str]]:
    from pyinfra_cli.util import parse_cli_arg

    data = {}
    for item in args.data:
        key, eq, value = item.partition("=")
        if not eq:
            raise HostError(f"--data {item}: expected KEY=VALUE")
        data[key] = parse_cli_arg(value)
    return load_hosts(Path(args.dir), args.inventory, args.limit, data, args.sudo)


def cmd_dns(args) -> int:
    from . import dns

    try:
        hosts, errors = _load(args)
    except HostError as e:
        print(f"mailorama dns: {e}", file=sys.stderr)
        return 1
    mx = _mx_hosts(hosts)
    by_host = {h.name: dns.records(h.config, h.settings, h.dkim, h.addresses, mx) for h in hosts}
    errors += dns.conflicts(by_host)
    out = [{"host": h.name, "hostname": h.settings.hostname, "records": by_host[h.name],
            "files": dns.served_files(h.config, h.settings, mx)} for h in hosts]
    if args.json:
        print(dns.to_json(out))
    else:
        print("\n".join(dns.zone_text(f"{o['hostname']}, inventory host {o['host']}", o["records"],
                                      o["files"]) for o in out), end="")
    for error in errors:
        print(f"mailorama dns: error: {error}", file=sys.stderr)
    return 1 if errors else 0


def cmd_doctor(args) -> int:
    from . import dns, doctor

    try:
        hosts, errors = _load(args)
        lookup = doctor.make_lookup(doctor.resolver(args.resolver))
    except (HostError, ValueError) as e:
        print(f"mailorama doctor: {e}", file=sys.stderr)
        return 1
    mx = _mx_hosts(hosts)
    now = datetime.datetime.now(datetime.timezone.utc)
    reports, code = [], 1 if errors else 0
    for h in hosts:
        s = h.settings
        expected = dns.records(h.config, s, h.dkim, h.addresses, mx)
        probe = [args.address] if args.address else list(h.addresses)
        if not probe:
            try:
                probe = lookup(s.hostname, "A") + lookup(s.hostname, "AAAA")
            except doctor.Unresolved:
                probe = []
        results = doctor.check_dns(expected, lookup, h.addresses or probe)
        if probe:
            hosted = (h.config.domains or (s.hostname,))[0]
            results += doctor.check_services(probe[0], s.hostname, s.port, hosted, args.ca, now)
        else:
            results.append(doctor.Result("ports, TLS, relay", doctor.UNKNOWN, dns.REQUIRED,
                                         f"no address for {s.hostname}", "give --address IP"))
        results += doctor.check_blocklists(h.addresses or probe, lookup)
        code = max(code, doctor.exit_code(results))
        reports.append({"host": h.name, "hostname": s.hostname,
                        "address": probe[0] if probe else None, "results": results})
    if args.json:
        print(json.dumps({"hosts": [{**r, "results": doctor.as_dicts(r["results"])}
                                    for r in reports], "errors": errors}, indent=2))
    else:
        for r in reports:
            print(doctor.text_report(f"mailorama doctor: {r['hostname']} (host {r['host']}), "
                                     f"resolver {args.resolver or 'system'}, probing "
                                     f"{r['address']}", r["results"]))
    for error in errors:
        print(f"mailorama doctor: error: {error}", file=sys.stderr)
    return code


def _host_options(p):
    p.add_argument("-C", "--dir", default=".", help="the deploy folder (default: .)")
    p.add_argument("--inventory", default="inventory.py", help="inventory file in it")
    p.add_argument("--limit", action="append", default=[], metavar="HOST",
                   help="only this inventory host (repeatable)")
    p.add_argument("--data", action="append", default=[], metavar="KEY=VALUE",
                   help="override host data like pyinfra's --data, e.g. "
                   "mailorama_addresses=203.0.113.25")
    p.add_argument("--sudo", action="store_true", help="read the DKIM keys with sudo")
    p.add_argument("--json", action="store_true", help="JSON instead of text")


def add_commands(sub):
    """Register `dns` and `doctor` on the `mailorama` command's subparsers."""
    p = sub.add_parser("dns", help="every DNS record each host and hosted domain needs "
                       "(zone file or --json)")
    _host_options(p)
    p.set_defaults(func=cmd_dns)
    p = sub.add_parser("doctor", help="check each host's live DNS, TLS, ports, relay and "
                       "blocklists; exit 1 when a required check fails, 2 when one "
                       "could not be checked")
    _host_options(p)
    p.add_argument("--resolver", metavar="IP[:PORT]", help="ask this DNS server "
                   "(default: the system's)")
    p.add_argument("--address", metavar="IP", help="probe the services at this address "
                   "(default: the host's address)")
    p.add_argument("--ca", metavar="FILE", help="CA certificates to trust (default: the "
                   "system's)")
    p.set_defaults(func=cmd_doctor)
