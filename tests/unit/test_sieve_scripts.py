"""Declarative Sieve filters: the folder's checks and what render makes of it."""

from pathlib import Path

import pytest

from mailorama import config as cfg
from mailorama import sieve
from mailorama.render import render
from mailorama.settings import settings_from

EXAMPLE = Path(__file__).resolve().parents[2] / "mail"
ACCOUNTS = ("al", "peg", "kelly")


def test_collect_takes_account_scripts_and_names_every_problem():
    scripts, errors = sieve.collect({
        "al.sieve": b'require "fileinto";\r\nfileinto "x";\r\n',
        "gary.sieve": b"keep;\n",
        "notes.txt": b"hello",
        "peg.sieve": b"# caf\xe9\nkeep;\n",
        "kelly.sieve": b"#" * (sieve.MAX_SIZE + 1),
    }, ACCOUNTS)
    assert scripts == {"al": 'require "fileinto";\nfileinto "x";\n'}
    assert errors == [
        "sieve/gary.sieve: no account 'gary' in accounts; rename the file to <account>.sieve "
        "or remove it",
        f"sieve/kelly.sieve: {sieve.MAX_SIZE + 1} bytes, more than {sieve.MAX_SIZE}; "
        "make it shorter",
        "sieve/notes.txt: not a Sieve script; name it <account>.sieve or move it out of sieve/",
        "sieve/peg.sieve:1: not UTF-8 text; save it as UTF-8",
    ]


def test_load_reads_the_folder_and_raises_with_paths(tmp_path):
    assert sieve.load(tmp_path, ACCOUNTS) == {}            # no folder: no filters
    (tmp_path / "sieve").mkdir()
    (tmp_path / "sieve" / "peg.sieve").write_text("keep;\n")
    assert sieve.load(tmp_path, ACCOUNTS) == {"peg": "keep;\n"}
    (tmp_path / "sieve" / "bob.sieve").write_text("keep;\n")
    with pytest.raises(cfg.ConfigError) as e:
        sieve.load(tmp_path, ACCOUNTS)
    assert e.value.errors == [f"{tmp_path}/sieve/bob.sieve: no account 'bob' in accounts; "
                              "rename the file to <account>.sieve or remove it"]


def test_render_has_one_filter_file_per_account():
    config = cfg.load(EXAMPLE)
    settings = settings_from({"mailorama_listen": ["127.0.0.1"]}, fqdn="mail.bundy.net")
    files = render(config, settings, {"al": "keep;\n"})
    assert files["config/al.sieve"] == "keep;\n"          # as written: line numbers stay
    assert files["config/peg.sieve"].startswith("#")      # none: a comment, removes a live one
    assert {p for p in files if p.endswith(".sieve")} == {
        f"config/{a.name}.sieve" for a in config.accounts}
    assert render(config, settings) == render(config, settings, {})


def test_dovecot_conf_has_managesieve_and_the_search_index_switch():
    config = cfg.load(EXAMPLE)
    on = settings_from({"mailorama_ports": {"managesieve": 4191}}, fqdn="mail.bundy.net")
    conf = render(config, on)["config/dovecot.conf"]
    assert "protocols = imap lmtp sieve" in conf and "port = 4191" in conf
    assert "fts_flatcurve = yes" in conf
    off = settings_from({"mailorama_search_index": False}, fqdn="mail.bundy.net")
    assert "fts_flatcurve" not in render(config, off)["config/dovecot.conf"]
    with pytest.raises(cfg.ConfigError) as e:
        settings_from({"mailorama_search_index": "yes"}, fqdn="mail.bundy.net")
    assert "mailorama_search_index: must be True or False, got 'yes'" in str(e.value)


def test_check_output_becomes_file_line_errors():
    output = ["al: al: line 5: error: expected end of command ';' but found '}'.",
              "al: al: error: parse failed.",
              "al: sievec: Fatal: failed to compile sieve script",
              "bud: bud: line 1: error: require command: unknown Sieve capability 'x'.",
              "bud: bud: error: validation failed.",
              "peg: sievec: Fatal: out of memory"]
    assert sieve.check_errors(output) == [
        "sieve/al.sieve:5: error: expected end of command ';' but found '}'.",
        "sieve/bud.sieve:1: error: require command: unknown Sieve capability 'x'.",
        "sieve/peg.sieve: sievec: Fatal: out of memory"]
    command = sieve.check_command("mail-o-rama:latest", {"al": "keep;\n"})
    assert command.startswith("if docker image inspect mail-o-rama:latest ")
    assert "--network none" in command and "a2VlcDsK" in command     # the script, base64
