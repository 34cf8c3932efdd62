"""Parse and validate the four mail config files into one frozen MailConfig.

Pure: `parse` takes the files' text, `load` only reads them from a folder. Every problem is
collected as `file:line: what is wrong; how to fix it`; nothing stops at the first error.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

FILES = ("accounts", "domains", "virtuals", "aliases")

# uids the container reserves: Debian gives 1000-59999 to people; 60000 and up are system ranges.
UID_MIN, UID_MAX = 1000, 59999
# Names the container's system users (and sendmail's) already own; an account may not take them.
SYSTEM_NAMES = frozenset(
    "root daemon bin sys sync games man lp mail news uucp proxy www-data backup list irc gnats"
    " nobody _apt messagebus systemd-network systemd-timesync opensmtpd opensmtpq _dkimsign"
    " dovecot dovenull".split()
)
# Above this many SHA-crypt rounds a login check takes long enough to stall OpenSMTPD's
# single lookup process (656,000 rounds: 0.16-0.3 s per check).
SLOW_ROUNDS = 200_000
# Above this many a check takes about half a second or more (glibc goes up to 999,999,999:
# minutes), and anyone can start one: a wrong password for the account costs the full hash.
MAX_ROUNDS = 1_000_000
HASH_SCHEMES = {"$6$": "SHA512-CRYPT", "$5$": "SHA256-CRYPT", "$y$": "yescrypt"}

_NAME = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
_LOCAL = re.compile(r"[a-z0-9!$%&'*+/=?^_`{|}~-]+(\.[a-z0-9!$%&'*+/=?^_`{|}~-]+)*")
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_SALT = r"[./0-9A-Za-z]"
_HASH = {
    "$6$": re.compile(rf"\$6\$(rounds=[0-9]+\$)?{_SALT}{{1,16}}\${_SALT}{{86}}"),
    "$5$": re.compile(rf"\$5\$(rounds=[0-9]+\$)?{_SALT}{{1,16}}\${_SALT}{{43}}"),
    "$y$": re.compile(rf"\$y\${_SALT}+\${_SALT}+\${_SALT}{{43}}"),
}


class ConfigError(Exception):
    """The config has errors; `errors` lists every one as `file:line: message`."""

    def __init__(self, errors: list[str]):
        errors = [shown(e) for e in errors]
        super().__init__("\n".join(errors))
        self.errors = errors


def shown(text: str) -> str:
    """`text` with control and invisible characters escaped (\\x1b, \\u2028), so a message
    quoting a hostile file can neither drive the terminal nor hide what it quotes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    hash: str
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class MailConfig:
    """The whole mail config, validated. Sorted tuples, so equal configs render equal bytes."""

    accounts: tuple[Account, ...]
    domains: tuple[str, ...]
    # address -> every account and external address it finally delivers to
    virtuals: tuple[tuple[str, tuple[str, ...]], ...]
    # system alias name -> every account and external address it finally delivers to
    aliases: tuple[tuple[str, tuple[str, ...]], ...]
    warnings: tuple[str, ...] = field(default=())

    def senders(self) -> dict[str, tuple[str, ...]]:
        """account -> the hosted addresses that deliver to it (what it may send as)."""
        out: dict[str, list[str]] = {a.name: [] for a in self.accounts}
        for address, targets in self.virtuals:
            if address.startswith("@"):        # a catch-all is no address to send as
                continue
            for target in targets:
                if target in out:
                    out[target].append(address)
        return {name: tuple(addrs) for name, addrs in out.items()}


@dataclass
class _Line:
    file: str
    number: int
    fields: list[str]

    def where(self) -> str:
        return f"{self.file}:{self.number}"


