"""Every validation rule, one broken input each; real-world inputs; the example config."""

import re
from pathlib import Path

import pytest

from mailorama import config as cfg
from mailorama.cli import hash_password, main

EXAMPLE = Path(__file__).resolve().parents[2] / "mail"
H = "$6$rounds=5000$saltsaltsalt$" + "a" * 86  # well-formed SHA512-crypt shape
H2 = "$5$saltsalt$" + "b" * 43
HY = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$" + "c" * 43


def texts(**changes):
    base = {
        "accounts": f"al 1000 {H}\npeg 1001 {H2}\nbud 1002 {HY}\n",
        "domains": "bundy.net\nnomaam.org\n",
        "virtuals": (
            "al@bundy.net al\n"
            "peg@bundy.net peg\n"
            "parents@bundy.net al, peg\n"
            "family@bundy.net parents@bundy.net, bud\n"
            "shoes@bundy.net al,gary@shoes.example\n"
            "postmaster@bundy.net al\n"
            "abuse@bundy.net postmaster@bundy.net\n"
            "postmaster@nomaam.org al\n"
            "abuse@nomaam.org al\n"
        ),
        "aliases": "root: al\npostmaster: root\n",
    }
    base.update(changes)
    return base


def errors_of(**changes) -> list[str]:
    with pytest.raises(cfg.ConfigError) as e:
        cfg.parse(texts(**changes))
    return e.value.errors


def test_base_parses_and_resolves():
    c = cfg.parse(texts())
    v = dict(c.virtuals)
    assert v["family@bundy.net"] == ("al", "bud", "peg")
    assert v["abuse@bundy.net"] == ("al",)
    assert v["shoes@bundy.net"] == ("al", "gary@shoes.example")
    assert dict(c.aliases) == {"postmaster": ("al",), "root": ("al",)}
    assert [a.name for a in c.accounts] == ["al", "bud", "peg"]
    assert c.warnings == ()
    assert c.senders()["bud"] == ("family@bundy.net",)


def test_example_config_is_valid_and_complete():
    c = cfg.load(EXAMPLE)
    assert len(c.accounts) >= 4 and len(c.domains) >= 2 and c.warnings == ()
    v = dict(c.virtuals)
    assert len(v["family@bundy.net"]) >= 3                      # several targets, nested
    assert any("@" in t for t in v["shoes@bundy.net"])          # an external target
    assert dict(c.aliases)["root"] == ("al",)
    assert cfg.published_password_accounts(c) == [a.name for a in c.accounts]
    al = next(a for a in c.accounts if a.name == "al")
    renamed = cfg.parse(texts(accounts=f"albert 1000 {al.hash}\n", virtuals="al@bundy.net albert\n",
                              aliases="root: albert\n"))
    assert cfg.published_password_accounts(renamed) == ["albert"]       # copied line, new name
    assert cfg.published_password_accounts(cfg.parse(texts())) == []


