"""Settings a careless or hostile user gives: named errors, never a traceback, never a value
that breaks the compose project, the cron file, Docker, Dovecot or OpenSMTPD later."""

import hypothesis
import pytest
import yaml
from hypothesis import strategies as st

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
    # names Docker refuses (at build, after the files went out), or an empty one taken as unset
    ({"image": "mail//o/../rama:x"}, "mailorama_image: 'mail//o/../rama:x' is not a valid image"),
    ({"image": ""}, "mailorama_image: '' is not a valid image"),
    # a NUL ends the C string OpenSMTPD reads: another password than the one given
    ({"relay_host": "smtp.bundy.net:587", "relay_auth": {"user": "u", "password": "pw\x00x"}},
     "mailorama_relay_auth: expected {'user': ..., 'password': ...}, without spaces or control"),
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


HOSTILE = "\"'\n\r\t $;`\\{}%&|<>*?!#:,"
GOOD = st.sampled_from(["mail-o-rama", "/opt/x", "/srv/x", "256m", "10G", "mail.bundy.net",
                        "smtp.bundy.net:587", "127.0.0.1", "::1", "root@bundy.net", "default",
                        "rsa", "a/b:c", "/etc/ssl/x.pem"])
TEXT = st.one_of(GOOD, st.tuples(GOOD, st.sampled_from(list(HOSTILE) + ["\x00", "\u2028", ".."]),
                                 GOOD).map("".join),
                 st.text(st.sampled_from(list("ab9./-_@=+") + list(HOSTILE)), max_size=12))
PATHS = st.one_of(TEXT, TEXT.map(lambda t: "/" + t), st.just("/opt/x/../y"))
HOSTILE_SETTINGS = {
    "root": PATHS, "data": PATHS, "container": TEXT, "image": TEXT, "hostname": TEXT,
    "memory_limit": TEXT, "log_max_size": TEXT, "quota": TEXT, "relay_host": TEXT,
    "dkim_selectors": st.fixed_dictionaries({"rsa": TEXT, "ed25519": TEXT}),
    "host_aliases": st.dictionaries(TEXT, TEXT, max_size=2),
    "listen": st.lists(TEXT, max_size=2), "login_allow": st.lists(TEXT, max_size=2),
    "tls_cert": PATHS,
}


@hypothesis.settings(max_examples=600, deadline=None)
@hypothesis.given(st.dictionaries(st.sampled_from(sorted(HOSTILE_SETTINGS)), st.none(), max_size=2,
                                  min_size=1), st.data())
def test_hostile_values_never_reach_a_rendered_file(keys, data):
    values = {key: data.draw(HOSTILE_SETTINGS[key], label=key) for key in keys}
    if "tls_cert" in values:
        values["tls_key"] = values["tls_cert"] + "-key"
    try:
        s = settings(**values)
    except SettingsError:
        return
    for key in ("root", "data", "container", "image", "hostname", "memory_limit",
                "log_max_size", "quota", "relay_host", "tls_cert", "tls_key"):
        value = getattr(s, key) or ""
        assert not set(value) & set(HOSTILE.replace(":", "")) and value.isprintable(), (key, value)
    assert all(v.isprintable() and not set(v) & set(HOSTILE) for pair in s.dkim_selectors
               for v in pair)
    files = render(cfg.parse(texts()), s) | render_host(s)
    compose = yaml.safe_load(files["compose.yaml"])["services"]["mail"]
    assert (compose["container_name"], compose["image"]) == (s.container, s.image)
    assert compose["volumes"][0] == f"{s.root}/config:/etc/mail-o-rama:ro"
    assert f"{s.data}/mail:/var/mail" in compose["volumes"]
    cron = files[f"/etc/cron.d/{s.container}"]
    assert all(len(line.split()) >= 7 for line in cron.splitlines()
               if line and not line.startswith("#") and "=" not in line.split()[0])