# Characters an editor may show as a line break, or not at all: a line holding one is refused
# (anywhere, comments too), so a file never means what its reader cannot see.
_HIDDEN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def _lines(file: str, text: str, errors: list[str]) -> list[_Line]:
    """Non-blank, comment-free lines; tolerant of CRLF, a BOM, tabs and a missing final newline.
    Lines end at LF only, as editors count them."""
    out = []
    for number, raw in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        raw = raw.removesuffix("\r")
        hidden = _HIDDEN.search(raw)
        if hidden:
            errors.append(f"{file}:{number}: invisible character {hidden[0]!r} at column "
                          f"{hidden.start() + 1} (a lone CR, a control or a direction mark); "
                          "remove it: lines end with a newline, fields are separated by spaces")
            continue
        body = raw.split("#", 1)[0].strip()
        if body:
            out.append(_Line(file, number, body.split()))
    return out


# Letters IDNA 2003 (Python's codec) maps away (faß.de -> fass.de) where IDNA 2008, which
# registries and mail clients use, keeps them (xn--fa-hia.de): another domain.
_DEVIATIONS = frozenset("\u00df\u03c2\u200c\u200d")
IDN_HINT = "; write a name with letters beyond ASCII in its xn-- form"


def normalise_domain(text: str) -> str | None:
    """Lower-case ASCII (IDNA for non-ASCII) form of a domain, or None if it is not one."""
    text = text.strip().rstrip(".").lower()
    if _DEVIATIONS.intersection(text):
        return None
    try:
        text = text.encode("idna").decode("ascii") if not text.isascii() else text
    except UnicodeError:
        return None
    labels = text.split(".")
    if len(text) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(x) for x in labels):
        return None
    if labels[-1].isdigit():
        return None
    return text


def normalise_address(text: str) -> str | None:
    """`local@domain` lower-cased, or None if it is not a plain mail address."""
    local, at, domain = text.strip().lower().rpartition("@")
    if not at or len(local) > 64 or not _LOCAL.fullmatch(local):
        return None
    domain = normalise_domain(domain)
    return f"{local}@{domain}" if domain else None


def check_hash(value: str) -> str | None:
    """Why `value` is no hash both OpenSMTPD and Dovecot accept, or None when it is fine."""
    fix = "make one with `mailorama hash-password`"
    if value.startswith("{"):
        return (f"hash starts with a scheme prefix '{value.split('}')[0]}}}': OpenSMTPD cannot "
                "check it; remove the prefix (Dovecot reads the bare crypt hash as CRYPT)")
    if ":" in value:
        return f"hash contains ':', which breaks OpenSMTPD's and Dovecot's tables; {fix}"
    scheme = value[:3]
    if scheme not in _HASH:
        if not value.startswith("$"):
            return f"the password is not hashed (plaintext is never stored); {fix}"
        return (f"unsupported hash scheme '{value.split('$')[1]}'; use SHA512-CRYPT ($6$), "
                f"SHA256-CRYPT ($5$) or yescrypt ($y$): {fix}")
    if not _HASH[scheme].fullmatch(value):
        return f"malformed {HASH_SCHEMES[scheme]} hash (truncated or mangled?); {fix}"
    rounds = re.match(r"\$[56]\$rounds=([0-9]+)\$", value)
    if rounds and int(rounds[1]) > MAX_ROUNDS:
        return (f"{int(rounds[1]):,} hash rounds: each login check, a stranger's wrong guess "
                "too, would hold up OpenSMTPD's lookup process (all mail) for a second or "
                f"more; {fix} (50,000 rounds)")
    return None