@pytest.mark.parametrize("changes, line, message", [
    # accounts
    ({"accounts": f"al 1000 {H}\nal 1001 {H}\n"}, "accounts:2",
     "duplicate account 'al' (first defined at accounts:1)"),
    ({"accounts": f"al 1000 {H}\npeg 1000 {H}\n"}, "accounts:2",
     "uid 1000 of account 'peg' is already used by account 'al'"),
    ({"accounts": f"al 999 {H}\n"}, "accounts:1", "uid 999 of account 'al' is outside 1000-59999"),
    ({"accounts": f"al 65534 {H}\n"}, "accounts:1", "uid 65534 of account 'al' is outside"),
    ({"accounts": f"al x1000 {H}\n"}, "accounts:1", "uid 'x1000' of account 'al' is not a number"),
    ({"accounts": f"al {'9' * 5000} {H}\n"}, "accounts:1", "of account 'al' is not a number"),
    ({"accounts": "al 1000\n"}, "accounts:1", "expected 'name uid hash', found 2 fields"),
    ({"accounts": "al 1000 secret\n"}, "accounts:1", "the password is not hashed"),
    ({"accounts": f"al 1000 {{SHA512-CRYPT}}{H}\n"}, "accounts:1",
     "scheme prefix '{SHA512-CRYPT}': OpenSMTPD cannot check it; remove the prefix"),
    ({"accounts": f"al 1000 {H[:-5]}\n"}, "accounts:1", "malformed SHA512-CRYPT hash"),
    ({"accounts": "al 1000 $1$abc$defdefdefdefdefdefdefd\n"}, "accounts:1",
     "unsupported hash scheme '1'"),
    ({"accounts": "al 1000 $6$ab:c$" + "a" * 86 + "\n"}, "accounts:1", "hash contains ':'"),
    ({"accounts": f"root 1000 {H}\n"}, "accounts:1", "account name 'root' is a system user"),
    ({"accounts": f"dovecot 1000 {H}\n"}, "accounts:1", "account name 'dovecot' is a system user"),
    ({"accounts": f"9al 1000 {H}\n"}, "accounts:1", "account name '9al' is not valid"),
    # domains
    ({"domains": "bundy.net\nBUNDY.NET\nnomaam.org\n"}, "domains:2", "duplicate domain 'bundy.net'"),
    ({"domains": "bundy.net\nnot_a_domain\nnomaam.org\n"}, "domains:2",
     "'not_a_domain' is not a valid domain name"),
    ({"domains": "bundy.net nomaam.org\n"}, "domains:1", "expected one domain per line"),
    # virtuals
    ({"virtuals": texts()["virtuals"] + "al@BUNDY.net peg\n"}, "virtuals:10",
     "duplicate address 'al@bundy.net' (first at virtuals:1)"),
    ({"virtuals": texts()["virtuals"] + "al@darcy.net al\n"}, "virtuals:10",
     "address 'al@darcy.net' is in domain 'darcy.net', which is not in domains"),
    ({"virtuals": texts()["virtuals"] + "x@bundy.net pegy\n"}, "virtuals:10",
     "target 'pegy' is neither an account, a hosted address nor an external address"),
    ({"virtuals": texts()["virtuals"] + "x@bundy.net nobody@bundy.net\n"}, "virtuals:10",
     "target 'nobody@bundy.net' is in a hosted domain but no line of virtuals defines it"),
    ({"virtuals": texts()["virtuals"] + "x@bundy.net\n"}, "virtuals:10",
     "address 'x@bundy.net' has no targets"),
    ({"virtuals": texts()["virtuals"] + "x@@bundy.net al\n"}, "virtuals:10",
     "'x@@bundy.net' is not a valid mail address"),
    ({"virtuals": texts()["virtuals"] + "x@bundy.net al, bad@@x.org\n"}, "virtuals:10",
     "target 'bad@@x.org' is not a valid mail address"),
    ({"virtuals": texts()["virtuals"] + "x@bundy.net al peg\n"}, "virtuals:10",
     "target 'al peg' has a space in it; separate targets with commas"),
    ({"virtuals": texts()["virtuals"] + "x@bundy.net |/bin/evil\n"}, "virtuals:10",
     "target '|/bin/evil' is a pipe or a file"),
    ({"virtuals": texts()["virtuals"] + "a@bundy.net b@bundy.net\nb@bundy.net al, a@bundy.net\n"},
     "virtuals:10", "'a@bundy.net' delivers to itself (a@bundy.net -> b@bundy.net -> a@bundy.net)"),
    ({"virtuals": texts()["virtuals"] + "me@bundy.net me@bundy.net\n"}, "virtuals:10",
     "'me@bundy.net' delivers to itself (me@bundy.net -> me@bundy.net)"),
    # aliases
    ({"aliases": "root al\n"}, "aliases:1", "expected 'name: target[,target...]'"),
    ({"aliases": "root: al\nroot: peg\n"}, "aliases:2", "duplicate alias 'root' (first at aliases:1)"),
    ({"aliases": "root: alf\n"}, "aliases:1",
     "target 'alf' is neither an account, an alias, a hosted address nor an external address"),
    ({"aliases": "root: x\nx: root\n"}, "aliases:1", "'root' delivers to itself (root -> x -> root)"),
    ({"aliases": "root: al\nal: peg\n"}, "aliases:2", "alias 'al' is also an account name"),
    ({"aliases": "root: /var/log/mail\n"}, "aliases:1", "is a pipe or a file"),
])
def test_each_rule_names_file_line_and_cause(changes, line, message):
    errors = errors_of(**changes)
    assert any(e.startswith(f"{line}: ") and message in e for e in errors), errors


