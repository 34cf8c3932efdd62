"""Settings validation and rendering: deterministic, correct tables, templates that render."""

import pytest

from mailorama import config as cfg
from mailorama.contract import FILES
from mailorama.contract import SECRET_CONFIG
from mailorama.render import diff_sides, masked, render, render_host, tables
from mailorama.settings import SettingsError, settings_from
from test_config import EXAMPLE, texts


def test_tables_content():
    t = tables(cfg.parse(texts()))
    assert "family@bundy.net al, bud, peg\n" in t["virtuals"]
    assert "shoes@bundy.net al, gary@shoes.example\n" in t["virtuals"]
    assert "al 1000:1000:/var/mail/al\n" in t["userbase"]
    assert "root: al\n" in t["aliases"]
    assert t["recipients"].startswith("# @list\n") and "\nfamily@bundy.net\n" in t["recipients"]
    assert "bundy.net\nnomaam.org\n" in t["domains"]
    assert t["passwd"].splitlines()[1].startswith("al:$6$") and ":1000:1000::/var/mail/al::" in t["passwd"]
    assert "bud family@bundy.net\n" in t["senders"]
    assert t["credentials"].splitlines()[1].startswith("al $6$")


def test_render_is_deterministic_and_complete():
    settings = settings_from({"mailorama_listen": ["127.0.0.1"]}, fqdn="mail.bundy.net")
    one = render(cfg.load(EXAMPLE), settings)
    crlf = {k: v.replace("\n", "\r\n") for k, v in cfg.read_texts(EXAMPLE)[0].items()}
    two = render(cfg.parse(crlf), settings)
    assert one == two
    # every config file of the container's contract, the contract itself, and the plain files
    expected = {f"config/{f.name}" for f in FILES if f.source == "config" and f.check != "sieve"} | {
        "config/contract", "config/hostname", "config/dkim-selectors", "compose.yaml"} | {
        f"config/{a.name}.sieve" for a in cfg.load(EXAMPLE).accounts}
    assert set(one) == expected
    assert SECRET_CONFIG <= set(one)
    assert "mail.bundy.net" in one["config/smtpd.conf"]
    assert "\nroot@mail.bundy.net\n" in one["config/system-recipients"]
    assert "al@mail.bundy.net" not in one["config/system-recipients"]
    assert all(text.endswith("\n") for text in one.values())


def test_settings_defaults():
    s = settings_from({}, fqdn="Mail.Bundy.Net")
    assert s.hostname == "mail.bundy.net" and s.root == "/opt/mail-o-rama"
    assert s.port == {"smtp": 25, "submission": 587, "submissions": 465, "imap": 143, "imaps": 993,
                      "managesieve": 4190, "hostmail": 10025}
    assert s.host_mail == "msmtp" and s.backup_retention_days == 14 and s.listen == ()
    assert dict(s.host_aliases) == {"default": "root@mail.bundy.net"}
    assert not s.loopback_only()
    assert settings_from({"mailorama_listen": ["127.0.0.1"]}, "h.x.org").loopback_only()


@pytest.mark.parametrize("data, message", [
    ({"mailorama_ports": {"smtp": 0}}, "mailorama_ports: smtp must be a port number 1-65535"),
    ({"mailorama_ports": {"smtps": 465}}, "mailorama_ports: unknown service 'smtps'"),
    ({"mailorama_ports": {"imap": 25}}, "mailorama_ports: two services share a port"),
    ({"mailorama_listen": ["localhost"]}, "mailorama_listen: 'localhost' is not an IP address"),
    ({"mailorama_root": "opt/x"}, "mailorama_root: must be an absolute path"),
    ({"mailorama_tls_cert": "/etc/c.pem"}, "give both or neither"),
    ({"mailorama_relay_host": "smtp.example.org"}, "mailorama_relay_host: expected 'host:port'"),
    ({"mailorama_host_mail": "postfix"}, "mailorama_host_mail: must be one of msmtp, shim, none"),
    ({"mailorama_backup_retention_days": -1}, "mailorama_backup_retention_days: must be"),
    ({"mailorama_hostnme": "x"}, "mailorama_hostnme: unknown setting (typo?)"),
    ({"mailorama_hostname": "localhost"}, "mailorama_hostname: must be a fully qualified"),
    ({"mailorama_listen": ["fe80::1%eth0"]}, "mailorama_listen: 'fe80::1%eth0' is not an IP"),
    ({"mailorama_container": "--rm"}, "mailorama_container: '--rm' is not a valid name"),
    ({"mailorama_container": "Mail"}, "mailorama_container: 'Mail' is not a valid name"),
    ({"mailorama_image": "bad image"}, "mailorama_image: 'bad image' is not a valid image"),
    ({"mailorama_relay_host": 'a" x:25'}, "mailorama_relay_host: expected 'host:port'"),
    ({"mailorama_allow_renumber": "no"}, "mailorama_allow_renumber: must be True or False"),
    ({"mailorama_dkim_selectors": {"rsa": "a b", "ed25519": "ed"}}, "'a b' is not a DNS label"),
    ({"mailorama_dkim_selectors": {"rsa": "x", "ed25519": "x"}}, "need two selectors"),
    ({"mailorama_host_aliases": {"root": "not an address"}}, "mailorama_host_aliases: 'root'"),
])
def test_settings_errors_name_the_key(data, message):
    with pytest.raises(SettingsError) as e:
        settings_from(data, fqdn="mail.bundy.net")
    assert any(message in err for err in e.value.errors), e.value.errors