def _parse_accounts(lines: list[_Line], errors: list[str]) -> dict[str, Account]:
    accounts: dict[str, Account] = {}
    seen: dict[str, str] = {}
    uids: dict[int, str] = {}
    for line in lines:
        if len(line.fields) != 3:
            errors.append(f"{line.where()}: expected 'name uid hash', found {len(line.fields)} "
                          "fields; separate the three with spaces or tabs")
            continue
        raw_name, raw_uid, hash_ = line.fields
        name = raw_name.lower()
        ok = True
        if not _NAME.fullmatch(name):
            errors.append(f"{line.where()}: account name '{raw_name}' is not valid; use a letter "
                          "followed by letters, digits, '.', '_' or '-', at most 32 characters")
            ok = False
        elif name in SYSTEM_NAMES:
            errors.append(f"{line.where()}: account name '{name}' is a system user of the "
                          "container; pick another name (alias it in aliases instead)")
            ok = False
        elif name in seen:
            errors.append(f"{line.where()}: duplicate account '{name}' (first defined at "
                          f"{seen[name]}); remove one of the lines")
            ok = False
        if not raw_uid.isascii() or not raw_uid.isdigit() or len(raw_uid) > 9:
            errors.append(f"{line.where()}: uid '{raw_uid}' of account '{name}' is not a number; "
                          f"use a number from {UID_MIN} to {UID_MAX}")
            ok = False
        else:
            uid = int(raw_uid)
            if not UID_MIN <= uid <= UID_MAX:
                errors.append(f"{line.where()}: uid {uid} of account '{name}' is outside "
                              f"{UID_MIN}-{UID_MAX} (system users of the container live below and "
                              "above); pick a free uid in that range")
                ok = False
            elif uid in uids:
                errors.append(f"{line.where()}: uid {uid} of account '{name}' is already used by "
                              f"account '{uids[uid]}'; give each account its own uid")
                ok = False
        problem = check_hash(hash_)
        if problem:
            errors.append(f"{line.where()}: account '{name}': {problem}")
            ok = False
        if _NAME.fullmatch(name) and name not in seen:
            seen[name] = line.where()
        if ok:
            uids[int(raw_uid)] = name
            accounts[name] = Account(name, int(raw_uid), hash_, line.number)
    return accounts


# smtpd.conf names every hosted domain in the DKIM filters' commands (' -d domain' each) and
# mailorama-filter's (domains=a,b); OpenSMTPD's parser reads at most 8094 characters in one string
# (parse.y, yylex) and refuses to start on a longer one. The rest of those commands (host name,
# selector, paths) takes under 500.
DOMAINS_MAX = 7600


def _parse_domains(lines: list[_Line], errors: list[str]) -> dict[str, str]:
    domains: dict[str, str] = {}
    size = 0
    for line in lines:
        if len(line.fields) != 1:
            errors.append(f"{line.where()}: expected one domain per line, found "
                          f"{len(line.fields)} words; put each domain on its own line")
            continue
        domain = normalise_domain(line.fields[0])
        if domain is None:
            errors.append(f"{line.where()}: '{line.fields[0]}' is not a valid domain name "
                          f"(like example.org){'' if line.fields[0].isascii() else IDN_HINT}")
        elif domain in domains:
            errors.append(f"{line.where()}: duplicate domain '{domain}' (first at "
                          f"{domains[domain]}); remove one of the lines")
        else:
            domains[domain] = line.where()
            size += len(domain) + 4
            if size > DOMAINS_MAX >= size - len(domain) - 4:
                errors.append(f"{line.where()}: the domains up to here take {size} characters "
                              "in smtpd.conf's DKIM filter command (' -d domain' each), more "
                              f"than the {DOMAINS_MAX} OpenSMTPD's config parser leaves them; "
                              "host the domains from here on another server")
    return domains


def _split_targets(text: str) -> list[str]:
    """`a, b,c` -> ['a', 'b', 'c']: comma separated, spaces around commas allowed."""
    return [t.strip() for t in text.split(",") if t.strip()]


def _add_unique(table: dict, kind: str, key: str, line: _Line, targets: list[str], errors):
    """table[key] = (line, targets), or an error naming the line that has `key` already."""
    if key in table:
        errors.append(f"{line.where()}: duplicate {kind} '{key}' (first at "
                      f"{table[key][0].where()}); merge the targets into one line")
    else:
        table[key] = (line, targets)


def _parse_virtuals(lines, domains, errors) -> dict[str, tuple[_Line, list[str]]]:
    """address -> (its line, its raw targets)."""
    virtuals: dict[str, tuple[_Line, list[str]]] = {}
    for line in lines:
        raw = line.fields[0]
        targets = _split_targets(" ".join(line.fields[1:]))
        if not targets:
            errors.append(f"{line.where()}: address '{raw}' has no targets; write "
                          "'address target[,target...]'")
            continue
        if raw.startswith("@"):                    # a catch-all: @domain
            domain = normalise_domain(raw[1:])
            address = f"@{domain}" if domain else None
        else:
            address = normalise_address(raw)
        if address is None:
            errors.append(f"{line.where()}: '{raw}' is not a valid mail address (like "
                          "name@example.org, or @example.org for a catch-all)"
                          f"{'' if raw.rpartition('@')[2].isascii() else IDN_HINT}")
            continue
        domain = address.split("@")[1]
        if domain not in domains:
            errors.append(f"{line.where()}: address '{address}' is in domain '{domain}', which "
                          "is not in domains; add the domain there or fix the address")
        else:
            _add_unique(virtuals, "address", address, line, targets, errors)
    return virtuals