def test_all_errors_are_collected_in_file_order():
    errors = errors_of(accounts=f"al 1000 {H}\nal 10 plain\n", domains="bundy.net\nbad..net\n",
                       virtuals="al@bundy.net al\nx@bundy.net ghost\n", aliases="root: nobody\n")
    files = [e.split(":")[0] for e in errors]
    assert files == sorted(files, key=cfg.FILES.index)
    assert len(errors) >= 6
    assert all(re.match(r"^(accounts|domains|virtuals|aliases):\d+: ", e) for e in errors), errors


def test_missing_file_is_named():
    t = texts()
    del t["aliases"]
    with pytest.raises(cfg.ConfigError) as e:
        cfg.parse(t)
    assert "aliases: file missing" in e.value.errors[0]


def test_real_world_inputs_are_accepted():
    crlf = {k: v.replace("\n", "\r\n") for k, v in texts().items()}
    assert cfg.parse(crlf) == cfg.parse(texts())
    no_final_newline = {k: v.rstrip("\n") for k, v in texts().items()}
    assert cfg.parse(no_final_newline) == cfg.parse(texts())
    messy = texts(
        accounts=f"\ufeff# people\n\tal\t1000\t{H}   # the man\n\npeg  1001 {H2}\nBud 1002 {HY}\n",
        domains="  Bundy.NET.\n# comment\nnomaam.org",
        virtuals=texts()["virtuals"].replace("al@bundy.net al", "AL@Bundy.Net\tAL")
        .replace("al, peg", "al ,  Peg"),
        aliases="ROOT:al\n\npostmaster :  root\n",
    )
    assert cfg.parse(messy) == cfg.parse(texts())


def test_warnings_for_missing_postmaster_abuse_and_root():
    v = texts()["virtuals"].replace("postmaster@nomaam.org al\n", "")
    c = cfg.parse(texts(virtuals=v, aliases=""))
    assert "domains:2: warning: no postmaster@nomaam.org" in c.warnings[0]
    assert any("no 'root' alias" in w for w in c.warnings)


def test_unicode_domain_is_stored_as_idna():
    c = cfg.parse(texts(domains="bundy.net\nnomaam.org\nbündy.de\n",
                        virtuals=texts()["virtuals"] + "al@bündy.de al\n"))
    assert "xn--bndy-0ra.de" in c.domains and "al@xn--bndy-0ra.de" in dict(c.virtuals)


def test_not_utf8_names_file_and_line(tmp_path):
    for name, text in texts().items():
        (tmp_path / name).write_text(text)
    (tmp_path / "domains").write_bytes(b"bundy.net\nnomaam.org\n\xff\xfe.net\n")
    with pytest.raises(cfg.ConfigError) as e:
        cfg.load(tmp_path)
    assert e.value.errors[0].startswith("domains:3: not UTF-8 text")


def test_hash_password_output_is_accepted():
    h = hash_password("s3cret", rounds=6000)
    assert h.startswith("$6$rounds=6000$") and cfg.check_hash(h) is None
    from passlib.hash import sha512_crypt
    assert sha512_crypt.verify("s3cret", h)