def test_smarthost_login():
    config = cfg.load(EXAMPLE)
    plain = render(config, settings_from({"mailorama_relay_host": "smtp.isp.example:25"},
                                         fqdn="mail.bundy.net"))
    assert 'relay host "smtp://smtp.isp.example:25" helo' in plain["config/smtpd.conf"]
    assert "relay " not in plain["config/relay-secrets"].split("\n", 1)[1]
    auth = render(config, settings_from({"mailorama_relay_host": "smtp.isp.example:587",
                                         "mailorama_relay_auth": {"user": "me", "password": "pw"}},
                                        fqdn="mail.bundy.net"))
    assert ('relay host "smtp+tls://relay@smtp.isp.example:587" auth <relaysecrets> helo'
            in auth["config/smtpd.conf"])
    assert auth["config/relay-secrets"].endswith("relay me:pw\n")
    smtps = render(config, settings_from({"mailorama_relay_host": "smtp.isp.example:465",
                                          "mailorama_relay_auth": {"user": "me", "password": "pw"},
                                          "mailorama_relay_tls_verify": False},
                                         fqdn="mail.bundy.net"))
    assert '"smtps://relay@smtp.isp.example:465" auth <relaysecrets> tls no-verify' in \
        smtps["config/smtpd.conf"]
    with pytest.raises(SettingsError) as e:
        settings_from({"mailorama_relay_auth": {"user": "a:b", "password": "x"}}, "h.x.org")
    assert any("mailorama_relay_auth: needs mailorama_relay_host" in m for m in e.value.errors)
    assert any("no ':' in the user" in m for m in e.value.errors)


def test_diff_masks_secrets():
    creds = masked("/opt/m/config/credentials", ["# head", "al $6$rounds=50000$salt$hash"])
    assert creds == ["# head", "al ********"]
    passwd = masked("/opt/m/config/passwd", ["al:$6$x$y:1000:1000::/var/mail/al::"])
    assert passwd == ["al:********:1000:1000::/var/mail/al::"]
    assert masked("/opt/m/config/relay-secrets", ["relay me:s3cret"]) == ["relay me:********"]
    assert masked("/opt/m/keys/dkim/rsa.key", ["-----BEGIN", "x"]) == [
        "******** (a key: not shown)"]
    assert masked("/opt/m/config/virtuals", ["al@bundy.net al"]) == ["al@bundy.net al"]


def test_diff_marks_a_changed_secret():
    old = ["# head", "al $6$old", "peg $6$same"]
    new = ["# head", "al $6$new", "peg $6$same", "griff $6$added"]
    before, after = diff_sides("/opt/m/config/credentials", old, new)
    assert before == ["# head", "al ********", "peg ********"]
    assert after == ["# head", "al ********  (changed)", "peg ********", "griff ********"]
    assert diff_sides("/opt/m/config/virtuals", ["a b"], ["a c"]) == (["a b"], ["a c"])


def test_host_mail_enters_on_its_own_loopback_port():
    settings = settings_from({"mailorama_listen": ["203.0.113.5"]}, fqdn="mail.bundy.net")
    msmtprc = render_host(settings)["/etc/msmtprc"]
    assert "host 127.0.0.1\nport 10025\n" in msmtprc
    smtpd = render(cfg.load(EXAMPLE), settings)["config/smtpd.conf"]
    assert 'listen on "127.0.0.1" port 10025 hostname "mail.bundy.net" tag HOSTMAIL' in smtpd
    assert "match tag HOSTMAIL for any reject" in smtpd       # never a relay
    assert smtpd.index("match tag HOSTMAIL for any reject") < smtpd.index("match from auth")
