"""Container benchmark: image size, idle memory, where it goes, seconds to SMTP banner,
delivery rate.

    .venv/bin/python bench/container.py [--runs 3] [--messages 1000] [--sessions 4] [--idle-only]

Needs the rig's Docker engine (bash tests/rig/up.sh --docker-only). Prints one line a figure,
the median of --runs runs with every run's value. Idle memory is `docker stats` after 60 s
idle; the table under it is each process's PSS (read from the host's /proc: run as root).
Goals (issue 11): 62 MB of layers above the base, idle <= 32 MiB; ready < 1 s, >= 150
messages/s into Maildir.
"""

from __future__ import annotations

import argparse
import smtplib
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from stack import build_image, docker, fresh_stack  # noqa: E402

NAME = "mor-bench-container"
PORTS = {"smtp": 17525, "submission": 17587, "submissions": 17465, "imap": 17143, "imaps": 17993,
         "managesieve": 17190}


def banner_seconds(stack) -> float:
    """From `docker start` to the SMTP banner on the smtp port."""
    docker("stop", "-t", "10", stack.name)
    t0 = time.monotonic()
    docker("start", stack.name)
    while time.monotonic() - t0 < 30:
        try:
            with socket.create_connection(("127.0.0.1", PORTS["smtp"]), timeout=1) as s:
                s.settimeout(5)
                if s.recv(64).startswith(b"220"):
                    return time.monotonic() - t0
        except OSError:
            time.sleep(0.01)
    raise RuntimeError("no SMTP banner within 30 s")


def memory_mib(stack) -> float:
    """docker stats' memory usage (it says 0B until its first sample after a start)."""
    for _ in range(10):
        usage = docker("stats", "--no-stream", "--format", "{{.MemUsage}}", stack.name)
        value = usage.stdout.decode().split("/")[0].strip()
        if value[-3:] in ("KiB", "MiB", "GiB"):
            return float(value[:-3]) * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024}[value[-3:]]
        time.sleep(1)
    raise RuntimeError(f"docker stats says {value!r} for {stack.name}")


def processes(stack) -> list[tuple[str, float, float]]:
    """(process, PSS MiB, private MiB) of every process in the container, largest first."""
    cid = docker("inspect", "-f", "{{.Id}}", stack.name).stdout.decode().strip()
    for group in (Path(f"/sys/fs/cgroup/memory/docker/{cid}"),
                  Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope")):
        if (group / "cgroup.procs").exists():
            break
    else:
        return []
    out = []
    for pid in (group / "cgroup.procs").read_text().split():
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            name = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        kib = {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in
                                                   rollup.splitlines()[1:])}
        private = kib.get("Private_Clean", 0) + kib.get("Private_Dirty", 0)
        out.append((name.strip()[:60], kib.get("Pss", 0) / 1024, private / 1024))
    return sorted(out, key=lambda row: -row[1])


def count_delivered(maildirs: list[Path]) -> int:
    return sum(len(list((m / sub).iterdir())) for m in maildirs for sub in ("new", "cur")
               if (m / sub).exists())


def delivery_rate(stack, messages: int, sessions: int) -> tuple[float, int]:
    """Messages/s from the first connection until all are in Maildir; and how many got 4xx."""
    maildirs = [stack.data / "mail" / name / "Maildir" for name in ("al", "peg")]
    before = count_delivered(maildirs)
    deferred = []
    body = b"Subject: bench\r\n\r\n" + b"x" * 400 + b"\r\n"

    def session(n):
        with smtplib.SMTP("127.0.0.1", PORTS["smtp"], timeout=60) as s:
            s.ehlo("bench.test")
            for _ in range(n):
                try:
                    s.sendmail("bob@rooney.example", ["al@bundy.net"], body)
                except smtplib.SMTPException as e:
                    deferred.append(e)

    per = messages // sessions
    threads = [threading.Thread(target=session, args=(per,)) for _ in range(sessions)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    target = before + per * sessions - len(deferred)
    while count_delivered(maildirs) < target:
        if time.monotonic() - t0 > 300:
            raise RuntimeError("not all delivered within 300 s")
        time.sleep(0.05)
    return per * sessions / (time.monotonic() - t0), len(deferred)


def line(label: str, values: list[float], unit: str, fmt: str = "{:.2f}") -> None:
    runs = ", ".join(fmt.format(v) for v in values)
    print(f"{label:<34} {fmt.format(statistics.median(values)):>9} {unit:<6} (runs: {runs})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--idle-only", action="store_true",
                        help="only image size and idle memory (no banner timing, no bursts)")
    parser.add_argument("--no-search-index", action="store_true",
                        help="mailorama_search_index = False (what the index costs)")
    args = parser.parse_args()

    image = build_image("mor-bench:latest")
    size = int(docker("image", "inspect", "-f", "{{.Size}}", image).stdout)
    base = int(docker("image", "inspect", "-f", "{{.Size}}", "debian:trixie-slim").stdout)
    print(f"{'image size':<34} {size / 1e6:>9.1f} MB     (base {base / 1e6:.1f} MB, "
          f"package layer {(size - base) / 1e6:.1f} MB)")

    with tempfile.TemporaryDirectory(prefix="mor-bench-") as tmp:
        stack = fresh_stack(NAME, Path(tmp), mailorama_image=image, mailorama_ports=PORTS,
                            mailorama_listen=["127.0.0.1"],
                            mailorama_search_index=not args.no_search_index)
        try:
            stack.up()
            if not args.idle_only:
                line("ready: start to SMTP banner",
                     [banner_seconds(stack) for _ in range(args.runs)], "s")
            stack.wait_ready()
            time.sleep(60)
            idle = []
            for _ in range(args.runs):
                idle.append(memory_mib(stack))
                time.sleep(5)
            line("idle memory (60 s idle)", idle, "MiB", "{:.1f}")
            rows = processes(stack)
            for name, pss, private in rows:
                print(f"    {pss:5.2f} MiB PSS {private:5.2f} MiB private  {name}")
            if rows:
                print(f"    {sum(r[1] for r in rows):5.2f} MiB PSS in all (the rest of docker "
                      "stats: kernel memory, page cache)")
            if args.idle_only:
                return
            rates, deferred = [], 0
            for _ in range(args.runs):
                rate, d = delivery_rate(stack, args.messages, args.sessions)
                rates.append(rate)
                deferred += d
            line(f"delivery {args.messages} msgs / {args.sessions} sessions", rates, "msg/s",
                 "{:.0f}")
            print(f"{'deferred or refused (4xx/5xx)':<34} {deferred:>9}")
            line("memory after the bursts", [memory_mib(stack)], "MiB", "{:.1f}")
        finally:
            stack.compose("down", check=False)
            stack.remove()


if __name__ == "__main__":
    main()