def test_cli_check(capsys, tmp_path):
    assert main(["check", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "6 accounts, 3 domains, 19 addresses" in out
    for name, text in texts(virtuals="al@bundy.net pegy\n").items():
        (tmp_path / name).write_text(text)
    assert main(["check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "virtuals:1: target 'pegy' is neither an account" in err


def test_no_domain_is_an_error():
    assert "domains: no domain; add at least one hosted domain" in errors_of(
        domains="# none yet\n", virtuals="")


def test_cli_hash_password_reads_stdin_when_not_a_tty():
    import subprocess
    import sys
    from passlib.hash import sha512_crypt

    out = subprocess.run([sys.executable, "-m", "mailorama.cli", "hash-password"],
                         input="correct horse\n", capture_output=True, text=True, check=True)
    hashed = out.stdout.strip()
    assert hashed.startswith("$6$rounds=50000$") and cfg.check_hash(hashed) is None
    assert sha512_crypt.verify("correct horse", hashed)
    empty = subprocess.run([sys.executable, "-m", "mailorama.cli", "hash-password"], input="\n",
                           capture_output=True, text=True)
    assert empty.returncode != 0 and not empty.stdout


def test_costly_hash_gives_a_warning():
    slow = "$6$rounds=656000$saltsaltsalt$" + "a" * 86
    c = cfg.parse(texts(accounts=f"al 1000 {H}\npeg 1001 {slow}\nbud 1002 {HY}\n"))
    assert any(w.startswith("accounts:2: warning: account 'peg' has 656,000 hash rounds")
               for w in c.warnings), c.warnings


def chain(prefix: str, n: int, last: str, alias: bool = False) -> str:
    """n names, each delivering to the next, the last to `last`."""
    if alias:
        return "".join(f"{prefix}{i}: {prefix}{i + 1}\n" for i in range(n - 1)) + \
            f"{prefix}{n - 1}: {last}\n"
    return "".join(f"{prefix}{i}@bundy.net {prefix}{i + 1}@bundy.net\n" for i in range(n - 1)) + \
        f"{prefix}{n - 1}@bundy.net {last}\n"


def test_deepest_chain_opensmtpd_expands_is_accepted():
    # virtuals: 9 names deep -> the account 9 expansions below the recipient (EXPAND_DEPTH 10)
    c = cfg.parse(texts(virtuals=texts()["virtuals"] + chain("c", 9, "al"),
                        aliases="root: a0\n" + chain("a", 7, "al", alias=True)))
    assert dict(c.virtuals)["c0@bundy.net"] == ("al",)
    assert dict(c.aliases)["root"] == ("al",)


@pytest.mark.parametrize("depth", [10, 600, 20_000])
def test_too_deep_chain_is_one_error_at_its_outermost_line(depth):
    errors = errors_of(virtuals=texts()["virtuals"] + chain("c", depth, "al"))
    assert errors == [f"virtuals:10: 'c0@bundy.net' reaches its final targets {depth} expansions "
                      "deep (via 'c1@bundy.net'); OpenSMTPD expands at most 9 (EXPAND_DEPTH): "
                      "point it at the final addresses or accounts instead"]


@pytest.mark.parametrize("depth", [9, 5000])
def test_too_deep_alias_chain_is_an_error(depth):
    # root@host -> root -> a0 ... : an alias sits one expansion below its recipient
    errors = errors_of(aliases="root: a0\n" + chain("a", depth, "al", alias=True))
    assert len(errors) == 1 and errors[0].startswith("aliases:1: 'root' reaches its final "
                                                     f"targets {depth + 2} expansions deep")


def test_deep_cycle_is_reported_without_recursion():
    virtuals = texts()["virtuals"] + chain("c", 3000, "c0@bundy.net")
    errors = errors_of(virtuals=virtuals)
    assert any(e.startswith("virtuals:10: 'c0@bundy.net' delivers to itself (c0@bundy.net -> "
                            "c1@bundy.net -> ") for e in errors), errors[:3]


def test_cycle_across_aliases_and_virtuals():
    errors = errors_of(virtuals=texts()["virtuals"] + "x@bundy.net al, y@bundy.net\n"
                       "y@bundy.net x@bundy.net\n", aliases="root: x@bundy.net\n")
    assert any("'x@bundy.net' delivers to itself (x@bundy.net -> y@bundy.net -> x@bundy.net)"
               in e for e in errors), errors


def test_longest_target_list_opensmtpd_reads():
    # the flattened ", "-joined final targets must stay under LINE_MAX (2048) characters
    def targets(size):
        first = ", ".join(f"member{i:04d}@lists.example" for i in range(79))  # 2052 chars
        cut = first[:size - 30].rsplit(", ", 1)[0]
        return f"{cut}, {'x' * (size - len(cut) - 2 - len('@lists.example'))}@lists.example"
    assert len(targets(2047)) == 2047
    fits = texts(virtuals=texts()["virtuals"] + f"list@bundy.net {targets(2047)}\n")
    assert len(", ".join(dict(cfg.parse(fits).virtuals)["list@bundy.net"])) == 2047
    errors = errors_of(virtuals=texts()["virtuals"] + f"list@bundy.net {targets(2048)}\n"
                       "all@bundy.net list@bundy.net, al\n")
    assert [e.split(":")[:2] for e in errors] == [["virtuals", "10"], ["virtuals", "11"]]
    assert "'list@bundy.net' delivers to 78 targets (2048 characters" in errors[0]


def test_many_targets_stay_linear():
    # 100,000 targets: quadratic unions took minutes (40,000: 18 s); linear takes about a second
    import time

    targets = ", ".join(f"u{i}@elsewhere.example" for i in range(100_000))
    start = time.monotonic()
    errors = errors_of(virtuals=texts()["virtuals"] + f"big@bundy.net {targets}\n")
    assert time.monotonic() - start < 10
    assert len(errors) == 1 and "'big@bundy.net' delivers to 100000 targets" in errors[0]
