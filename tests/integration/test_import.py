"""Moving in: mailorama-import copies an account from another IMAP server (a second Mail-o-Rama
container on loopback) with folders, flags and dates; a second run copies only what is new."""

from __future__ import annotations

import imaplib
import os
import pty
import re
import select
import subprocess
import time

import pytest

from stack import PASSWORDS, docker, fresh_stack
from mail import imap, message, send

pytestmark = pytest.mark.docker
OLD = {"smtp": 22525, "submission": 22587, "submissions": 22465, "imap": 22143,
       "imaps": 22993, "managesieve": 22190}
NEW = {"smtp": 23525, "submission": 23587, "submissions": 23465, "imap": 23143,
       "imaps": 23993, "managesieve": 23190}
# folder -> (subject, flags, date) at the old server
MAIL = {
    "INBOX": [("from 2015", r"\Seen", "01-Mar-2015 10:00:00 +0100"),
              ("flagged", r"\Seen \Flagged", "24-Dec-2018 23:59:00 +0000"),
              ("unread", "", "02-Jan-2020 08:30:00 -0500")],
    "Archive/2019": [("old receipt", r"\Seen \Answered", "15-Jun-2019 12:00:00 +0200"),
                     ("old note", r"\Seen", "16-Jun-2019 12:00:00 +0200")],
    "Receipts": [("shoes", r"\Seen $Forwarded", "01-Feb-2021 09:00:00 +0000")],
}


def stack(image, base, name, ports):
    s = fresh_stack(name, base, mailorama_listen=["127.0.0.1"], mailorama_ports=ports)
    s.up()
    return s


@pytest.fixture(scope="module")
def servers(image, tmp_path_factory):
    base = tmp_path_factory.mktemp("import")
    old = new = None
    try:
        old = stack(image, base / "old", "mor-test-import-old", OLD)
        new = stack(image, base / "new", "mor-test-import-new", NEW)
        yield old, new
    finally:
        for s in (old, new):
            if s:
                s.save_logs()
                s.compose("down", check=False)
                s.remove()


def append(conn: imaplib.IMAP4, folder: str, subject: str, flags: str, date: str):
    if folder != "INBOX":
        conn.create(folder)
    raw = message("bob@rooney.example", "al@bundy.net", subject).as_bytes()
    status, _ = conn.append(folder, f"({flags})" if flags else None, f'"{date}"', raw)
    assert status == "OK"


def contents(port: int) -> dict[str, list[tuple[str, str, str]]]:
    """folder -> sorted (subject, flags, date) of al's messages, read over IMAP."""
    conn = imap(port, "al", PASSWORDS["al"])
    try:
        out = {}
        for folder in MAIL:
            conn.select(f'"{folder}"', readonly=True)
            _, data = conn.fetch("1:*", "(FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            rows = []
            for part in data:
                if isinstance(part, tuple):
                    meta = part[0].decode()
                    flags = " ".join(sorted(re.search(r"FLAGS \(([^)]*)\)", meta)[1].split()))
                    date = re.search(r'INTERNALDATE "([^"]+)"', meta)[1]
                    subject = part[1].decode().partition(":")[2].strip()
                    rows.append((subject, flags, imaplib.Internaldate2tuple(
                        f'INTERNALDATE "{date}"'.encode())))
            out[folder] = sorted((s, f, time.mktime(d)) for s, f, d in rows)
        return out
    finally:
        conn.logout()


def run_import(new, password: str):
    return docker("exec", "-i", new.name, "mailorama-import", "--insecure", "al",
                  f"imaps://127.0.0.1:{OLD['imaps']}", "al", input=f"{password}\n".encode(),
                  check=False)


def run_on_a_terminal(new, password: str) -> tuple[int, bytes]:
    """The import as a person runs it (docker exec -it): the password typed at the prompt."""
    main, tty = pty.openpty()
    proc = subprocess.Popen(["docker", "exec", "-it", new.name, "mailorama-import", "--insecure",
                             "al", f"imaps://127.0.0.1:{OLD['imaps']}", "al"],
                            stdin=tty, stdout=tty, stderr=tty)
    os.close(tty)
    out, typed = b"", False
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if not select.select([main], [], [], 1)[0]:
            continue
        try:
            chunk = os.read(main, 4096)
        except OSError:                      # the other end closed: done
            break
        if not chunk:
            break
        out += chunk
        if not typed and b"Password of al at 127.0.0.1: " in out:
            os.write(main, f"{password}\n".encode())
            typed = True
    os.close(main)
    return proc.wait(30), out


def stored(box) -> dict[str, str]:
    """Each stored message of al's (Dovecot's GUID: the Maildir file) -> its subject."""
    out = box.exec("doveadm", "fetch", "-u", "al", "guid hdr.subject", "all").stdout.decode()
    return dict(re.findall(r"guid: (\S+)\nhdr.subject: (.*)", out))


def test_import_folders_flags_dates_then_only_what_is_new(servers):
    old, new = servers
    conn = imap(OLD["imap"], "al", PASSWORDS["al"])
    for folder, messages in MAIL.items():
        for subject, flags, date in messages:
            append(conn, folder, subject, flags, date)
    conn.logout()
    send(NEW["smtp"], message("bob@rooney.example", "al@bundy.net", "already here"))

    result = run_import(new, "wrong")
    assert result.returncode != 0
    assert b"al" in result.stderr and b"4touchdowns" not in result.stderr

    result = run_import(new, PASSWORDS["al"])
    assert result.returncode == 0, result.stderr.decode()
    expected = contents(OLD["imap"])
    got = contents(NEW["imap"])
    got["INBOX"] = [row for row in got["INBOX"] if row[0] != "already here"]
    assert got == expected
    assert [row[0] for row in contents(NEW["imap"])["INBOX"]].count("already here") == 1
    before = stored(new)

    # later: new mail at the old server; the second run copies just that one
    conn = imap(OLD["imap"], "al", PASSWORDS["al"])
    append(conn, "INBOX", "late", "", "03-Mar-2023 03:03:03 +0000")
    conn.logout()
    status, out = run_on_a_terminal(new, PASSWORDS["al"])
    assert status == 0, out
    assert PASSWORDS["al"].encode() not in out                # typed without echo
    after = stored(new)
    assert before.items() <= after.items()
    assert [subject for guid, subject in after.items() if guid not in before] == ["late"]
    got = contents(NEW["imap"])
    got["INBOX"] = [row for row in got["INBOX"] if row[0] != "already here"]
    assert got == contents(OLD["imap"])
