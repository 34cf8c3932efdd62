"""Catch-all lines in virtuals (`@domain targets`) and sub-addresses."""

import pytest

from mailorama import config as cfg
from mailorama.render import tables

BASE = {
    "accounts": "al 1000 $6$rounds=5000$abcdefgh$" + "a" * 86 + "\n"
                "marcy 1004 $6$rounds=5000$abcdefgh$" + "b" * 86 + "\n",
    "domains": "bundy.net\ndarcy.net\n",
    "aliases": "root: al\n",
}


def parse(virtuals: str) -> cfg.MailConfig:
    return cfg.parse(dict(BASE, virtuals=virtuals))


def test_catch_all_delivers_and_explicit_addresses_stay():
    config = parse("al@bundy.net al\npostmaster@bundy.net al\nabuse@bundy.net al\n"
                   "@Darcy.NET marcy\nal@darcy.net al\n")
    assert dict(config.virtuals)["@darcy.net"] == ("marcy",)
    t = tables(config)
    assert "@darcy.net marcy\n" in t["virtuals"]
    assert "\n@darcy.net\n" in t["recipients"]            # every address of the domain is valid
    # a catch-all is no address to send as; explicit ones are
    assert config.senders()["marcy"] == ()
    assert "al@darcy.net" in config.senders()["al"]
    warnings = "\n".join(config.warnings)
    assert "virtuals:4: warning: catch-all '@darcy.net'" in warnings
    assert "postmaster@darcy.net" not in warnings         # the catch-all takes it


@pytest.mark.parametrize("virtuals, error", [
    ("@nothosted.example al\n", "virtuals:1: address '@nothosted.example' is in domain "
                                "'nothosted.example', which is not in domains"),
    ("@darcy.net al\n@DARCY.net marcy\n", "virtuals:2: duplicate address '@darcy.net'"),
    ("x@bundy.net @darcy.net\n@darcy.net marcy\n", "virtuals:1: target '@darcy.net' is a "
                                                   "catch-all"),
    ("@ al\n", "virtuals:1: '@' is not a valid mail address"),
])
def test_catch_all_errors(virtuals, error):
    with pytest.raises(cfg.ConfigError) as e:
        parse(virtuals)
    assert any(msg.startswith(error) for msg in e.value.errors), e.value.errors


def test_sub_addresses_may_have_lines_of_their_own():
    config = parse("al@bundy.net al\nal+lists@bundy.net marcy\n")
    assert dict(config.virtuals)["al+lists@bundy.net"] == ("marcy",)
