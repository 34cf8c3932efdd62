"""Real SMTP and IMAP clients for the integration tests; they talk to 127.0.0.x only."""

from __future__ import annotations

import imaplib
import smtplib
import ssl
import time
from email.message import EmailMessage


def tls() -> ssl.SSLContext:
    """The server's certificate is self-signed: encrypt, do not verify."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def message(sender: str, to: str | list[str], subject: str, body: str = "hello\n") -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to if isinstance(to, str) else ", ".join(to), subject
    msg["Message-ID"] = f"<{subject.replace(' ', '-')}@mailorama.test>"
    msg.set_content(body)
    return msg


def smtp(port: int, source: str = "127.0.0.1", host: str = "127.0.0.1",
         timeout: float = 15) -> smtplib.SMTP:
    return smtplib.SMTP(host, port, source_address=(source, 0), timeout=timeout)


def send(port: int, msg: EmailMessage, to: list[str] | None = None, sender: str | None = None,
         login: tuple[str, str] | None = None, starttls: bool = False, source: str = "127.0.0.1"):
    with smtp(port, source) as s:
        s.ehlo("client.test")
        if starttls:
            s.starttls(context=tls())
            s.ehlo("client.test")
        if login:
            s.login(*login)
        return s.send_message(msg, from_addr=sender, to_addrs=to)


def imap(port: int, user: str, password: str, implicit_tls: bool = False,
         source: str = "127.0.0.1") -> imaplib.IMAP4:
    if implicit_tls:
        conn = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=tls(), timeout=15)
    else:
        conn = imaplib.IMAP4("127.0.0.1", port, timeout=15)
        if source != "127.0.0.1":
            raise ValueError("use imap_raw for another source address")
        conn.starttls(ssl_context=tls())
    conn.login(user, password)
    return conn


def subjects(port: int, user: str, password: str, mailbox: str = "INBOX") -> list[str]:
    """Subjects of the messages in a mailbox, read over IMAP (STARTTLS)."""
    conn = imap(port, user, password)
    try:
        conn.select(mailbox, readonly=True)
        _, data = conn.search(None, "ALL")
        out = []
        for num in data[0].split():
            _, parts = conn.fetch(num, "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            out.append(parts[0][1].decode().partition(":")[2].strip())
        return out
    finally:
        conn.logout()


def fetch(port: int, user: str, password: str, subject: str) -> bytes:
    """The whole message with `subject`, read over IMAP."""
    conn = imap(port, user, password)
    try:
        conn.select("INBOX", readonly=True)
        _, data = conn.search(None, "SUBJECT", f'"{subject}"')
        nums = data[0].split()
        assert nums, f"no message {subject!r} for {user}"
        _, parts = conn.fetch(nums[-1], "(BODY.PEEK[])")
        return parts[0][1]
    finally:
        conn.logout()


def wait_for(predicate, timeout: float = 20, interval: float = 0.2, what: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (OSError, imaplib.IMAP4.error, smtplib.SMTPException) as e:
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def arrived(port: int, user: str, password: str, subject: str, timeout: float = 20) -> list[str]:
    return wait_for(lambda: subject in subjects(port, user, password) and subjects(port, user, password),
                    timeout, what=f"{subject!r} in {user}'s INBOX")
