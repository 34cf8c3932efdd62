"""Load with faults: many messages over many SMTP sessions, `docker kill` of the container in the
middle and a recreate (`compose up -d --force-recreate`); the clients keep sending and retry
refused or broken connections. At the end: how many messages got 250 (accepted), how many are in
the Maildirs (delivered), lost (accepted, not delivered after a generous wait), duplicates, and
the time.

    .venv/bin/python bench/faults.py [--messages 10000] [--sessions 20] [--dockerd]

--dockerd also restarts the rig's dockerd (tests/rig/up.sh starts it again) and checks that the
container comes back by itself (restart: unless-stopped). Other work on this machine uses the
same dockerd: run it only under the rig's lock (flock /tmp/mor-docker.lock); containers that
were running before and have no restart policy are started again.
Needs the rig's Docker engine (bash tests/rig/up.sh --docker-only).
"""

from __future__ import annotations

import argparse
import os
import signal
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from stack import build_image, docker, fresh_stack  # noqa: E402

NAME = "mor-bench-faults"
PORTS = {"smtp": 15525, "submission": 15587, "submissions": 15465, "imap": 15143,
         "imaps": 15993, "managesieve": 15190}
ACCOUNTS = ("al", "peg", "kelly", "bud")
TAG = "fault-"
DOCKERD_PID = Path("/run/mailorama-rig/dockerd.pid")


@dataclass
class Result:
    messages: int
    sessions: int
    accepted: set[int] = field(default_factory=set)
    refused: int = 0                  # answers other than 250 (the client sent again)
    broken: int = 0                   # connections refused or cut (the client sent again)
    delivered: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    sent_seconds: float = 0.0         # until the last client finished sending
    kill_at: int = 0                  # accepted messages when the container was killed
    down_seconds: float = 0.0         # from the kill until the recreated container was ready

    @property
    def lost(self) -> list[int]:
        return sorted(self.accepted - set(self.delivered))

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for n in self.delivered.values() if n > 1)

    @property
    def unacknowledged(self) -> int:
        """Delivered without a 250 the client saw (the connection broke after the data)."""
        return len(set(self.delivered) - self.accepted)

    def lines(self) -> list[str]:
        return [f"messages          {self.messages} over {self.sessions} sessions",
                f"accepted (250)    {len(self.accepted)}",
                f"delivered         {len(self.delivered)} distinct in Maildirs "
                f"({sum(self.delivered.values())} files)",
                f"lost              {len(self.lost)}",
                f"duplicates        {self.duplicates}",
                f"unacknowledged    {self.unacknowledged} (delivered, client saw no 250)",
                f"retried sends     {self.refused} refused, {self.broken} broken connections",
                f"killed at         {self.kill_at} accepted; down {self.down_seconds:.1f} s",
                f"time              {self.seconds:.1f} s (first send to last delivery; "
                f"sending {self.sent_seconds:.1f} s)"]


def delivered(stack) -> Counter:
    """Message numbers in the Maildirs of ACCOUNTS (new/ and cur/), with how often each is there."""
    found = Counter()
    for account in ACCOUNTS:
        for sub in ("new", "cur"):
            folder = stack.data / "mail" / account / "Maildir" / sub
            for path in folder.glob("*") if folder.exists() else ():
                try:
                    head = path.read_bytes()[:2048]
                except FileNotFoundError:       # moved from new/ to cur/ meanwhile
                    continue
                start = head.find(b"Subject: " + TAG.encode())
                if start >= 0:
                    end = head.index(b"\n", start)
                    found[int(head[start + 9 + len(TAG):end].strip())] += 1
    return found


def queue_empty(stack) -> bool:
    out = docker("exec", stack.name, "smtpctl", "show", "queue", check=False)
    return out.returncode == 0 and out.stdout.strip() == b""


