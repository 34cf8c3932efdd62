"""A hostile or careless user's config files: every one a clean file:line error, never a
traceback, a hang or a line the parser reads but an editor does not show."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mailorama import config as cfg
from test_config import H, errors_of, texts

EXAMPLE = Path(__file__).resolve().parents[2] / "mail"
CHECK = [sys.executable, "-m", "mailorama.cli", "check"]


@pytest.mark.parametrize("hidden", ["\u2028", "\u2029", "\x85", "\x0c", "\x0b", "\r", "\x00",
                                    "\x1b", "\u202e", "\ufeff"])
def test_a_line_hidden_in_a_comment_is_refused(hidden):
    # U+2028, NEL, FF, VT and a lone CR end a line for Python's splitlines() but not in an
    # editor: '# note<U+2028>ed 1003 hash' looked like a comment and added an account.
    accounts = texts()["accounts"] + f"# note{hidden}ed 1003 {H}\n"
    errors = errors_of(accounts=accounts)
    assert errors[0].startswith("accounts:4: invisible character"), errors
    assert "ed" not in {a.name for a in cfg.parse(texts()).accounts}


def test_crlf_and_a_bom_still_read():
    crlf = {k: "\ufeff" + v.replace("\n", "\r\n") for k, v in texts().items()}
    assert cfg.parse(crlf) == cfg.parse(texts())


def test_messages_escape_what_cannot_be_seen():
    errors = errors_of(accounts=texts()["accounts"] + f"e\u200bd 1003 {H}\n")
    assert "account name 'e\\u200bd' is not valid" in errors[0], errors
    assert all(e.isprintable() for e in errors)


@pytest.mark.parametrize("make, error", [
    (lambda p: os.mkfifo(p), "not a regular file"),
    (lambda p: p.symlink_to("/dev/zero"), "not a regular file"),
    (lambda p: p.mkdir(), "Is a directory"),
    (lambda p: p.symlink_to(p.name), "Too many levels of symbolic links"),
    (lambda p: p.write_bytes("root: al\n".encode("utf-16")), "aliases:1: not UTF-8 text (byte 0) "
                                                              "(it is UTF-16)"),
])
def test_check_never_hangs_on_odd_files(tmp_path, make, error):
    # a FIFO made `check` wait forever; /dev/zero read until memory ran out
    for name in cfg.FILES:
        (tmp_path / name).write_bytes((EXAMPLE / name).read_bytes())
    (tmp_path / "aliases").unlink()
    make(tmp_path / "aliases")
    run = subprocess.run([*CHECK, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and error in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


def test_a_huge_file_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(cfg, "MAX_BYTES", 1000)
    (tmp_path / "accounts").write_bytes(b"#" * 1001)
    texts_, errors = cfg.read_texts(tmp_path)
    assert errors == [f"accounts: cannot read {tmp_path}/accounts: larger than 0 MiB; is it the "
                      "right file?"] and texts_["accounts"] == ""


def test_long_chains_over_many_targets_stay_linear():
    # 10,000 names each adding a target to the next: flattening every one took 11.7 s and
    # 2.3 GB (quadratic); a list already too long is no longer built again for each name above
    chain = "".join(f"c{i}@bundy.net c{i + 1}@bundy.net, e{i}@ext.example\n" for i in range(10_000))
    many = "big@bundy.net " + ",".join(f"x{i}@ext.example" for i in range(10_000)) + "\n" + \
        "".join(f"r{i}@bundy.net big@bundy.net\n" for i in range(10_000))
    start = time.monotonic()
    errors = errors_of(virtuals=texts()["virtuals"] + chain + "c10000@bundy.net al\n" + many)
    assert time.monotonic() - start < 5
    assert errors[0].startswith("virtuals:10: 'c0@bundy.net' reaches its final targets 10001 "
                                "expansions deep")
    assert any(e.startswith("virtuals:10011: 'big@bundy.net' delivers to 10000 targets")
               for e in errors)
    assert any("'r9999@bundy.net' delivers to every target of 'big@bundy.net' and more" in e
               for e in errors)


def test_a_long_cycle_is_named_briefly():
    loop = "".join(f"c{i}@bundy.net c{(i + 1) % 10_000}@bundy.net\n" for i in range(10_000))
    errors = errors_of(virtuals=texts()["virtuals"] + loop)
    assert errors[0] == ("virtuals:10: 'c0@bundy.net' delivers to itself (c0@bundy.net -> "
                         "c1@bundy.net -> c2@bundy.net -> ... 9994 more ... -> c9997@bundy.net -> "
                         "c9998@bundy.net -> c9999@bundy.net -> c0@bundy.net); break the cycle")


@pytest.mark.parametrize("domain", ["faß.de", "ς.gr", "a\u200db.example"])
def test_idna_2003_deviations_are_refused(domain):
    # Python's IDNA 2003 made faß.de fass.de: another domain than the xn--fa-hia.de of IDNA 2008
    errors = errors_of(domains=f"{domain}\nbundy.net\nnomaam.org\n")
    assert errors == [f"domains:1: '{cfg.shown(domain)}' is not a valid domain name (like example.org); "
                      "write a name with letters beyond ASCII in its xn-- form"]
    assert cfg.normalise_domain("bücher.example") == "xn--bcher-kva.example"


def opensmtpd_values(value: str) -> list[str] | None:
    """How OpenSMTPD reads a table value (expand.c, expand_line_split): split at commas outside
    quotes, a backslash takes the next character as it is; None: the lookup fails."""
    out, item, escaped, single, double = [], "", False, False, False
    for c in value:
        if escaped:
            item, escaped = item + c, False
        elif c == "\\":
            escaped = True
        elif c == "," and not single and not double:
            out, item = out + [item.strip()], ""
        else:
            item += c
            single ^= c == "'" and not double
            double ^= c == '"' and not single
    return None if escaped or single or double else [x for x in out + [item.strip()] if x]


def test_a_quote_in_an_address_keeps_its_meaning_in_the_tables():
    # o'brien@ext.example is a valid address; rendered as is, OpenSMTPD read the quote as the
    # start of a quoted string: the lookup failed and the mail was never delivered
    from mailorama.render import tables

    config = cfg.parse(texts(virtuals=texts()["virtuals"] + "o'hara@bundy.net peg\n"
                             "fans@bundy.net o'brien@ext.example, o'hara@bundy.net, al, "
                             "d'arcy@ext.example\n", aliases="root: o'brien@ext.example, al\n"))
    rendered = tables(config)
    read = {}
    for name in ("virtuals", "senders", "aliases"):
        for line in rendered[name].splitlines()[1:]:
            key, value = line.split(":" if name == "aliases" else " ", 1)
            read[name, key] = opensmtpd_values(value)
    assert read["virtuals", "fans@bundy.net"] == ["al", "d'arcy@ext.example",
                                                  "o'brien@ext.example", "peg"]
    assert read["senders", "peg"] == list(config.senders()["peg"])
    assert "o'hara@bundy.net" in read["senders", "peg"]
    assert read["aliases", "root"] == ["al", "o'brien@ext.example"]
    assert all(v is not None for v in read.values())


@pytest.mark.parametrize("stdin, error", [
    (b"\xff\xfe\n", "the password is not UTF-8 text"),
    (b"abc\x00def\n", "the password holds a NUL byte, which crypt() cannot hash"),
    (b"x" * 5000 + b"\n", "the password is longer than 4096 bytes"),
])
def test_hash_password_refuses_what_it_cannot_hash(stdin, error):
    # each was a passlib or codec traceback
    run = subprocess.run([sys.executable, "-m", "mailorama.cli", "hash-password"], input=stdin,
                         capture_output=True, timeout=60)
    assert run.returncode == 1 and run.stdout == b""
    assert run.stderr.decode() == f"mailorama: {error}; nothing printed\n"


def test_init_refuses_a_password_file_it_cannot_hash(tmp_path):
    (tmp_path / "pw").write_bytes(b"\xffgood-and-long\n")
    run = subprocess.run([sys.executable, "-m", "mailorama.cli", "init", str(tmp_path / "repo"),
                          "--domain", "bundy.net", "--hostname", "mail.bundy.net", "--host", "h",
                          "--ssh-user", "root", "--account", "al",
                          "--password-file", str(tmp_path / "pw")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and not (tmp_path / "repo").exists()
    assert run.stderr == "mailorama init: --password-file: the password is not UTF-8 text\n"


def test_render_names_what_it_cannot_do(tmp_path):
    render = [sys.executable, "-m", "mailorama.cli", "render", str(EXAMPLE)]
    (tmp_path / "file").write_text("")
    run = subprocess.run([*render, str(tmp_path / "file")], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 1 and run.stderr.startswith(
        f"mailorama render: cannot write {tmp_path}/file/"), run.stderr
    run = subprocess.run([*render, str(tmp_path / "out"), "--set", "ports={[]: 1}"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and run.stderr.startswith("mailorama_ports: must be a dict")


def test_check_reads_the_sieve_folder_and_never_skips_or_hangs(tmp_path):
    # a dangling link, a FIFO or a device in sieve/ was skipped without a word (the account's
    # filter silently removed on deploy); a file that fails to read was a traceback
    for name in cfg.FILES:
        (tmp_path / name).write_bytes((EXAMPLE / name).read_bytes())
    folder = tmp_path / "sieve"
    folder.mkdir()
    (folder / "al.sieve").write_text('require "fileinto";\r\nfileinto "Shoes";\n')
    (folder / "peg.sieve").symlink_to("gone.sieve")
    os.mkfifo(folder / "kelly.sieve")
    (folder / "bud.sieve").symlink_to("/proc/self/mem")
    run = subprocess.run([*CHECK, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.splitlines()[:3] == [
        f"{tmp_path}/sieve/bud.sieve: cannot read: Input/output error",
        f"{tmp_path}/sieve/kelly.sieve: cannot read: not a regular file (a folder, FIFO or "
        "device); make it a text file",
        f"{tmp_path}/sieve/peg.sieve: cannot read: No such file or directory"]
    for name in ("bud", "kelly", "peg"):
        (folder / f"{name}.sieve").unlink()
    run = subprocess.run([*CHECK, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.rstrip().endswith(", 1 sieve scripts"), run.stderr


def test_as_many_domains_as_smtpd_conf_can_name():
    # 33 domains of 246 characters made a filter command longer than the 8094 characters
    # OpenSMTPD's parser reads in one string: smtpd refused to start
    import re

    from mailorama.render import render
    from mailorama.settings import settings_from

    def domain(i):
        return ".".join(["a" * 60] * 3 + [f"d{i:04d}" + "x" * 50]) + ".example"

    base = "bundy.net\nnomaam.org\n"
    fits = [domain(i) for i in range((cfg.DOMAINS_MAX - 2 * 14) // 250)]
    config = cfg.parse(texts(domains=base + "".join(f"{d}\n" for d in fits)))
    hostname = ".".join(["h" * 63] * 3 + ["h" * 57]) + ".net"     # 253 characters
    settings = settings_from({"mailorama_dkim_selectors": {"rsa": "r" * 63, "ed25519": "e" * 63}},
                             fqdn=hostname)
    conf = render(config, settings)["config/smtpd.conf"]
    assert max(len(s) for s in re.findall(r'"([^"]*)"', conf)) <= 8094
    errors = errors_of(domains=base + "".join(f"{domain(i)}\n" for i in range(len(fits) + 2)))
    assert errors == [f"domains:{len(fits) + 3}: the domains up to here take 7777 characters in "
                      "smtpd.conf's DKIM filter command (' -d domain' each), more than the 7600 "
                      "OpenSMTPD's config parser leaves them; host the domains from here on "
                      "another server"]


@pytest.mark.parametrize("command", ["dns", "doctor"])
@pytest.mark.parametrize("file, text, error", [
    ("inventory.py", 'hosts = [("@local", {\n', "inventory.py:1: '{' was never closed"),
    ("inventory.py", 'hosts = ["@local"]\nraise RuntimeError("boom")\n',
     "inventory.py:2: RuntimeError: boom"),
    ("group_data/all.py", "mailorama_hostname =\n", "group_data/all.py:1: invalid syntax"),
])
def test_dns_and_doctor_name_a_broken_inventory(tmp_path, command, file, text, error):
    # pyinfra's traceback came through as mailorama's
    (tmp_path / "group_data").mkdir()
    (tmp_path / "inventory.py").write_text('hosts = ["@local"]\n')
    (tmp_path / file).write_text(text)
    run = subprocess.run([sys.executable, "-m", "mailorama.cli", command, "-C", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr == f"mailorama {command}: {tmp_path}/{error}; fix the Python there\n"


def test_a_target_resolves_as_opensmtpd_looks_it_up():
    # a hosted target without a line of its own was an error saying no line defined it, though
    # OpenSMTPD delivers it by its +tag-less line or its domain's catch-all
    config = cfg.parse(texts(virtuals=texts()["virtuals"] + "@nomaam.org peg\n"
                             "a@bundy.net al+shoes@bundy.net\nb@bundy.net anyone@nomaam.org\n"))
    assert dict(config.virtuals)["a@bundy.net"] == ("al",)
    assert dict(config.virtuals)["b@bundy.net"] == ("peg",)
    errors = errors_of(virtuals=texts()["virtuals"] + "@nomaam.org x@nomaam.org\n")
    assert errors == ["virtuals:10: '@nomaam.org' delivers to itself (@nomaam.org -> "
                      "@nomaam.org); break the cycle"]
    errors = errors_of(virtuals=texts()["virtuals"] + "a@bundy.net nobody+x@bundy.net\n")
    assert errors == ["virtuals:10: target 'nobody+x@bundy.net' is in a hosted domain but no "
                      "line of virtuals defines it; add it to virtuals or fix the address"]


def test_a_hash_any_stranger_can_make_the_server_grind_on_is_refused():
    # 999,999,999 rounds (glibc's most): every AUTH for the account, a wrong guess too, held up
    # OpenSMTPD's one lookup process for minutes; it was a warning only
    slow = "$6$rounds=999999999$saltsalt$" + "a" * 86
    errors = errors_of(accounts=texts()["accounts"] + f"ed 1003 {slow}\n")
    assert errors == ["accounts:4: account 'ed': 999,999,999 hash rounds: each login check, a "
                      "stranger's wrong guess too, would hold up OpenSMTPD's lookup process (all "
                      "mail) for a second or more; make one with `mailorama hash-password` "
                      "(50,000 rounds)"]
    ok = "$6$rounds=1000000$saltsalt$" + "a" * 86
    assert cfg.parse(texts(accounts=texts()["accounts"] + f"ed 1003 {ok}\n")).warnings


def test_check_of_no_folder_says_so_once(tmp_path):
    # it was four 'file missing; create it' lines, for a typo in the folder's name
    for path in (tmp_path / "nothing", tmp_path / "file"):
        (tmp_path / "file").write_text("")
        run = subprocess.run([*CHECK, str(path)], capture_output=True, text=True, timeout=60)
        assert run.returncode == 1 and run.stderr.splitlines() == [
            f"{path}: no such folder; give the folder that holds accounts, domains, virtuals "
            "and aliases", f"1 error(s) in {path}"]
