"""The deploy's decisions as pure functions: host facts in, steps (or refusals) out."""

import dataclasses

from mailorama.decide import (MSMTP_DIVERTED, HostMailPlan, Step, Summary, docker_plan,
                              host_mail_plan, missing_addresses, port_conflicts,
                              selector_clashes, stack_plan, summary_lines)
from mailorama.facts import SENDMAIL, Container, HostState, Listener, MailoramaHost
from mailorama.settings import settings_from

RUNNING = Container("running", "2026-11-27T08:00:00Z", "sha256:1")
READY = HostState(docker=True, daemon=True, compose="docker compose", image="sha256:1",
                  container=RUNNING, os=("debian", "13"), packages=frozenset({"cron", "msmtp-mta"}))


def settings(**data):
    return settings_from({f"mailorama_{k}": v for k, v in data.items()}, fqdn="mail.bundy.net")


def test_fact_output_parses_into_host_state():
    output = ["## files", "600 /opt/m/config/virtuals", "## sums", "abc  /opt/m/config/virtuals",
              "## docker", "/usr/bin/docker", "## docker_package", "docker-ce-cli",
              "## daemon", "## systemd", "yes", "## container",
              "restarting 2026-11-27T08:00:00Z sha256:2 7", "## listeners",
              '0 127.0.0.1:25 users:(("exim4",pid=812,fd=4))',
              '1 0.0.0.0:993 users:(("dovecot",pid=90,fd=30))', "## sendmail",
              "diversion by LOCAL from: /usr/sbin/sendmail", "msmtp-mta: /usr/sbin/sendmail",
              "## truename", MSMTP_DIVERTED, "## host_mail_for", "0 old-box"]
    have = MailoramaHost().process(output)
    assert have.files == {"/opt/m/config/virtuals": (0o600, "abc")}
    assert have.docker and not have.daemon and have.systemd
    assert have.docker_package == "docker-ce-cli"
    assert have.container == Container("restarting", "2026-11-27T08:00:00Z", "sha256:2", 7)
    assert have.listeners == (Listener("127.0.0.1", 25, "exim4", 812, False),
                              Listener("0.0.0.0", 993, "dovecot", 90, True))
    assert have.sendmail_owner == "msmtp-mta" and have.sendmail_truename == MSMTP_DIVERTED
    assert have.host_mail_for == ("old-box", False)
    assert MailoramaHost().process(["## host_mail_for"]).host_mail_for is None


def test_a_port_taken_by_another_process_is_named_with_its_setting():
    have = HostState(listeners=(Listener("0.0.0.0", 25, "exim4", 812, False),
                                Listener("127.0.0.1", 993, "dovecot", 90, True),
                                Listener("10.0.0.1", 587, "other", 5, False)))
    problems = port_conflicts(settings(listen=["127.0.0.1"]), have)
    assert len(problems) == 1
    assert "port 25 on 0.0.0.0 is taken by 'exim4' (pid 812)" in problems[0]
    assert "mailorama_ports['smtp']" in problems[0]
    # listening on every address collides with a listener on any address
    assert len(port_conflicts(settings(), have)) == 2
    assert port_conflicts(settings(ports={"smtp": 2525, "submission": 2587}), have) == []


def test_docker_plan():
    assert docker_plan(settings(), READY).errors == ()
    stopped = HostState(docker=True, compose="docker compose", systemd=True)
    assert docker_plan(settings(), stopped).start
    no_systemd = docker_plan(settings(), HostState(docker=True, compose="docker compose"))
    assert "daemon does not answer" in no_systemd.errors[0]
    assert "no docker command" in docker_plan(settings(), HostState()).errors[0]
    fresh = docker_plan(settings(install_docker=True), HostState(os=("debian", "12")))
    assert fresh.packages == ("docker.io", "docker-compose") and fresh.compose == "docker-compose"
    # docker.com's Docker is left alone even when asked to install Docker
    ce = HostState(docker=True, daemon=True, compose="docker compose", os=("debian", "12"),
                   docker_package="docker-ce-cli")
    assert docker_plan(settings(install_docker=True), ce).packages == ()
    assert "not centos 9" in docker_plan(settings(install_docker=True),
                                         HostState(os=("centos", "9"))).errors[0]


def test_stack_plan():
    assert stack_plan(READY, [], [], [], []) == stack_plan(READY, [], [], [], [])
    live = stack_plan(READY, ["/opt/m/config/virtuals"], [], [], [])
    assert not live.rebuild and not live.start and live.apply == ("virtuals",)
    assert stack_plan(READY, [], ["/opt/m/image/apply"], [], []).rebuild
    assert stack_plan(READY, [], [], ["/opt/m/compose.yaml"], []).start
    stopped = HostState(image="sha256:1", container=Container("exited", "", "sha256:1"))
    assert stack_plan(stopped, ["/opt/m/config/virtuals"], [], [], []).start
    assert stack_plan(HostState(), [], [], [], []).rebuild


