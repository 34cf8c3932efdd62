"""Password guessing against the real container, as an attacker with one address would: wrong
passwords over SMTP AUTH (submission, STARTTLS) and IMAP LOGIN (STARTTLS) from 127.0.0.2, over
many connections at once, for a fixed time; first with login throttling off, then with the
default settings. Prints, per protocol, the passwords the server checked (answered "wrong")
per second, the attempts it refused unchecked, and what that rate means per day.

    flock /tmp/mor-docker.lock .venv/bin/python bench/guessing.py [--seconds 10] [--connections 16]

Needs the rig's Docker engine (bash tests/rig/up.sh --docker-only).
"""

from __future__ import annotations

import argparse
import base64
import imaplib
import smtplib
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from stack import build_image, docker, fresh_stack  # noqa: E402
from mail import smtp, tls  # noqa: E402
from mailorama.settings import THROTTLE  # noqa: E402

NAME = "mor-bench-guessing"
PORTS = {"smtp": 18525, "submission": 18587, "submissions": 18465, "imap": 18143,
         "imaps": 18993, "managesieve": 18190}
SOURCE = "127.0.0.2"


def guesses_per_day(failures: int, window: int, block: int, max_block: int,
                    seconds_per_guess: float) -> int:
    """Wrong passwords one address gets checked in a day, guessing as fast as it is answered:
    `failures` per round, then a block that doubles up to `max_block`."""
    if failures == 0:
        return int(86400 / seconds_per_guess)
    t, checked, duration = 0.0, 0, block
    while True:
        t += failures * seconds_per_guess
        if t > 86400:
            return checked
        checked += failures
        t += duration
        duration = min(2 * duration, max_block)


class IMAPFrom(imaplib.IMAP4):
    def __init__(self, port: int):
        super().__init__("127.0.0.1", port, timeout=60)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, (SOURCE, 0))


def run(protocol: str, seconds: float, connections: int) -> dict:
    """Guess for `seconds` over `connections` threads: checked (answered wrong), refused
    (SMTP; IMAP's come from Dovecot's log)."""
    totals = {"checked": 0, "refused": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def add(key, n=1):
        with lock:
            totals[key] += n

    def smtp_worker():
        while time.monotonic() < deadline:
            try:
                conn = smtp(PORTS["submission"], SOURCE)
            except (smtplib.SMTPException, OSError):
                add("refused")
                continue
            try:
                conn.ehlo("guess.test")
                conn.starttls(context=tls())
                conn.ehlo("guess.test")
                while time.monotonic() < deadline:
                    token = base64.b64encode(f"\0al\0guess{time.monotonic()}".encode()).decode()
                    code, _ = conn.docmd("AUTH", f"PLAIN {token}")
                    if code != 535:
                        add("refused")
                        break
                    add("checked")
            except (smtplib.SMTPException, OSError):
                add("refused")
            finally:
                conn.close()

    def imap_worker():
        # one LOGIN per connection: Dovecot logs each with its outcome (see imap_checked)
        while time.monotonic() < deadline:
            try:
                conn = IMAPFrom(PORTS["imap"])
            except OSError:
                continue
            try:
                conn.starttls(ssl_context=tls())
                conn.login("al", f"guess{time.monotonic()}")
            except (imaplib.IMAP4.error, OSError):
                pass
            finally:
                conn.shutdown()

    worker = smtp_worker if protocol == "smtp" else imap_worker
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    totals["seconds"] = time.monotonic() - started
    return totals


def imap_checked(logs: str) -> tuple[int, int]:
    """IMAP logins from SOURCE that Dovecot checked (a wrong password) and refused unchecked
    (the address blocked), from its log lines."""
    lines = [x for x in logs.splitlines() if "imap-login:" in x and f"rip={SOURCE}," in x]
    return (sum("(auth_failed)" in x for x in lines), sum("(user_disabled)" in x for x in lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    build_image()
    rows = []
    for label, throttle in (("before (throttle off)", {"failures": 0}), ("after (defaults)", {})):
        with tempfile.TemporaryDirectory(prefix="mor-guessing-") as base:
            stack = fresh_stack(NAME, Path(base), mailorama_listen=["127.0.0.1"],
                                mailorama_ports=PORTS, mailorama_login_throttle=throttle)
            try:
                stack.up()
                for protocol in ("smtp", "imap"):
                    r = run(protocol, args.seconds, args.connections)
                    if protocol == "imap":
                        time.sleep(1)
                        log = docker("logs", stack.name, check=False)
                        r["checked"], r["refused"] = imap_checked(
                            (log.stdout + log.stderr).decode(errors="replace"))
                    rows.append((label, protocol, r))
                    print(f"{label:22} {protocol:5} checked {r['checked']:5} "
                          f"({r['checked'] / r['seconds']:6.1f}/s), refused unchecked "
                          f"{r['refused']:5}, in {r['seconds']:.1f} s", flush=True)
            finally:
                stack.compose("down", check=False)
                stack.remove()
    print()
    print(f"Per day from one address (defaults {THROTTLE}):")
    speed = {p: r["checked"] / r["seconds"] for label, p, r in rows if label.startswith("before")}
    for label, protocol, r in rows:
        if label.startswith("before"):
            per_day = int(speed[protocol] * 86400)
        else:   # guessing at the unthrottled speed, blocked after each round
            per_day = guesses_per_day(**THROTTLE, seconds_per_guess=1 / speed[protocol])
        print(f"  {label:22} {protocol:5} {per_day:>10,} passwords checked")

if __name__ == "__main__":
    main()
