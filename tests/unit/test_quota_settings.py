"""Quota settings: validated, rendered into Dovecot's config and passwd-file, checked against
the accounts."""

import pytest

from mailorama import config as cfg
from mailorama.plan import config_problems
from mailorama.render import render, tables
from mailorama.settings import SettingsError, settings_from
from test_config import EXAMPLE

FQDN = "mail.bundy.net"


def settings(**data):
    return settings_from({"mailorama_listen": ["127.0.0.1"],
                          **{f"mailorama_{k}": v for k, v in data.items()}}, fqdn=FQDN)


def test_default_is_ten_gigabytes_and_sizes_are_normalised():
    assert settings().quota == "10G" and settings().quotas == ()
    s = settings(quota="500m", quotas={"peg": "20g", "al": None, "bud": "unlimited"})
    assert s.quota == "500M"
    assert s.quotas == (("al", None), ("bud", None), ("peg", "20G"))
    assert settings(quota=None).quota is None
    assert settings(quota="Unlimited").quota is None


@pytest.mark.parametrize("value", ["10", "10GB", "0G", "-1G", 10, 1.5, True, "ten", ""])
def test_bad_sizes_are_named_errors(value):
    with pytest.raises(SettingsError) as e:
        settings(quota=value, quotas={"al": value})
    assert [line.split(":")[0] for line in e.value.errors] == ["mailorama_quota",
                                                                "mailorama_quotas"]
    assert all("like '10G'" in line for line in e.value.errors)


def test_quotas_must_be_a_dict():
    with pytest.raises(SettingsError) as e:
        settings(quotas=["al"])
    assert e.value.errors[0].startswith("mailorama_quotas: must be a dict like {'al': '20G'}")


def test_rendered_for_dovecot():
    example = cfg.load(EXAMPLE)
    files = render(example, settings(quota="2G", quotas={"al": "20G", "peg": None}))
    conf = files["config/dovecot.conf"]
    assert "quota_storage_size = 2G" in conf and "quota_full_tempfail = yes" in conf
    passwd = {line.split(":")[0]: line for line in files["config/passwd"].splitlines()
              if not line.startswith("#")}
    assert passwd["al"].endswith("::userdb_quota_storage_size=20G")
    assert passwd["peg"].endswith("::userdb_quota_storage_size=unlimited")
    assert passwd["kelly"].endswith("/var/mail/kelly::")
    assert "quota_storage_size = unlimited" in render(example, settings(quota=None))[
        "config/dovecot.conf"]
    # the OpenSMTPD tables never carry it
    assert "quota" not in tables(example, {"al": "20G"})["credentials"]


def test_unknown_accounts_are_a_problem():
    example = cfg.load(EXAMPLE)
    assert config_problems(example, settings(quotas={"al": "20G"}), "mail") == []
    [problem] = config_problems(example, settings(quotas={"al": "1G", "griff": "1G",
                                                          "Al": "1G"}), "mail")
    assert problem.startswith("mailorama_quotas: Al, griff not in mail/accounts; use account "
                              "names (al, bud, jefferson, kelly, marcy, peg)")
