"""mailorama-filter's throttle rule, the login throttle on the submission listeners, run as smtpd
runs it: a subprocess speaking the filter protocol. Failed AUTH reports block the address (IPv6: its /64)
at connect and AUTH, logged with address and count; the allow-list is never blocked; any input
is answered (one result per filter request) and never kills it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

FILTER = Path(__file__).resolve().parents[2] / "mailorama" / "image" / "mailorama-filter"
BASE = ["host=mail.bundy.net", "smtp=25", "submission=587,465"]
ARGS = [*BASE, "throttle=3,600,900,3600", "allow=203.0.113.0/24,2001:db8:aaaa::/48"]

pytestmark = pytest.mark.skipif(not shutil.which("perl"), reason="needs perl")


def run(lines: list[str], args: list[str] = ARGS) -> tuple[list[str], str, int]:
    r = subprocess.run(["perl", str(FILTER), *args], input="\n".join(lines) + "\n",
                       capture_output=True, text=True, timeout=60)
    return r.stdout.split("\n")[:-1], r.stderr, r.returncode


def connect(sid: str, src: str) -> list[str]:
    return [f"report|0.7|1.5|smtp-in|link-connect|{sid}|host.example|pass|{src}|127.0.0.1:587",
            f"filter|0.7|1.5|smtp-in|connect|{sid}|c{sid}|host.example|{src}"]


def fail(sid: str, user: str = "al") -> str:
    return f"report|0.7|1.5|smtp-in|link-auth|{sid}|fail|{user}"


def auth(sid: str) -> str:
    return f"filter|0.7|1.5|smtp-in|auth|{sid}|a{sid}|PLAIN AGFsAHg="


def results(out: list[str]) -> dict[str, str]:
    """token -> decision"""
    return {line.split("|")[2]: line.split("|", 3)[3] for line in out
            if line.startswith("filter-result|")}


def test_registers_and_blocks_after_failures_then_at_connect():
    lines = ["config|ready", *connect("s1", "198.51.100.7:40000"), fail("s1"), fail("s1"),
             auth("s1"), fail("s1|with|pipes"), fail("s1"), auth("s1"),
             *connect("s2", "198.51.100.7:40001"), *connect("s3", "198.51.100.8:40002"),
             auth("s3")]
    out, err, code = run(lines)
    assert code == 0
    registered = out[:out.index("register|ready") + 1]
    assert {"register|report|smtp-in|link-connect", "register|report|smtp-in|link-auth",
            "register|report|smtp-in|link-disconnect", "register|filter|smtp-in|connect",
            "register|filter|smtp-in|auth"} <= set(registered)
    assert all(x.startswith("register|") for x in registered)
    r = results(out)
    assert r["cs1"] == r["as3"] == r["cs3"] == "proceed"
    assert r["as1"].startswith("disconnect|421 ")
    assert r["cs2"].startswith("disconnect|421 ")
    assert ("login throttle: blocked 198.51.100.7 for 900 s after 3 failed logins within "
            "600 s (block 1)") in err


def test_ipv6_counts_per_64_and_allow_list_is_never_blocked():
    lines = ["config|ready"]
    for i, src in enumerate(["[2001:db8:1:2::5]:1", "[2001:db8:1:2:ffff::9]:2",
                             "IPv6:2001:db8:1:2::7:3"]):
        lines += [*connect(f"v{i}", src), fail(f"v{i}")]
    lines += connect("v9", "[2001:db8:1:3::1]:4")            # another /64
    for i, src in enumerate(["203.0.113.9:1", "[2001:db8:aaaa:1::1]:2",
                             "[::ffff:203.0.113.10]:3"]):
        lines += [*connect(f"a{i}", src), fail(f"a{i}"), fail(f"a{i}"), fail(f"a{i}"),
                  fail(f"a{i}"), auth(f"a{i}")]
    lines += connect("v10", "[2001:db8:1:2::1234]:5")
    out, err, code = run(lines)
    r = results(out)
    assert code == 0
    assert "blocked 2001:db8:1:2::/64 for 900 s" in err
    assert r["cv9"] == "proceed"
    assert r["cv10"].startswith("disconnect|421 ")
    assert all(r[f"{k}a{i}"] == "proceed" for i in range(3) for k in "ca")
    assert "203.0.113" not in err and "aaaa" not in err


def test_many_connections_at_once_get_no_more_checks_than_failures():
    lines = ["config|ready"]
    for i in range(6):
        lines += [*connect(f"p{i}", f"192.0.2.9:{i}"), auth(f"p{i}")]
    lines += ["report|0.7|1.5|smtp-in|link-auth|p0|pass|al", auth("p0"),
              "report|0.7|1.5|smtp-in|link-disconnect|p1", auth("p1")]
    out, err, code = run(lines)
    r = results(out)
    assert [r[f"ap{i}"] for i in range(3)] == ["proceed"] * 3
    assert all(r[f"ap{i}"].startswith("disconnect|421 4.7.0 Too many logins at once")
               for i in range(3, 6))
    assert r["ap0"] == "proceed" and code == 0      # the last answers: p0 and p1 are done


def test_off_and_bad_arguments():
    out, err, code = run(["config|ready", *connect("s", "192.0.2.1:1"), fail("s"), fail("s"),
                          auth("s")], [*BASE, "throttle=0,600,900,3600"])
    assert code == 0 and results(out)["as"] == "proceed" and "blocked" not in err
    for args in ([*BASE, "throttle=x,1,1,1"], [*BASE, "throttle=3,600"],
                 [*ARGS, "allow=not-an-ip"], [*ARGS, "throttle"], ["smtp=25", "submission=587"]):
        _, err, code = run(["config|ready"], args)
        assert code == 1 and err


fields = st.text(st.characters(blacklist_characters="\n\r|", blacklist_categories=("Cs",)),
                 max_size=40)
events = st.sampled_from(["link-connect", "link-auth", "link-disconnect", "connect", "auth",
                          "helo", "data-line", ""])
request = st.builds(lambda kind, ev, sid, rest: f"{kind}|0.7|1.0|smtp-in|{ev}|{sid}|{rest}",
                    st.sampled_from(["report", "filter"]), events,
                    st.sampled_from(["s1", "s2", ""]),
                    st.lists(fields, min_size=1, max_size=5).map("|".join))
noise = st.one_of(request, fields, st.just("config|ready"), st.just("report|0.7|x|smtp-in"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(noise, max_size=40))
def test_any_input_is_answered_and_never_kills_it(lines):
    out, err, code = run(["config|ready", *lines])
    assert code == 0, err
    # data-line requests are answered by filter-dataline lines (tests/unit/test_ownmail_filter.py)
    asked = [x for x in lines if x.startswith("filter|") and len(x.split("|")) >= 7
             and x.split("|")[3] == "smtp-in" and x.split("|")[4] != "data-line"]
    answers = [x for x in out if x.startswith("filter-result|")]
    assert len(answers) == len(asked)
    for line, answer in zip(asked, answers):
        assert answer.split("|")[1:3] == line.split("|")[5:7]
    assert "line " not in err                  # no Perl error or warning


def test_settings_defaults_overrides_errors_and_rendering():
    from mailorama import config as cfg
    from mailorama.render import render
    from mailorama.settings import THROTTLE, SettingsError, settings_from
    from test_config import EXAMPLE

    s = settings_from({}, fqdn="mail.bundy.net")
    assert dict(s.login_throttle) == THROTTLE == {"failures": 5, "window": 600, "block": 900,
                                                  "max_block": 86400}
    s = settings_from({"mailorama_login_throttle": {"failures": 3},
                       "mailorama_login_allow": ["203.0.113.7", "2001:db8::5/64"]},
                      fqdn="mail.bundy.net")
    assert dict(s.login_throttle)["failures"] == 3 and s.login_allow == ("2001:db8::/64",
                                                                          "203.0.113.7/32")
    files = render(cfg.load(EXAMPLE), s)
    smtpd, dovecot = files["config/smtpd.conf"], files["config/dovecot.conf"]
    assert (' throttle=3,600,900,86400 allow=2001:db8::/64,203.0.113.7/32 errors=10"' in smtpd
            and 'filter "submission" chain { "rules", ' in smtpd)
    assert "passdb lua {" in dovecot and "allow = 2001:db8::/64 203.0.113.7/32" in dovecot
    off = render(cfg.load(EXAMPLE), settings_from({"mailorama_login_throttle": {"failures": 0}},
                                                  fqdn="mail.bundy.net"))
    assert "throttle=" not in off["config/smtpd.conf"]
    assert "passdb passwd-file {" in off["config/dovecot.conf"]
    with pytest.raises(SettingsError) as e:
        settings_from({"mailorama_login_throttle": {"failures": -1, "block": True, "x": 1,
                                                    "max_block": 10},
                       "mailorama_login_allow": ["nonsense", True]}, fqdn="mail.bundy.net")
    text = "\n".join(e.value.errors)
    for part in ("failures must be a whole number 0 (off)", "block must be a whole number 1",
                 "unknown key 'x'", "'nonsense' is not an IP address",
                 "True is not an IP address"):
        assert part in text, text