def run(stack, messages: int, sessions: int, wait: float = 300) -> Result:
    """Send `messages` over `sessions`, kill and recreate the container half-way, wait until
    every accepted message is delivered (or `wait` seconds pass), count."""
    result = Result(messages, sessions)
    port = stack.settings.port["smtp"]
    lock = threading.Lock()
    half = threading.Event()
    stop = time.monotonic() + wait + 600       # the clients never loop forever

    def client(numbers: list[int]):
        conn = None
        pending = list(numbers)
        while pending and time.monotonic() < stop:
            n = pending[0]
            try:
                if conn is None:
                    conn = smtplib.SMTP("127.0.0.1", port, timeout=30)
                    conn.ehlo("faults.test")
                to = f"{ACCOUNTS[n % len(ACCOUNTS)]}@bundy.net"
                body = (f"From: bob@rooney.example\r\nTo: {to}\r\nSubject: {TAG}{n}\r\n"
                        f"Message-ID: <{TAG}{n}@faults.test>\r\n\r\n{'x' * 300}\r\n")
                conn.sendmail("bob@rooney.example", [to], body)
            except smtplib.SMTPResponseException:          # 4xx/5xx: send it again
                with lock:
                    result.refused += 1
                if conn is not None:
                    try:
                        conn.rset()
                    except (OSError, smtplib.SMTPException):
                        conn = None
                time.sleep(0.1)
                continue
            except (OSError, smtplib.SMTPException):       # refused or cut: reconnect
                with lock:
                    result.broken += 1
                conn = None
                time.sleep(0.2)
                continue
            pending.pop(0)
            with lock:
                result.accepted.add(n)
                if len(result.accepted) >= messages // 2:
                    half.set()
        if conn is not None:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                pass

    threads = [threading.Thread(target=client, args=(list(range(i, messages, sessions)),))
               for i in range(sessions)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    half.wait(timeout=wait)
    with lock:
        result.kill_at = len(result.accepted)
    killed = time.monotonic()
    docker("kill", stack.name)
    stack.compose("up", "-d", "--force-recreate")
    stack.wait_ready(timeout=120)
    result.down_seconds = time.monotonic() - killed
    for t in threads:
        t.join()
    result.sent_seconds = time.monotonic() - t0
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        result.delivered = delivered(stack)
        if result.accepted <= set(result.delivered) and queue_empty(stack):
            break
        time.sleep(1)
    result.seconds = time.monotonic() - t0
    return result


def restart_dockerd(stack) -> str:
    """Stop the rig's dockerd, start it again with the rig's script, and say whether the
    container came back by itself. Containers that ran before and have no restart policy are
    started again by hand (they are other work's)."""
    running = docker("ps", "-q").stdout.decode().split()
    manual = [c for c in running if docker(
        "inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", c).stdout.strip() in (b"", b"no")]
    pid = int(DOCKERD_PID.read_text())
    os.kill(pid, signal.SIGTERM)
    for _ in range(300):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    subprocess.run(["bash", str(REPO / "tests/rig/up.sh"), "--docker-only"], check=True,
                   capture_output=True, timeout=300)
    for c in manual:
        docker("start", c, check=False)
    try:
        stack.wait_ready(timeout=120)
    except AssertionError as e:
        return f"container NOT back after a dockerd restart: {e}"
    policy = docker("inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", stack.name)
    return f"container back by itself after a dockerd restart (restart: {policy.stdout.decode().strip()})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--wait", type=float, default=300, help="seconds to wait for delivery")
    parser.add_argument("--dockerd", action="store_true", help="also restart the rig's dockerd")
    args = parser.parse_args()

    image = build_image("mor-bench:latest")
    with tempfile.TemporaryDirectory(prefix="mor-faults-") as tmp:
        stack = fresh_stack(NAME, Path(tmp), mailorama_image=image, mailorama_ports=PORTS,
                            mailorama_listen=["127.0.0.1"])
        try:
            stack.up()
            result = run(stack, args.messages, args.sessions, args.wait)
            print("\n".join(result.lines()))
            if result.lost:
                print(f"lost messages: {result.lost[:20]}")
            if args.dockerd:
                print(restart_dockerd(stack))
        finally:
            stack.save_logs()
            stack.compose("down", check=False)
            stack.remove()


if __name__ == "__main__":
    main()