def _parse_aliases(lines: list[_Line], errors: list[str]) -> dict[str, tuple[_Line, list[str]]]:
    aliases: dict[str, tuple[_Line, list[str]]] = {}
    for line in lines:
        name, colon, rest = " ".join(line.fields).partition(":")
        name = name.strip().lower()
        targets = _split_targets(rest)
        if not colon or not targets:
            errors.append(f"{line.where()}: expected 'name: target[,target...]' (like "
                          "'root: al')")
        elif not _NAME.fullmatch(name):
            errors.append(f"{line.where()}: alias name '{name}' is not valid; use letters, "
                          "digits, '.', '_' or '-'")
        else:
            _add_unique(aliases, "alias", name, line, targets, errors)
    return aliases


# OpenSMTPD 7.6 refuses an expansion node at depth EXPAND_DEPTH (lka_session.c): the recipient
# is depth 0, so a final target may sit at most 9 expansions below it. Rendering flattens every
# chain, so the server never walks one; the bound keeps the files meaning what they would mean to
# OpenSMTPD itself, and keeps error messages short.
EXPAND_DEPTH = 10
# OpenSMTPD parses one table value (an address's targets) in a LINE_MAX buffer (expand.c,
# expand_line): a longer value makes every lookup of that address fail (424, never delivered).
LINE_MAX = 2048


def line_size(targets) -> int:
    """Characters of a table value listing `targets`, as rendered (a quote is escaped)."""
    return len(", ".join(targets)) + sum(t.count("'") for t in targets)


