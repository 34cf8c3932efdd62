"""Settings of any type give `mailorama_key: what it expects` errors, all at once, never a
traceback; paths and names that reach compose.yaml and shell lines are plain."""

import re
from dataclasses import fields

import pytest
from hypothesis import given, settings, strategies as st

from mailorama.settings import Settings, SettingsError, settings_from

KEYS = sorted(f.name for f in fields(Settings))
NAME = re.compile(r"mailorama_([a-z0-9_]+)")
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30),
                    st.binary(max_size=10), st.sampled_from(["/opt/x", "127.0.0.1", "256m", "al"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.tuples(inner, inner),
    st.dictionaries(st.one_of(st.text(max_size=10), st.integers(), st.sampled_from(
        ["smtp", "imap", "rsa", "ed25519", "user", "password", "default"])), inner, max_size=4)),
    max_leaves=8)


def errors_of(data: dict) -> list[str]:
    with pytest.raises(SettingsError) as e:
        settings_from(data, fqdn="mail.bundy.net")
    return e.value.errors


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, min_size=1))
def test_random_types_give_named_errors_only(given_values):
    data = {f"mailorama_{key}": value for key, value in given_values.items()}
    try:
        settings_from(data, fqdn="mail.bundy.net")
    except SettingsError as e:
        assert e.errors
        for error in e.errors:
            name = NAME.match(error)
            assert name and name[1] in given_values, (error, given_values)


@pytest.mark.parametrize("key, value, message", [
    ("listen", 5, "mailorama_listen: must be a list of IP addresses"),
    ("host_aliases", ["root@x.org"], "mailorama_host_aliases: must be a dict"),
    ("hostname", {"a": 1}, "mailorama_hostname: must be a fully qualified host name"),
    ("ports", {"smtp": "25"}, "mailorama_ports: smtp must be a port number 1-65535, got '25'"),
    ("ports", [25], "mailorama_ports: must be a dict"),
    ("install_docker", 1, "mailorama_install_docker: must be True or False, got 1"),
    ("relay_tls_verify", "yes", "mailorama_relay_tls_verify: must be True or False"),
    ("config_dir", 3, "mailorama_config_dir: must be a folder path"),
    ("dkim_selectors", ["rsa"], "mailorama_dkim_selectors: must be a dict"),
    ("relay_host", 25, "mailorama_relay_host: expected 'host:port'"),
    ("host_mail", ["msmtp"], "mailorama_host_mail: must be one of msmtp, shim, none"),
    ("backup_retention_days", 1.5, "mailorama_backup_retention_days: must be a whole number"),
    ("container", 7, "mailorama_container: 7 is not a valid name"),
    ("memory_limit", "64m", "mailorama_memory_limit: must be a size of at least 128m"),
    ("memory_limit", 256, "mailorama_memory_limit: must be a size"),
    ("log_max_size", "10 MB", "mailorama_log_max_size: must be a size like '256m'"),
    ("log_max_files", 0, "mailorama_log_max_files: must be a whole number 1-100"),
])
def test_wrong_type_names_the_setting_and_what_it_expects(key, value, message):
    errors = errors_of({f"mailorama_{key}": value})
    assert any(e.startswith(message) for e in errors), errors


def test_all_errors_come_at_once():
    errors = errors_of({"mailorama_listen": 5, "mailorama_host_aliases": ["x"],
                        "mailorama_root": "/opt/x y", "mailorama_install_docker": "no"})
    assert [e.split(":")[0] for e in errors] == [
        "mailorama_listen", "mailorama_root", "mailorama_install_docker",
        "mailorama_host_aliases"]


@pytest.mark.parametrize("key", ["root", "data", "tls_cert", "tls_key"])
@pytest.mark.parametrize("path", [
    '/opt/mail"\nx: y', "/opt/mail o rama", "/opt/$(id)", "/opt/a:b", "/opt/a;b", "/opt/`x`",
    "/opt/../etc", "/opt//x", "/opt/#x", "/opt/{x}", "/opt/a'b", "/opt/a\\b", "/opt/a*b",
    "/opt/ä", "/opt/a\tb",
])
def test_host_paths_are_plain(key, path):
    data = {f"mailorama_{key}": path}
    if key.startswith("tls"):       # both or neither
        data |= {"mailorama_tls_cert": "/etc/c.pem", "mailorama_tls_key": "/etc/k.pem", **data}
    errors = errors_of(data)
    assert any(e.startswith(f"mailorama_{key}: ") and "plain absolute path" in e
               for e in errors), errors


def test_good_values_are_kept():
    s = settings_from({
        "mailorama_root": "/srv/mail-o-rama.d/", "mailorama_data": "/data/m@il+x=1",
        "mailorama_tls_cert": "/etc/letsencrypt/live/mail.example.org/fullchain.pem",
        "mailorama_tls_key": "/etc/letsencrypt/live/mail.example.org/privkey.pem",
        "mailorama_listen": "127.0.0.1", "mailorama_memory_limit": "1G",
        "mailorama_log_max_size": "1m", "mailorama_log_max_files": 2,
        "mailorama_config_dir": "../mail", "mailorama_hostname": ""}, fqdn="Mail.Bundy.Net")
    assert (s.root, s.data) == ("/srv/mail-o-rama.d", "/data/m@il+x=1")
    assert s.listen == ("127.0.0.1",) and s.hostname == "mail.bundy.net"
    assert (s.memory_limit, s.log_max_size, s.log_max_files) == ("1g", "1m", 2)
    defaults = settings_from({}, fqdn="mail.bundy.net")
    assert (defaults.memory_limit, defaults.log_max_size, defaults.log_max_files) == \
        ("256m", "10m", 3)


@pytest.mark.parametrize("key, value", [
    ("relay_host", "smtp.example.org\n:587"),       # would split the relay line in smtpd.conf
    ("relay_host", " smtp.example.org:587"),
    ("addresses", ["::1%lo"]),                       # a scope is no public address
])
def test_values_that_would_land_verbatim_are_refused(key, value):
    with pytest.raises(SettingsError) as e:
        settings_from({f"mailorama_{key}": value}, fqdn="mail.example.org")
    assert e.value.errors[0].startswith(f"mailorama_{key}: ")
