"""Sieve on the real container: ManageSieve (RFC 5804) uploads and activates filters, vacation
answers once and never lists or bulk mail, and declarative filters from the config folder."""

from __future__ import annotations

import base64
import re
import socket
import ssl
import time

import pytest

from stack import PASSWORDS, Sink, fresh_stack
from mail import arrived, message, send, subjects, wait_for

pytestmark = pytest.mark.docker
NAME = "mor-test-sieve"
PORTS = {"smtp": 21525, "submission": 21587, "submissions": 21465, "imap": 21143,
         "imaps": 21993, "managesieve": 21190}
SINK_PORT = 21600
SMTP, IMAP, SIEVE = PORTS["smtp"], PORTS["imap"], PORTS["managesieve"]


class ManageSieve:
    """A minimal ManageSieve client: STARTTLS, AUTHENTICATE PLAIN, PUTSCRIPT, SETACTIVE."""

    def __init__(self, port: int, source: str = "127.0.0.1"):
        self.sock = socket.create_connection(("127.0.0.1", port), 15, (source, 0))
        self.file = self.sock.makefile("rb")
        self.capabilities = self._capabilities()

    def _line(self) -> str:
        line = self.file.readline()
        if not line:
            raise ConnectionError("the server closed the connection")
        return line.rstrip(b"\r\n").decode()

    def response(self) -> tuple[str, str, list[str]]:
        """(OK/NO/BYE, that line, the lines before it), literals {n} read in."""
        lines = []
        while True:
            line = self._line()
            literal = re.search(r"\{(\d+)\+?\}$", line)
            if literal:
                line = line[:literal.start()] + self.file.read(int(literal[1])).decode()
                line += self._line()
            status = line.split(" ", 1)[0].upper()
            if status in ("OK", "NO", "BYE"):
                return status, line, lines
            lines.append(line)

    def _capabilities(self) -> dict[str, str]:
        status, text, lines = self.response()
        assert status == "OK", text
        caps = {}
        for line in lines:
            name, _, value = line.partition(" ")
            caps[name.strip('"').upper()] = value.strip('"')
        return caps

    def command(self, line: str, literal: bytes | None = None) -> tuple[str, str, list[str]]:
        data = line.encode()
        if literal is not None:
            data += b" {%d+}\r\n" % len(literal) + literal
        self.sock.sendall(data + b"\r\n")
        return self.response()

    def starttls(self):
        status, text, _ = self.command("STARTTLS")
        assert status == "OK", text
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # self-signed
        self.sock = context.wrap_socket(self.sock)
        self.file = self.sock.makefile("rb")
        self.capabilities = self._capabilities()   # sent again after TLS (RFC 5804 2.2)

    def authenticate(self, user: str, password: str) -> tuple[str, str, list[str]]:
        token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        return self.command(f'AUTHENTICATE "PLAIN" "{token}"')

    def putscript(self, name: str, script: str) -> tuple[str, str, list[str]]:
        return self.command(f'PUTSCRIPT "{name}"', script.encode())

    def close(self):
        try:
            self.command("LOGOUT")
        finally:
            self.sock.close()


def logged_in(user: str) -> ManageSieve:
    client = ManageSieve(SIEVE, source="127.0.0.2")   # not "secure" to Dovecot: TLS needed
    client.starttls()
    status, text, _ = client.authenticate(user, PASSWORDS[user])
    assert status == "OK", text
    return client


DECLARATIVE = """require ["fileinto", "mailbox"];
# kelly's filter, in git
if header :contains "subject" "[school]" {
  fileinto :create "School";
}
"""


@pytest.fixture(scope="module")
def sink():
    with Sink(SINK_PORT) as s:
        yield s


@pytest.fixture(scope="module")
def box(image, tmp_path_factory, sink):
    stack = fresh_stack(NAME, tmp_path_factory.mktemp("sieve"), mailorama_listen=["127.0.0.1"],
                        mailorama_ports=PORTS, mailorama_relay_host=f"127.0.0.1:{SINK_PORT}")
    (stack.config_dir / "sieve").mkdir()
    (stack.config_dir / "sieve" / "kelly.sieve").write_text(DECLARATIVE)
    stack.up()
    yield stack
    stack.save_logs()
    stack.compose("down", check=False)
    stack.remove()


