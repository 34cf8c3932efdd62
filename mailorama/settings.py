"""The deploy's settings: pyinfra host data keys `mailorama_*`, validated into one frozen Settings.

Every value is checked for its type and form before anything uses it: a wrong setting gives one
line `mailorama_key: what it expects, got what`, all of them at once, never a traceback. Values
that become host paths or names in the compose file and shell commands are held to safe
characters.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, fields
from typing import Any, Mapping

from .config import ConfigError, normalise_address, normalise_domain
from .offsite import KEEP, Offsite, parse_keep, parse_offsite

PREFIX = "mailorama_"
DEFAULT_PORTS = {"smtp": 25, "submission": 587, "submissions": 465, "imap": 143, "imaps": 993,
                 "managesieve": 4190, "hostmail": 10025}
HOST_MAIL = ("msmtp", "shim", "none")


# Also the compose project name and the /etc/cron.d file name: no '.' (compose refuses it as a
# project name; cron silently skips a file in cron.d whose name has one: no backups).
_CONTAINER = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
# Docker's reference grammar without a registry port: name components joined by '/', each of
# lower-case letters and digits with '.', '_', '__' or dashes between them; an optional tag.
_COMPONENT = r"[a-z0-9]+(?:(?:\.|__?|-+)[a-z0-9]+)*"
_IMAGE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?")
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_USER = re.compile(r"[a-z_][a-z0-9_.-]*")
# A host path written into compose.yaml, cron and shell lines: no quotes, spaces, newlines,
# ':' (compose's volume separator) or shell/YAML specials, so no quoting can go wrong.
_PATH_PART = re.compile(r"[A-Za-z0-9_.+@=-]+")
_SIZE = re.compile(r"([1-9][0-9]*)([kmg])")
_UNIT = {"k": 1 / 1024, "m": 1, "g": 1024}
MAX_MIB = 2**40               # 1 EiB: sizes above overflow Docker's and Dovecot's parsers
MIN_MEMORY_MIB = 128
_QUOTA = re.compile(r"[1-9][0-9]*[KMGT]")
# Login throttling (SMTP AUTH, IMAP, ManageSieve), per client address (IPv6: per /64):
# `failures` failed logins within `window` seconds block the address for `block` seconds,
# doubled on each repeated block up to `max_block`. failures 0: off.
THROTTLE = {"failures": 5, "window": 600, "block": 900, "max_block": 86400}


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class SettingsError(ConfigError):
    """The settings have errors; `errors` lists every one as `mailorama_key: message`."""


@dataclass(frozen=True)
class Settings:
    hostname: str
    config_dir: str = "mail"
    listen: tuple[str, ...] = ()
    ports: tuple[tuple[str, int], ...] = tuple(DEFAULT_PORTS.items())
    root: str = "/opt/mail-o-rama"
    data: str = "/srv/mail-o-rama"
    container: str = "mail-o-rama"
    image: str = "mail-o-rama:latest"
    tls_cert: str | None = None
    tls_key: str | None = None
    relay_host: str | None = None
    relay_auth: tuple[str, str] | None = None       # (user, password) for the smarthost
    relay_tls_verify: bool = True
    host_mail: str = "msmtp"
    backup_retention_days: int | None = 14
    install_docker: bool = False
    host_aliases: tuple[tuple[str, str], ...] = ()
    allow_renumber: bool = False
    search_index: bool = True       # IMAP SEARCH BODY/TEXT from a full-text index (flatcurve)
    dkim_selectors: tuple[tuple[str, str], ...] = (("rsa", "rsa"), ("ed25519", "ed25519"))
    memory_limit: str = "256m"      # the container's memory limit (Docker size, like 256m)
    log_max_size: str = "10m"       # Docker's json-file log: size of one file
    log_max_files: int = 3          # ... and how many files are kept
    backup_offsite: Offsite | None = None                  # restic repository, password, key
    backup_keep: tuple[tuple[str, int], ...] = tuple(KEEP.items())   # restic forget policy
    auto_update: bool = True        # weekly image rebuild with current Debian packages
    quota: str | None = "10G"       # each account's mail storage (Dovecot size); None: no limit
    quotas: tuple[tuple[str, str | None], ...] = ()      # account -> its own quota
    login_throttle: tuple[tuple[str, int], ...] = tuple(THROTTLE.items())  # see THROTTLE
    login_allow: tuple[str, ...] = ()     # addresses/networks never throttled
    error_limit: int = 10           # SMTP error replies before a client is disconnected; 0: never
    addresses: tuple[str, ...] = ()       # the host's public addresses, for `mailorama dns`

    @property
    def port(self) -> dict[str, int]:
        return dict(self.ports)

    def loopback_only(self) -> bool:
        """True when every listen address is a loopback address (the example's safe mode)."""
        return bool(self.listen) and all(ipaddress.ip_address(a).is_loopback for a in self.listen)


def _host_path(key: str, value, errors: list[str]):
    """`value` as an absolute host path of safe characters (trailing '/' dropped), or None."""
    if not isinstance(value, str) or not value.startswith("/") or value.rstrip("/") == "":
        errors.append(f"{PREFIX}{key}: must be an absolute path other than '/', got {value!r}")
        return None
    parts = value.rstrip("/").split("/")[1:]
    if not all(_PATH_PART.fullmatch(p) and p not in (".", "..") for p in parts):
        errors.append(f"{PREFIX}{key}: {value!r} is not a plain absolute path; use only letters, "
                      "digits and . _ - + @ = between single '/' (no spaces, quotes, ':', '..')")
        return None
    return value.rstrip("/")


# What the stack keeps below mailorama_root and mailorama_data (compose.yaml, the host scripts)
ROOT_PARTS = ("compose.yaml", "config", "keys", "image", "status", "offsite")
DATA_PARTS = ("mail", "queue", "backup")


def _nested(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def _size(key: str, value, errors: list[str], minimum_mib: float = 0):
    """A Docker size like '256m' (k, m or g), lower-cased, or None."""
    match = _SIZE.fullmatch(value.strip().lower()) if isinstance(value, str) else None
    if not match or not minimum_mib <= int(match[1]) * _UNIT[match[2]] <= MAX_MIB:
        least = f" of at least {minimum_mib}m" if minimum_mib else ""
        errors.append(f"{PREFIX}{key}: must be a size{least} like '256m' or '1g' (k, m or g), "
                      f"got {value!r}")
        return None
    return match[0]


def _quota(key: str, value, errors: list[str]) -> str | None:
    """A mailbox quota like '10G' (K, M, G or T), upper-cased; None or 'unlimited': no limit."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "unlimited"):
        return None
    match = _QUOTA.fullmatch(value.strip().upper()) if isinstance(value, str) else None
    if not match or int(match[0][:-1]) * 1024 ** "KMGT".index(match[0][-1]) > MAX_MIB * 1024:
        errors.append(f"{PREFIX}{key}: must be a size like '10G' or '500M' (K, M, G or T), or "
                      f"None for no limit; got {value!r}")
        return None
    return match[0]


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _dict(key: str, value, example: str, errors: list[str]) -> Mapping | None:
    if not isinstance(value, Mapping):
        errors.append(f"{PREFIX}{key}: must be a dict like {example}, got {value!r}")
        return None
    return value


def settings_from(data: Mapping[str, Any], fqdn: str | None = None) -> Settings:
    """Settings from host data (the `mailorama_*` keys of `data`); reports all errors at once."""
    values = {k[len(PREFIX):]: v for k, v in data.items()
              if isinstance(k, str) and k.startswith(PREFIX)}
    known = {f.name for f in fields(Settings)}
    errors: list[str] = []
    out: dict[str, Any] = {}

    hostname = values.get("hostname")
    if hostname in (None, ""):
        hostname = fqdn
    if not isinstance(hostname, str) or normalise_domain(hostname) is None:
        errors.append(f"{PREFIX}hostname: must be a fully qualified host name like "
                      f"mail.example.org, got {hostname!r}")
    else:
        out["hostname"] = normalise_domain(hostname)

    listen = values.get("listen") or ()
    if isinstance(listen, str):
        listen = [listen]
    if not isinstance(listen, (list, tuple, set, frozenset)):
        errors.append(f"{PREFIX}listen: must be a list of IP addresses like ['127.0.0.1'], "
                      f"got {listen!r}")
        listen = ()
    for address in listen:
        if not isinstance(address, str) or not _is_ip(address) or "%" in address:
            errors.append(f"{PREFIX}listen: {address!r} is not an IP address (without a scope)")
    out["listen"] = tuple(sorted({str(ipaddress.ip_address(a)) for a in listen
                                  if isinstance(a, str) and _is_ip(a)}))

    addresses = values.get("addresses") or ()
    if isinstance(addresses, str):
        addresses = addresses.split(",")
    if not isinstance(addresses, (list, tuple)) or not all(
            isinstance(a, str) and _is_ip(a.strip()) and "%" not in a for a in addresses):
        errors.append(f"{PREFIX}addresses: must be a list of the host's public IP addresses "
                      f"like ['203.0.113.25', '2001:db8::25'], got {addresses!r}")
        addresses = ()
    out["addresses"] = tuple(str(ipaddress.ip_address(a.strip())) for a in addresses)

    ports = dict(DEFAULT_PORTS)
    given = _dict("ports", values.get("ports") or {}, str(DEFAULT_PORTS), errors) or {}
    for name, port in given.items():
        if name not in DEFAULT_PORTS:
            errors.append(f"{PREFIX}ports: unknown service {name!r}; use {', '.join(DEFAULT_PORTS)}")
        elif not _whole(port) or not 1 <= port <= 65535:
            errors.append(f"{PREFIX}ports: {name} must be a port number 1-65535, got {port!r}")
        else:
            ports[name] = port
    if len(set(ports.values())) != len(ports):
        errors.append(f"{PREFIX}ports: two services share a port: {ports}")
    out["ports"] = tuple(ports.items())

    for key in ("root", "data"):
        if key in values:
            out[key] = _host_path(key, values[key], errors)
    root, data = out.get("root", Settings.root), out.get("data", Settings.data)
    overlap = [(r, d) for r in ROOT_PARTS for d in DATA_PARTS if root and data
               and _nested(f"{root}/{r}", f"{data}/{d}")]
    if overlap:
        r, d = overlap[0]
        errors.append(f"{PREFIX}data: {data}/{d} (mounted into the container) and {root}/{r} "
                      f"({PREFIX}root) overlap; use folders apart, like /opt/mail-o-rama and "
                      "/srv/mail-o-rama, or the same folder for both")
    for key in ("tls_cert", "tls_key"):
        if values.get(key):
            out[key] = _host_path(key, values[key], errors)
    for key, other in (("tls_cert", "tls_key"), ("tls_key", "tls_cert")):
        if values.get(key) and not values.get(other):
            errors.append(f"{PREFIX}{key}: needs {PREFIX}{other} too; give both or neither")

    container = values.get("container", "mail-o-rama")
    if not isinstance(container, str) or not _CONTAINER.fullmatch(container):
        errors.append(f"{PREFIX}container: {container!r} is not a valid name; use lower-case "
                      "letters, digits, '-' and '_', starting with a letter or digit")
    out["container"] = container
    image = values.get("image")
    if image is None:
        image = f"{container}:latest"
    elif not isinstance(image, str) or not _IMAGE.fullmatch(image):
        errors.append(f"{PREFIX}image: {image!r} is not a valid image name like "
                      "mail-o-rama:latest")
    out["image"] = image

    relay = values.get("relay_host")
    if relay:
        host, _, port = relay.rpartition(":") if isinstance(relay, str) else ("", "", "")
        literal = host[1:-1] if host[:1] + host[-1:] == "[]" else host    # [2001:db8::1]
        if (not (normalise_domain(host) == host.lower() or _is_ip(literal))
                or ":" in host and literal == host
                or not host or any(c.isspace() for c in relay) or not port.isdigit()
                or not port.isascii() or not 1 <= int(port) <= 65535):
            errors.append(f"{PREFIX}relay_host: expected 'host:port' like smtp.example.org:587 "
                          f"(an IPv6 address in brackets: [2001:db8::25]:587), got {relay!r}")
        out["relay_host"] = relay
    auth = values.get("relay_auth")
    if auth:
        user, password = (auth.get("user"), auth.get("password")) if isinstance(auth, Mapping) \
            else (None, None)
        if not relay:
            errors.append(f"{PREFIX}relay_auth: needs {PREFIX}relay_host")
        if (not isinstance(user, str) or not isinstance(password, str) or not user or not password
                or ":" in user or any(c.isspace() for c in user + password)
                or not (user + password).isprintable()):
            errors.append(f"{PREFIX}relay_auth: expected {{'user': ..., 'password': ...}}, "
                          "without spaces or control characters, and no ':' in the user")
        else:
            out["relay_auth"] = (user, password)

    host_mail = values.get("host_mail", "msmtp")
    if not isinstance(host_mail, str) or host_mail not in HOST_MAIL:
        errors.append(f"{PREFIX}host_mail: must be one of {', '.join(HOST_MAIL)}, got {host_mail!r}")
    out["host_mail"] = host_mail

    retention = values.get("backup_retention_days", 14)
    if retention is None or retention == "":
        out["backup_retention_days"] = None
    elif not _whole(retention) or not 1 <= retention <= 100_000:
        errors.append(f"{PREFIX}backup_retention_days: must be a whole number of days 1-100000, "
                      f"or empty to keep all; got {retention!r}")
    else:
        out["backup_retention_days"] = retention

    for key in ("install_docker", "allow_renumber", "relay_tls_verify", "auto_update",
                "search_index"):
        if key in values:
            if not isinstance(values[key], bool):
                errors.append(f"{PREFIX}{key}: must be True or False, got {values[key]!r}")
            else:
                out[key] = values[key]

    aliases = values.get("host_aliases") or (
        {"default": f"root@{out['hostname']}"} if "hostname" in out else {})
    aliases = _dict("host_aliases", aliases, "{'default': 'root@mail.example.org'}", errors) or {}
    for user, address in aliases.items():
        if (not isinstance(user, str) or not _USER.fullmatch(user) or not isinstance(address, str)
                or normalise_address(address) is None):
            errors.append(f"{PREFIX}host_aliases: {user!r}: {address!r} is not 'host user': "
                          "'mail address'")
    out["host_aliases"] = tuple(sorted((str(k), normalise_address(v) if isinstance(v, str)
                                        else str(v)) for k, v in aliases.items()))

    selectors = values.get("dkim_selectors") or {"rsa": "rsa", "ed25519": "ed25519"}
    selectors = _dict("dkim_selectors", selectors, "{'rsa': 'rsa', 'ed25519': 'ed25519'}",
                      errors) or {}
    if selectors and set(selectors) != {"rsa", "ed25519"}:
        errors.append(f"{PREFIX}dkim_selectors: needs exactly the keys 'rsa' and 'ed25519'")
    for selector in selectors.values():
        if not isinstance(selector, str) or not _LABEL.fullmatch(selector):
            errors.append(f"{PREFIX}dkim_selectors: {selector!r} is not a DNS label "
                          "(letters, digits, '-')")
    if len({str(s).lower() for s in selectors.values()}) != len(selectors):
        errors.append(f"{PREFIX}dkim_selectors: the two keys need two selectors")
    out["dkim_selectors"] = tuple(sorted((str(k), str(v).lower()) for k, v in selectors.items()))

    if "config_dir" in values:
        folder = values["config_dir"]
        if not isinstance(folder, (str, os.PathLike)) or not str(folder) or "\0" in str(folder):
            errors.append(f"{PREFIX}config_dir: must be a folder path (relative to the deploy's "
                          f"folder, or absolute), got {folder!r}")
        out["config_dir"] = str(folder)

    if "memory_limit" in values:
        out["memory_limit"] = _size("memory_limit", values["memory_limit"], errors, MIN_MEMORY_MIB)
    if "log_max_size" in values:
        out["log_max_size"] = _size("log_max_size", values["log_max_size"], errors)
    if "log_max_files" in values:
        files = values["log_max_files"]
        if not _whole(files) or not 1 <= files <= 100:
            errors.append(f"{PREFIX}log_max_files: must be a whole number 1-100, got {files!r}")
        out["log_max_files"] = files

    if values.get("backup_offsite"):
        out["backup_offsite"] = parse_offsite(values["backup_offsite"], errors)
    if "backup_keep" in values:
        out["backup_keep"] = parse_keep(values["backup_keep"], errors)

    if "quota" in values:
        out["quota"] = _quota("quota", values["quota"], errors)
    quotas = _dict("quotas", values.get("quotas") or {}, "{'al': '20G'}", errors) or {}
    for account, size in quotas.items():
        if not isinstance(account, str) or not account:
            errors.append(f"{PREFIX}quotas: {account!r} is not an account name")
    out["quotas"] = tuple(sorted({str(a): _quota(f"quotas: {a}", s, errors)
                                  for a, s in quotas.items()}.items()))

    throttle = dict(THROTTLE)
    given = _dict("login_throttle", values.get("login_throttle") or {}, str(THROTTLE), errors) or {}
    for name, value in given.items():
        if name not in THROTTLE:
            errors.append(f"{PREFIX}login_throttle: unknown key {name!r}; use {', '.join(THROTTLE)}")
        elif not _whole(value) or not (0 if name == "failures" else 1) <= value <= 10**7:
            errors.append(f"{PREFIX}login_throttle: {name} must be a whole number "
                          f"{'0 (off)' if name == 'failures' else '1'} to 10000000, got {value!r}")
        else:
            throttle[name] = value
    if throttle["max_block"] < throttle["block"]:
        errors.append(f"{PREFIX}login_throttle: max_block ({throttle['max_block']}) must be at "
                      f"least block ({throttle['block']})")
    out["login_throttle"] = tuple(throttle.items())
    allow = values.get("login_allow") or ()
    if isinstance(allow, str) or not isinstance(allow, (list, tuple, set, frozenset)):
        errors.append(f"{PREFIX}login_allow: must be a list of addresses or networks like "
                      f"['203.0.113.7', '2001:db8::/64'], got {allow!r}")
        allow = ()
    nets = set()
    for item in allow:
        try:
            if not isinstance(item, str):
                raise TypeError(item)
            nets.add(str(ipaddress.ip_network(item, strict=False)))
        except (TypeError, ValueError):
            errors.append(f"{PREFIX}login_allow: {item!r} is not an IP address or network")
    out["login_allow"] = tuple(sorted(nets))
    if "error_limit" in values:
        limit = values["error_limit"]
        if not _whole(limit) or not 0 <= limit <= 10000:
            errors.append(f"{PREFIX}error_limit: must be a whole number 0 (never) to 10000, "
                          f"got {limit!r}")
        out["error_limit"] = limit

    for key in sorted(set(values) - known):
        errors.append(f"{PREFIX}{key}: unknown setting (typo?); known: {', '.join(sorted(known))}")
    if errors:
        raise SettingsError(errors)
    return Settings(**out)
