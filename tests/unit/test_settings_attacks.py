"""Settings a careless or hostile user gives: named errors, never a traceback, never a value
that breaks the compose project, the cron file, Docker, Dovecot or OpenSMTPD later."""

import pytest

from mailorama import config as cfg
from mailorama.render import render, render_host
from mailorama.settings import SettingsError, settings_from
from test_config import texts


def settings(**values):
    return settings_from({f"mailorama_{k}": v for k, v in values.items()}, fqdn="mail.bundy.net")


def errors_of(**values) -> list[str]:
    with pytest.raises(SettingsError) as e:
        settings(**values)
    return e.value.errors


@pytest.mark.parametrize("values, error", [
    # compose refuses '.' in a project name; cron skips /etc/cron.d/mail.example: no backups
    ({"container": "mail.example"}, "mailorama_container: 'mail.example' is not a valid name"),
    # 1 and '1' both became '1': sorting the pairs raised TypeError
    ({"quotas": {1: "10G", "1": None}}, "mailorama_quotas: 1 is not an account name"),
    # sizes Docker and Dovecot cannot parse: the container would not start
    ({"quota": "99999999999999999999T"}, "mailorama_quota: must be a size like '10G'"),
    ({"memory_limit": "99999999999999999999g"}, "mailorama_memory_limit: must be a size"),
    # date -d 'today - 10**30 days' fails: every backup would
    ({"backup_retention_days": 10**30}, "mailorama_backup_retention_days: must be a whole "
                                         "number of days 1-100000"),
    # two selectors one DNS name (DNS is case-insensitive)
    ({"dkim_selectors": {"rsa": "Mail", "ed25519": "mail"}},
     "mailorama_dkim_selectors: the two keys need two selectors"),
    # smtp://::1:25 is no relay URL OpenSMTPD reads
    ({"relay_host": "2001:db8::25:587"}, "mailorama_relay_host: expected 'host:port'"),
    ({"relay_host": "[192.0.2.25:587"}, "mailorama_relay_host: expected 'host:port'"),
    ({"relay_host": "192.0.2.25]:587"}, "mailorama_relay_host: expected 'host:port'"),
    # the mail mount inside the stack's folders, or the keys inside the mail
    ({"root": "/srv/m/mail", "data": "/srv/m"},
     "mailorama_data: /srv/m/mail (mounted into the container) and /srv/m/mail/compose.yaml"),
    ({"root": "/opt/m", "data": "/opt/m/keys"},
     "mailorama_data: /opt/m/keys/mail (mounted into the container) and /opt/m/keys "),
])
def test_values_that_would_break_later_are_named_now(values, error):
    errors = errors_of(**values)
    assert any(e.startswith(error) for e in errors), errors


def test_good_values_next_to_them_still_pass():
    s = settings(container="mail_o-rama2", relay_host="[2001:db8::25]:587",
                 dkim_selectors={"rsa": "Mail2026", "ed25519": "ed2026"}, quota="1024T",
                 root="/srv/m", data="/srv/m", backup_retention_days=3650)
    assert s.relay_host == "[2001:db8::25]:587" and s.quota == "1024T"
    assert dict(s.dkim_selectors) == {"rsa": "mail2026", "ed25519": "ed2026"}
    assert settings(root="/opt/m", data="/opt/m/data").data == "/opt/m/data"


def test_one_listen_address_written_two_ways_is_one():
    # '::1' and '0::1' gave two `listen on` lines for one address: smtpd could not bind twice
    s = settings(listen=["::1", "0:0::1", "127.0.0.1"])
    assert s.listen == ("127.0.0.1", "::1")
    conf = render(cfg.parse(texts()), s)["config/smtpd.conf"]
    assert conf.count('listen on "::1" port 25 ') == 1


def test_a_host_alias_is_written_as_the_address_it_is():
    s = settings(host_aliases={"default": " Root@Mail.Bundy.NET\n"})
    aliases = render_host(s)["/etc/mail-o-rama/msmtp-aliases"]
    assert aliases.splitlines()[-1] == "default: root@mail.bundy.net"