def test_managesieve_needs_tls_then_files_into_a_folder(box):
    client = ManageSieve(SIEVE, source="127.0.0.2")
    assert "STARTTLS" in client.capabilities and client.capabilities.get("SASL") == ""
    status, text, _ = client.authenticate("al", PASSWORDS["al"])
    assert status == "NO" and "disallowed" in text.lower(), text
    client.starttls()
    assert "PLAIN" in client.capabilities["SASL"]
    assert client.authenticate("al", "wrong")[0] == "NO"
    assert client.authenticate("al", PASSWORDS["al"])[0] == "OK"
    for extension in ("fileinto", "vacation", "envelope", "imap4flags", "subaddress"):
        assert extension in client.capabilities["SIEVE"].split()
    status, text, _ = client.putscript("broken", 'fileinto "x"\n')
    assert status == "NO" and "line 2: error" in text, text
    script = ('require ["fileinto", "mailbox", "imap4flags", "envelope"];\n'
              'if allof (header :contains "subject" "[shoes]",\n'
              '          envelope :domain :is "from" "garys-shoes.example") {\n'
              '  addflag "\\\\Flagged";\n'
              '  fileinto :create "Shoes";\n'
              '}\n')
    assert client.putscript("shoes", script)[0] == "OK"
    assert client.command('SETACTIVE "shoes"')[0] == "OK"
    assert client.command("LISTSCRIPTS")[2] == ['"shoes" ACTIVE']
    client.close()

    send(SMTP, message("gary@garys-shoes.example", "al@bundy.net", "new boots [shoes]"))
    send(SMTP, message("bob@rooney.example", "al@bundy.net", "not from gary [shoes]"))
    assert wait_for(lambda: subjects(IMAP, "al", PASSWORDS["al"], "Shoes"),
                    what="the filed message") == ["new boots [shoes]"]
    assert arrived(IMAP, "al", PASSWORDS["al"], "not from gary [shoes]")
    assert "new boots [shoes]" not in subjects(IMAP, "al", PASSWORDS["al"])


VACATION = """require ["vacation"];
vacation :days 1 :subject "Away" :addresses ["peg@bundy.net"] "Peg is at the mall.";
"""


def test_vacation_replies_once_and_never_to_lists_or_bulk(box, sink):
    client = logged_in("peg")
    assert client.putscript("away", VACATION)[0] == "OK"
    assert client.command('SETACTIVE "away"')[0] == "OK"
    client.close()

    def sent(subject, sender, envelope=None, **headers):
        msg = message(sender, "peg@bundy.net", subject)
        for name, value in headers.items():
            msg[name.replace("_", "-")] = value
        send(SMTP, msg, sender=sender if envelope is None else envelope)

    sent("first", "bob@rooney.example")
    sent("second", "bob@rooney.example")
    sent("list mail", "news@lists.example", List_Id="<news.lists.example>")
    sent("bulk mail", "deals@shop.example", Precedence="bulk")
    sent("a bounce", "mailer-daemon@rooney.example", envelope="")
    sent("last", "jim@rooney.example")
    for subject in ("first", "second", "list mail", "bulk mail", "last"):
        assert arrived(IMAP, "peg", PASSWORDS["peg"], subject)
    # the last one's reply arrives after every earlier one's would have
    wait_for(lambda: [m for m in sink.messages if m["to"] == ["jim@rooney.example"]],
             timeout=30, what="the vacation reply to jim")
    time.sleep(1)
    replies = [m for m in sink.messages if b"Peg is at the mall." in m["data"]]
    assert sorted(r["to"][0] for r in replies) == ["bob@rooney.example", "jim@rooney.example"]
    assert [r["from"] for r in replies] == ["<>", "<>"]     # sent with a null sender
    assert all(b"Auto-Submitted: auto-replied" in r["data"] for r in replies)


def test_declarative_filter_is_deployed_and_a_bad_one_refused(box):
    send(SMTP, message("bob@rooney.example", "kelly@bundy.net", "homework [school]"))
    assert wait_for(lambda: subjects(IMAP, "kelly", PASSWORDS["kelly"], "School"),
                    what="the filed message") == ["homework [school]"]
    # a bad script: refused with file:line, nothing changes live
    live = box.exec("cat", "/etc/dovecot/mail-o-rama/sieve/kelly.sieve").stdout
    (box.config_dir / "sieve" / "kelly.sieve").write_text(
        DECLARATIVE.replace('fileinto :create "School";', 'fileinto :create "School"'))
    box.render()
    result = box.exec("mailorama-apply", check=False)
    assert result.returncode == 1
    assert "sieve/kelly.sieve:5: error: expected end of command ';'" in result.stderr.decode()
    assert box.exec("cat", "/etc/dovecot/mail-o-rama/sieve/kelly.sieve").stdout == live
    # only kelly's group reads it
    mode = box.exec("stat", "-c", "%U:%g %a", "/etc/dovecot/mail-o-rama/sieve/kelly.sieve")
    assert mode.stdout.decode().split() == ["root:1002", "640"]
    # removed from git: removed from the server
    (box.config_dir / "sieve" / "kelly.sieve").unlink()
    box.render()
    assert b"Sieve filter of kelly" in box.exec("mailorama-apply").stdout
    send(SMTP, message("bob@rooney.example", "kelly@bundy.net", "more homework [school]"))
    assert arrived(IMAP, "kelly", PASSWORDS["kelly"], "more homework [school]")