class _Resolver:
    """Expands names (accounts, hosted addresses, aliases) to accounts and external addresses.

    Iterative (no recursion, whatever the depth) and linear in the size of the files: each line's
    targets are read once, each name's result is built once with in-place unions.
    """

    def __init__(self, accounts, domains, virtuals, aliases, errors):
        self.accounts, self.domains = accounts, domains
        self.tables = {"virtuals": virtuals, "aliases": aliases}
        self.errors = errors
        self.edges: dict[tuple[str, str], tuple[set[str], list[tuple[str, str]]]] = {}
        self.result: dict[tuple[str, str], frozenset[str]] = {}
        self.depth: dict[tuple[str, str], int] = {}
        # names whose targets exceed LINE_MAX -> the nested name that makes them so (or None)
        self.too_long: dict[tuple[str, str], tuple[str, str] | None] = {}

    def target(self, line: _Line, raw: str, table: str):
        """One target of `line` (in `table`): a final target (str), a nested name
        ((table, key)), or None after reporting what is wrong with it."""
        if raw.startswith(("|", "/", ":include:")):
            self.errors.append(f"{line.where()}: target '{raw}' is a pipe or a file; Mail-o-Rama "
                               "delivers only to accounts and addresses")
            return None
        if " " in raw:
            self.errors.append(f"{line.where()}: target '{raw}' has a space in it; separate "
                               "targets with commas ('al, peg')")
            return None
        value = raw.lower()
        if "@" not in value:
            if value in self.accounts:
                return value
            if table == "aliases" and value in self.tables["aliases"]:
                return ("aliases", value)
            kinds = "an account, an alias" if table == "aliases" else "an account"
            self.errors.append(f"{line.where()}: target '{raw}' is neither {kinds}, a hosted "
                               "address nor an external address; fix the name or add it")
            return None
        if value.startswith("@"):
            self.errors.append(f"{line.where()}: target '{raw}' is a catch-all; a target must "
                               "be an account or an address")
            return None
        address = normalise_address(value)
        if address is None:
            self.errors.append(f"{line.where()}: target '{raw}' is not a valid mail address")
            return None
        local, domain = address.split("@")
        if domain not in self.domains:
            return address
        # the lines OpenSMTPD would look it up in, in its order (aliases.c): the address, then
        # without its +tag, then the domain's catch-all
        for key in (address, f"{local.split('+', 1)[0]}@{domain}", f"@{domain}"):
            if key in self.tables["virtuals"]:
                return ("virtuals", key)
        self.errors.append(f"{line.where()}: target '{address}' is in a hosted domain but no "
                           "line of virtuals defines it; add it to virtuals or fix the address")
        return None

    def _edges(self, node: tuple[str, str]):
        """(final targets, nested names) of one name's line, read once."""
        if node not in self.edges:
            table, key = node
            line, targets = self.tables[table][key]
            finals: set[str] = set()
            nested: list[tuple[str, str]] = []
            for raw in targets:
                found = self.target(line, raw, table)
                if isinstance(found, tuple):
                    nested.append(found)
                elif found:
                    finals.add(found)
            self.edges[node] = (finals, list(dict.fromkeys(nested)))
        return self.edges[node]

    def _finish(self, node: tuple[str, str]):
        finals, nested = self._edges(node)
        done = [n for n in nested if n in self.result]      # a cycle's back edge adds nothing
        self.depth[node] = 1 + max((self.depth[c] for c in done), default=0)
        via = next((c for c in done if c in self.too_long), None)
        if via:
            # A superset of a list already too long: not built (that would make a long chain,
            # or many names over one big list, quadratic).
            self.too_long[node] = via
            self.result[node] = frozenset()
            return
        out = set(finals)
        for child in done:
            out.update(self.result[child])
        self.result[node] = frozenset(out)
        if line_size(out) >= LINE_MAX:
            self.too_long[node] = None

    def expand(self, start: tuple[str, str]) -> frozenset[str]:
        """Every account and external address `start` finally delivers to (depth-first, with
        an explicit stack); reports each cycle met on the way."""
        if start in self.result:
            return self.result[start]
        path = [start]
        position = {start: 0}
        stack = [iter(self._edges(start)[1])]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                node = path.pop()
                del position[node]
                stack.pop()
                self._finish(node)
            elif child in position:
                first = position[child]         # the names shown: at most 8 (a long loop
                loop = path[first:] if len(path) - first <= 8 else (     # would be quadratic)
                    path[first:first + 3] + [("", f"... {len(path) - first - 6} more ...")]
                    + path[-3:])
                names = [key for _, key in loop] + [child[1]]
                line = self.tables[child[0]][child[1]][0]
                self.errors.append(f"{line.where()}: '{child[1]}' delivers to itself "
                                   f"({' -> '.join(names)}); break the cycle")
            elif child not in self.result:
                position[child] = len(path)
                path.append(child)
                stack.append(iter(self._edges(child)[1]))
        return self.result[start]

    def check_limits(self):
        """What OpenSMTPD could not expand: too deep a nesting (reported at the outermost name
        only) and too long a list of final targets."""
        limit = EXPAND_DEPTH - 1
        # An alias is itself one expansion below its recipient (root@host -> root -> targets).
        levels = {n: d + (n[0] == "aliases") for n, d in self.depth.items()}
        too_deep = {n for n, level in levels.items() if level > limit}
        inner = {c for n in too_deep for c in self.edges[n][1]}
        for node in too_deep - inner:
            table, key = node
            line = self.tables[table][key][0]
            via = max(self.edges[node][1], key=lambda c: self.depth.get(c, 0))[1]
            self.errors.append(
                f"{line.where()}: '{key}' reaches its final targets {levels[node]} expansions "
                f"deep (via '{via}'); OpenSMTPD expands at most {limit} (EXPAND_DEPTH): point "
                "it at the final addresses or accounts instead")
        for node, via in self.too_long.items():
            table, key = node
            line = self.tables[table][key][0]
            targets = self.result[node]
            size = (f"{len(targets)} targets ({line_size(targets)} characters once nesting is "
                    "flattened)") if via is None else f"every target of '{via[1]}' and more"
            self.errors.append(
                f"{line.where()}: '{key}' delivers to {size}; OpenSMTPD reads at most "
                f"{LINE_MAX - 1} characters of targets for one name: use a mailing-list "
                "manager for lists this long")