def test_host_mail_state_machine():
    fresh = host_mail_plan(settings(), HostState())
    assert fresh.divert and set(fresh.packages) == {"cron", "msmtp-mta"} and not fresh.error
    plain = HostState(files={SENDMAIL: (0o777, None)}, sendmail_owner="msmtp-mta",
                      packages=frozenset({"cron", "msmtp-mta"}))
    assert host_mail_plan(settings(host_mail="shim"), plain).divert
    ours = HostState(files={SENDMAIL: (0o755, "x"), "/etc/msmtprc": (0o644, "y")},
                     sendmail_shim=True, sendmail_truename=MSMTP_DIVERTED,
                     packages=frozenset({"cron", "msmtp-mta"}))
    assert host_mail_plan(settings(), ours) == host_mail_plan(settings(host_mail="shim"), ours)
    assert not host_mail_plan(settings(), ours).divert
    gone = host_mail_plan(settings(host_mail="none"), ours)
    assert gone.undivert and set(gone.remove) == {SENDMAIL, "/etc/msmtprc"}
    exim = HostState(files={SENDMAIL: (0o755, "z")}, sendmail_owner="exim4-daemon-light")
    assert "belongs to package exim4-daemon-light" in host_mail_plan(settings(), exim).error
    assert host_mail_plan(settings(host_mail="none"), exim).remove == ()
    hand = HostState(files={SENDMAIL: (0o755, "z")}, sendmail_truename="/usr/sbin/sendmail.test")
    assert "belongs to no package" in host_mail_plan(settings(), hand).error
    assert not host_mail_plan(settings(host_mail="none"), hand).undivert


def test_one_container_serves_a_hosts_mail():
    """A second server on the host takes the host's mail over (and says so); with 'none' it
    never tears down the first one's; a container that is gone is not named."""
    ours = HostState(files={SENDMAIL: (0o755, "x"), "/etc/mail-o-rama/sendmail.ini": (0o644, "y")},
                     sendmail_shim=True, sendmail_truename=MSMTP_DIVERTED,
                     packages=frozenset({"cron", "msmtp-mta"}), host_mail_for=("box-a", True))
    taken = host_mail_plan(settings(container="box-b"), ours)
    assert taken.taken_from == "box-a" and not taken.error and not taken.remove
    assert host_mail_plan(settings(container="box-b", host_mail="none"), ours) == HostMailPlan()
    assert host_mail_plan(settings(container="box-a"), ours).taken_from is None
    assert host_mail_plan(settings(container="box-a", host_mail="none"), ours).undivert
    gone = dataclasses.replace(ours, host_mail_for=("box-a", False))
    assert host_mail_plan(settings(container="box-b"), gone).taken_from is None


def test_summary_speaks_of_what_happened():
    summary = Summary([Step("build the image", "built the image"),
                       Step("apply virtuals live", "applied virtuals live")], ["backup: daily"])
    dry = summary_lines(summary, executed=False, results=[None, None])
    assert dry[0] == "nothing was changed; a deploy would:" and "  build the image" in dry
    assert "built the image" not in dry
    failed = summary_lines(summary, executed=True, results=[False, None])
    assert failed[:2] == ["FAILED: build the image",
                          "not done (the run stopped before it): apply virtuals live"]
    assert summary_lines(summary, executed=True, results=[True, True])[:2] == [
        "built the image", "applied virtuals live"]
    assert summary_lines(Summary(), executed=True, results=[]) == ["server unchanged"]


def test_two_hosts_with_different_keys_under_one_name_clash():
    published = {}
    assert selector_clashes(published, "mx1.example", ["bundy.net"], {"rsa": "k1"}) == []
    assert selector_clashes(published, "mx2.example", ["bundy.net"], {"rsa": "k1"}) == []
    clash = selector_clashes(published, "mx2.example", ["bundy.net", "darcy.net"],
                             {"rsa": "k2", "mx2-rsa": "k2"})
    assert len(clash) == 1 and clash[0].startswith(
        "rsa._domainkey.bundy.net: mx1.example and mx2.example have different DKIM keys")
    assert "'mx2-rsa'" in clash[0]


def test_listen_addresses_the_host_lacks_are_refused():
    have = HostState(addresses=frozenset({"127.0.0.1", "::1", "192.0.2.2"}))
    assert missing_addresses(settings(listen=["127.0.0.1", "::1"]), have) == []
    problems = missing_addresses(settings(listen=["127.0.0.1", "192.0.2.7"]), have)
    assert len(problems) == 1 and problems[0].startswith(
        "mailorama_listen: 192.0.2.7 is not an address of this host")
    assert missing_addresses(settings(listen=["192.0.2.7"]), HostState()) == []   # unknown
    assert missing_addresses(settings(listen=["127.0.0.5"]), have) == []     # 127/8 is local


def test_records_of_keys_not_made_are_not_shown():
    summary = Summary([Step("make the DKIM keys", "made the DKIM keys")], ["backup: daily"],
                      records=["k=new"], records_unmade=[";; k=<deploy first>"], keys_step=0)
    assert ";; k=<deploy first>" in summary_lines(summary, executed=False, results=[None])
    assert "k=new" not in summary_lines(summary, executed=True, results=[False])
    assert "k=new" in summary_lines(summary, executed=True, results=[True])
