"""Account safety: renames and renumberings of accounts with mail are refused unless allowed."""

from mailorama import config as cfg
from mailorama.plan import plan_homes
from test_config import texts


def test_unchanged_accounts_need_nothing():
    plan = plan_homes(cfg.parse(texts()), {"al": 1000, "peg": 1001}, allow_renumber=False)
    assert plan.errors == () and plan.moves == () and plan.chowns == () and plan.orphans == ()


def test_renumbering_is_refused_then_allowed():
    config = cfg.parse(texts())
    plan = plan_homes(config, {"al": 1007}, allow_renumber=False)
    assert plan.errors == ("accounts:1: account 'al' now has uid 1000, but its mail on the host "
                           "is owned by uid 1007: a renumbering; set mailorama_allow_renumber = "
                           "True to move and re-own the mail, or undo the change",)
    plan = plan_homes(config, {"al": 1007}, allow_renumber=True)
    assert plan.errors == () and plan.chowns == (("al", 1000),)


def test_rename_is_refused_then_allowed():
    config = cfg.parse(texts())
    plan = plan_homes(config, {"albert": 1000}, allow_renumber=False)
    assert len(plan.errors) == 1 and "account 'al' takes uid 1000 from 'albert'" in plan.errors[0]
    assert plan.errors[0].startswith("accounts:1: ")
    plan = plan_homes(config, {"albert": 1000}, allow_renumber=True)
    assert plan.moves == (("albert", "al"),) and plan.errors == ()


def test_removed_account_keeps_its_mail():
    plan = plan_homes(cfg.parse(texts()), {"gone": 4242, "al": 1000}, allow_renumber=False)
    assert plan.orphans == ("gone",) and plan.errors == ()


def test_config_problems_hostname_and_published_passwords():
    from mailorama.plan import config_problems
    from mailorama.settings import settings_from
    from test_config import EXAMPLE

    example = cfg.load(EXAMPLE)
    loopback = settings_from({"mailorama_listen": ["127.0.0.1"]}, fqdn="mail.bundy.net")
    assert config_problems(example, loopback, "mail") == []
    public = settings_from({}, fqdn="mail.bundy.net")
    [problem] = config_problems(example, public, "mail")
    assert problem.startswith("mail/accounts: accounts al, bud, jefferson, kelly, marcy, peg use "
                              "the example's published passwords")
    same = settings_from({"mailorama_listen": ["127.0.0.1"]}, fqdn="bundy.net")
    [problem] = config_problems(example, same, "mail")
    assert "host name bundy.net is also a hosted domain" in problem