def parse(texts: dict[str, str]) -> MailConfig:
    """Validate the four files' text (file name -> content); raise ConfigError listing all errors."""
    errors: list[str] = []
    for name in FILES:
        if name not in texts:
            errors.append(f"{name}: file missing; create it (it may be empty, with comments)")
    lines = {name: _lines(name, texts.get(name, ""), errors) for name in FILES}
    accounts = _parse_accounts(lines["accounts"], errors)
    domains = _parse_domains(lines["domains"], errors)
    if "domains" in texts and not domains:
        errors.append("domains: no domain; add at least one hosted domain")
    virtuals = _parse_virtuals(lines["virtuals"], domains, errors)
    aliases = _parse_aliases(lines["aliases"], errors)
    for name, (line, _) in aliases.items():
        if name in accounts:
            errors.append(f"{line.where()}: alias '{name}' is also an account name; mail to it "
                          "would be ambiguous: rename the alias or drop it")

    resolver = _Resolver(accounts, domains, virtuals, aliases, errors)
    resolved_virtuals = {a: resolver.expand(("virtuals", a)) for a in virtuals}
    resolved_aliases = {n: resolver.expand(("aliases", n)) for n in aliases}
    resolver.check_limits()
    # Report each problem once, in file order, however many paths reach it.
    errors = list(dict.fromkeys(errors))
    if errors:
        raise ConfigError(sorted(errors, key=_error_order))

    warnings = []
    for address, (line, _) in virtuals.items():
        if address.startswith("@"):
            warnings.append(f"{line.where()}: warning: catch-all '{address}' takes mail for "
                            "every address of the domain, so every name spammers guess reaches "
                            "you; prefer explicit addresses")
    for domain, where in domains.items():
        missing = [f"{local}@{domain}" for local in ("postmaster", "abuse")
                   if f"{local}@{domain}" not in virtuals and f"@{domain}" not in virtuals]
        if missing:
            warnings.append(f"{where}: warning: no {' or '.join(missing)} "
                            "(RFC 5321 requires postmaster); add it to virtuals")
    for account in accounts.values():
        rounds = re.match(r"\$[56]\$rounds=([0-9]+)\$", account.hash)
        if rounds and int(rounds[1]) > SLOW_ROUNDS:
            warnings.append(f"accounts:{account.line}: warning: account '{account.name}' has "
                            f"{int(rounds[1]):,} hash rounds; OpenSMTPD's lookup process blocks "
                            "for each login check, so every SMTP login waits for it: make a new "
                            "hash with `mailorama hash-password` (50,000 rounds)")
    if "root" not in aliases:
        warnings.append("aliases: warning: no 'root' alias; the system's mail to root "
                        "(cron, backups) will not reach anyone")
    return MailConfig(
        accounts=tuple(sorted(accounts.values(), key=lambda a: a.name)),
        domains=tuple(sorted(domains)),
        virtuals=tuple((a, tuple(sorted(t))) for a, t in sorted(resolved_virtuals.items())),
        aliases=tuple((n, tuple(sorted(t))) for n, t in sorted(resolved_aliases.items())),
        warnings=tuple(warnings),
    )


def _error_order(error: str):
    file, _, rest = error.partition(":")
    number = rest.split(":", 1)[0]
    return (FILES.index(file) if file in FILES else 9, int(number) if number.isdigit() else 0)


# Far above any real config (100,000 accounts are 13 MB); a bigger file is a mistake.
MAX_BYTES = 64 * 1024 * 1024


