"""mailorama-filter's errors rule and its choice of rules by listener, run as smtpd runs it: a
client on port 25 or submission that got N error replies (5xx) since its last accepted message
is disconnected with 421 at its next filtered command, logged once with address and count; a
logged-in client and the sendmail socket never are; a session on no listener of ours gets its
message refused for now."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

FILTER = Path(__file__).resolve().parents[2] / "mailorama" / "image" / "mailorama-filter"
ARGS = ["host=mail.bundy.net", "smtp=25", "submission=587,465", "errors=3"]
LISTENER = {"inbound": "198.51.100.7:4000|192.0.2.1:25", "submission": "[2001:db8::7]:4000|[::1]:587",
            "local": "unix:/var/run/smtpd.sock|unix:/var/run/smtpd.sock",
            "elsewhere": "198.51.100.7:4000|192.0.2.1:2525"}

pytestmark = pytest.mark.skipif(not shutil.which("perl"), reason="needs perl")


def run(lines: list[str], args: list[str] = ARGS) -> tuple[dict[str, str], str]:
    r = subprocess.run(["perl", str(FILTER), *args], input="\n".join(["config|ready", *lines]) + "\n",
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    results = {x.split("|")[2]: x.split("|", 3)[3] for x in r.stdout.splitlines()
               if x.startswith("filter-result|")}
    return results, r.stderr


def connect(sid: str, where: str) -> str:
    return f"report|0.7|1.5|smtp-in|link-connect|{sid}|rdns|pass|{LISTENER[where]}"


def reply(sid: str, text: str) -> str:
    return f"report|0.7|1.5|smtp-in|protocol-server|{sid}|{text}"


def ask(sid: str, phase: str, token: str, param: str = "x@y.example") -> str:
    return f"filter|0.7|1.5|smtp-in|{phase}|{sid}|{token}|{param}"


ERRORS = ["500 5.5.1 Invalid command: Command unrecognized",
          "550 Invalid recipient: <a|b@bundy.net>", "501 5.5.4 Syntax error"]


def test_cut_after_the_limit_and_logged_once():
    lines = [connect("s", "inbound"), reply("s", "250 2.0.0 Ok"), reply("s", ERRORS[0]),
             reply("s", "452 4.2.2 Mailbox full, try again later"), reply("s", ERRORS[1]),
             ask("s", "rcpt-to", "t1"), reply("s", ERRORS[2]), ask("s", "rcpt-to", "t2"),
             ask("s", "noop", "t3")]
    results, err = run(lines)
    assert results["t1"] == "proceed"                    # two errors: 4xx do not count
    assert results["t2"] == "disconnect|421 4.7.0 Too many errors, closing the connection"
    assert "error limit: disconnected 198.51.100.7 after 3 failed commands" in err
    # every filtered command of the session is refused from then on
    assert results["t3"].startswith("disconnect|421 ")
    for phase in ("helo", "ehlo", "starttls", "auth", "mail-from", "data", "rset"):
        results, _ = run(lines[:7] + [ask("s", phase, "p")])
        assert results["p"].startswith("disconnect|421 "), phase


def test_an_accepted_message_starts_the_count_again():
    lines = [connect("s", "submission"), *(reply("s", e) for e in ERRORS[:2]),
             "report|0.7|1.5|smtp-in|tx-commit|s|1a2b|500", reply("s", ERRORS[2]),
             reply("s", ERRORS[0]), ask("s", "mail-from", "t1")]
    results, err = run(lines)
    assert results["t1"] == "proceed" and "error limit" not in err
    results, err = run(lines + [reply("s", ERRORS[1]), ask("s", "mail-from", "t2")])
    assert results["t2"].startswith("disconnect|421 ")
    assert "disconnected 2001:db8::7 after 3 failed commands" in err


def test_never_for_logged_in_users_the_socket_or_when_off():
    many = [reply("s", e) for e in ERRORS * 5]
    for lines, args in (
            ([connect("s", "submission"), "report|0.7|1.5|smtp-in|link-auth|s|pass|al", *many], ARGS),
            ([connect("s", "local"), *many], ARGS),
            ([connect("s", "inbound"), *many], ARGS[:3]),
            ([connect("s", "inbound"), *many], [*ARGS[:3], "errors=0"])):
        results, err = run(lines + [ask("s", "rcpt-to", "t")], args)
        assert results["t"] == "proceed" and "error limit" not in err
    # a failed login is not a pass
    results, _ = run([connect("s", "submission"), "report|0.7|1.5|smtp-in|link-auth|s|fail|al",
                      *many, ask("s", "rcpt-to", "t")])
    assert results["t"].startswith("disconnect|421 ")


def test_a_session_on_no_listener_of_ours_is_not_passed_unjudged():
    lines = [connect("s", "elsewhere"), "report|0.7|1.5|smtp-in|tx-mail|s|1a2b|ok|a@b.example",
             "filter|0.7|1.5|smtp-in|data-line|s|d|Subject: x", "filter|0.7|1.5|smtp-in|data-line|s|d|.",
             ask("s", "commit", "c", "")]
    results, err = run(lines)
    assert results["c"].startswith("reject|451 4.3.0")
    assert "unknown listener" in err


def test_bad_settings_are_refused():
    for args in (["smtp=25", "submission=587"], [*ARGS, "errors=many"], [*ARGS, "min-free=x"],
                 [*ARGS, "nonsense"]):
        r = subprocess.run(["perl", str(FILTER), *args], input="", capture_output=True, text=True)
        assert r.returncode == 1 and "usage: mailorama-filter" in r.stderr, args


def test_the_setting_its_default_and_rendering():
    from mailorama import config as cfg
    from mailorama.render import render
    from mailorama.settings import SettingsError, settings_from
    from test_config import EXAMPLE

    assert settings_from({}, fqdn="mail.bundy.net").error_limit == 10
    smtpd = render(cfg.load(EXAMPLE), settings_from({}, fqdn="mail.bundy.net"))["config/smtpd.conf"]
    assert " errors=10\"" in smtpd and "with 10 error replies" in smtpd
    off = render(cfg.load(EXAMPLE), settings_from({"mailorama_error_limit": 0},
                                                  fqdn="mail.bundy.net"))["config/smtpd.conf"]
    assert "errors=" not in off and "error replies" not in off
    for bad in (-1, 10001, 2.5, "10", True, None):
        with pytest.raises(SettingsError) as e:
            settings_from({"mailorama_error_limit": bad}, fqdn="mail.bundy.net")
        assert "mailorama_error_limit: must be a whole number 0 (never) to 10000" in str(e.value.errors)