def read_bytes(path: Path) -> bytes:
    """A regular file's bytes, at most MAX_BYTES; OSError for anything else (a folder, a FIFO
    or a device is refused at once, never waited on or read without end)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with open(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file (a folder, FIFO or device); make it a text file")
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise OSError(0, f"larger than {MAX_BYTES // 2**20} MiB; is it the right file?")
    return data


def read_texts(folder: str | Path) -> tuple[dict[str, str], list[str]]:
    """The four files' text from `folder`, and the errors of unreadable ones."""
    folder = Path(folder)
    texts, errors = {}, []
    for name in FILES:
        path = folder / name
        try:
            data = read_bytes(path)
            texts[name] = data.decode("utf-8")
        except FileNotFoundError:
            pass  # parse() reports it
        except UnicodeDecodeError as e:
            texts[name] = ""
            line = data[: e.start].count(b"\n") + 1
            utf16 = " (it is UTF-16)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
            errors.append(f"{name}:{line}: not UTF-8 text (byte {e.start}){utf16}; save the file "
                          "as UTF-8")
        except OSError as e:
            texts[name] = ""
            errors.append(f"{name}: cannot read {path}: {e.strerror}")
    return texts, errors


def load(folder: str | Path) -> MailConfig:
    """Read and validate the four files in `folder`."""
    if not Path(folder).is_dir():
        raise ConfigError([f"{folder}: no such folder; give the folder that holds accounts, "
                           "domains, virtuals and aliases"])
    texts, errors = read_texts(folder)
    try:
        config = parse(texts)
    except ConfigError as e:
        raise ConfigError(errors + e.errors) from None
    if errors:
        raise ConfigError(errors)
    return config


# The example config's passwords, published in the README. They must never face the internet.
EXAMPLE_PASSWORDS = {
    "al": "4touchdowns", "peg": "bonbons", "kelly": "kellyb", "bud": "grandmasterb",
    "marcy": "tofu4ever", "jefferson": "sponge",
}


# The example's hashes as published in mail/accounts: a copied line under another name.
EXAMPLE_HASHES = frozenset({
    "$6$rounds=50000$/D8GdIO1dBWdfqVu$ZMM2gtAE.MATl77O/QsX8A/JVv6Y8VXUtm/0L9iZCWFcVMXEIS5J0s/Acqx.Lx1tbr8ZHIbXby8tOs7dfQ/XB.",
    "$6$rounds=50000$uI6l8OULryLHu1Rd$68ryrSExxQ/nccxPGDx8QjMEvwEk42cRxpGOa5CJ1/ZD2Lb/lQU9gu5xnm6gk2gSVK3/KEfBB3PeaFFq0YAIA1",
    "$6$rounds=50000$V3CgkQ81bwqjAycf$eIIwdlRO5iszZoM3UtG1KlM28/RJ8yGK71ny/m5HWD6xYwJqj6CWYNaCC7zSXeRTGpKYFYcu7r2XJyoTGZ0BO1",
    "$6$rounds=50000$gS.WIJGOl6AvEYQJ$1fYRrEEdVNdKwomMcRMAg2M66Vb5U9YhHOXa.Jog12hwtuKoltECJXH/BT6omBvCQkvHQhw1DQY4aYivlrUeM1",
    "$6$rounds=50000$t1HtDprRw8KooLpv$HbZmmQwFhI4.ep6gc79vNJyWcd4K5OLfwzwP9ukDxtbZIB83K8pXM4qgtzCGQbeVqs6nLH7zrrp6A5JDj/TQf1",
    "$6$rounds=50000$YRpbJitXS5GwjBIV$xOGKlWjSG25HxcDXjkBjKdkbAazCCaRD83hLDH1hEzZ5D8gz6Ocle6KYZKlb2gdofX3SZJuD79.mpLuX3jGsx1",
})


def published_password_accounts(config: MailConfig) -> list[str]:
    """Accounts whose password is one the README publishes (the example's)."""
    from passlib.hash import sha256_crypt, sha512_crypt

    schemes = {"$6$": sha512_crypt, "$5$": sha256_crypt}
    # One check per example account name: each check costs a full hash.
    return [a.name for a in config.accounts if a.hash in EXAMPLE_HASHES or (
            a.name in EXAMPLE_PASSWORDS and a.hash[:3] in schemes
            and schemes[a.hash[:3]].verify(EXAMPLE_PASSWORDS[a.name], a.hash))]
