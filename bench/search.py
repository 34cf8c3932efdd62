"""Search benchmark: IMAP SEARCH BODY/TEXT over a mailbox of 10,000 messages, with and
without the full-text index (mailorama_search_index: Dovecot's flatcurve).

    .venv/bin/python bench/search.py [--messages 10000] [--runs 7]

Needs the rig's Docker engine. For each setting: the mailbox is written as a Maildir (as an
import leaves it), opened once, then each query runs --runs times; prints the median and every
run, the first search (which builds a missing index), the index size, the container's memory
(docker stats) while idle after the searches and its peak (cgroup) during them.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from container import line, memory_mib  # noqa: E402
from mail import imap  # noqa: E402
from stack import PASSWORDS, build_image, docker, fresh_stack  # noqa: E402

NAME = "mor-bench-search"
PORTS = {"smtp": 16525, "submission": 16587, "submissions": 16465, "imap": 16143,
         "imaps": 16993, "managesieve": 16190}
SEED = 11


def queries() -> list[tuple[str, str]]:
    """A word in 3 messages (BODY and TEXT), the most common word, a word in none."""
    common = vocabulary(random.Random(SEED))[0]
    return [("BODY", "zanzibarquux"), ("TEXT", "zanzibarquux"), ("BODY", common),
            ("BODY", "notawordanywhere")]


def vocabulary(rng: random.Random, size: int = 5000) -> list[str]:
    syllables = ["ka", "lo", "mar", "ni", "te", "ras", "po", "vu", "shi", "den", "gal", "or"]
    return sorted({"".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
                   for _ in range(size * 2)})[:size]


def write_maildir(maildir: Path, count: int, uid: int = 1000) -> None:
    """`count` messages of ~2 KB, Zipf-like word frequencies, 3 carrying 'zanzibarquux'."""
    rng = random.Random(SEED)
    words = vocabulary(rng)
    weights = [1 / (rank + 1) for rank in range(len(words))]
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    rare = {count // 4, count // 2, count - 5}
    base = 1_600_000_000
    for n in range(count):
        body = " ".join(rng.choices(words, weights, k=300))
        if n in rare:
            body += " zanzibarquux"
        text = (f"From: sender{n % 97}@example.org\r\nTo: al@bundy.net\r\n"
                f"Subject: message {n} {rng.choice(words)}\r\n"
                f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime(base + n * 600))}"
                f"\r\nMessage-ID: <bench-{n}@example.org>\r\n\r\n"
                + "\r\n".join(body[i:i + 72] for i in range(0, len(body), 72)) + "\r\n")
        data = text.encode()
        path = maildir / "cur" / f"{base + n * 600}.M{n}P1.bench,S={len(data)}:2,S"
        path.write_bytes(data)
        os.utime(path, (base + n * 600, base + n * 600))
    for root, dirs, files in os.walk(maildir.parent):
        for name in dirs + files:
            os.chown(Path(root) / name, uid, uid)
    os.chown(maildir.parent, uid, uid)


def cgroup(name: str) -> Path:
    cid = docker("inspect", "-f", "{{.Id}}", name).stdout.decode().strip()
    for path in (Path(f"/sys/fs/cgroup/memory/docker/{cid}"),
                 Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope")):
        if path.exists():
            return path
    raise RuntimeError(f"no memory cgroup for {name}")


def reset_peak(group: Path) -> None:
    peak = group / "memory.max_usage_in_bytes"
    if peak.exists():
        peak.write_text("0")


def peak_mib(group: Path) -> float:
    for name in ("memory.max_usage_in_bytes", "memory.peak"):
        if (group / name).exists():
            return int((group / name).read_text()) / 2**20
    return float("nan")


def split_mib(group: Path) -> str:
    """The cgroup's process memory and page cache (what docker stats adds up)."""
    stat = dict(line.split() for line in (group / "memory.stat").read_text().splitlines())
    anon = int(stat.get("total_rss", stat.get("anon", 0))) / 2**20
    cache = int(stat.get("total_cache", stat.get("file", 0))) / 2**20
    return f"processes {anon:.1f} MiB, page cache {cache:.1f} MiB"


def timed_search(conn, key: str, word: str) -> tuple[float, int]:
    t0 = time.monotonic()
    status, data = conn.search(None, key, f'"{word}"')
    elapsed = time.monotonic() - t0
    assert status == "OK", data
    return elapsed, len(data[0].split())


def measure(image: str, search_index: bool, messages: int, runs: int) -> None:
    label = "with the index" if search_index else "without"
    with tempfile.TemporaryDirectory(prefix="mor-bench-search-") as tmp:
        stack = fresh_stack(NAME, Path(tmp), mailorama_image=image, mailorama_ports=PORTS,
                            mailorama_listen=["127.0.0.1"], mailorama_search_index=search_index)
        try:
            stack.up()
            write_maildir(stack.data / "mail" / "al" / "Maildir", messages)
            conn = imap(PORTS["imap"], "al", PASSWORDS["al"])
            conn.socket().settimeout(600)
            t0 = time.monotonic()
            conn.select("INBOX", readonly=True)
            print(f"  {label}: opened INBOX ({messages} messages) in "
                  f"{time.monotonic() - t0:.2f} s")
            group = cgroup(NAME)
            reset_peak(group)
            first, hits = timed_search(conn, "BODY", "zanzibarquux")
            print(f"  {label}: first search {first:.2f} s ({hits} hits; builds the index when "
                  "there is one to build)")
            for key, word in queries():
                times = []
                for _ in range(runs):
                    elapsed, hits = timed_search(conn, key, word)
                    times.append(elapsed * 1000)
                line(f"  {label}: SEARCH {key} {word} ({hits})", times, "ms", "{:.1f}")
            conn.logout()
            line(f"  {label}: peak memory while searching", [peak_mib(group)], "MiB", "{:.1f}")
            index = sum(p.stat().st_size for p in (stack.data / "mail" / "al").rglob("*")
                        if p.is_file() and "flatcurve" in str(p))
            mail = sum(p.stat().st_size for p in (stack.data / "mail" / "al" / "Maildir" / "cur")
                       .iterdir())
            print(f"  {label}: index {index / 2**20:.1f} MiB for {mail / 2**20:.1f} MiB of mail")
            time.sleep(60)
            line(f"  {label}: idle memory 60 s after", [memory_mib(stack)], "MiB", "{:.1f}")
            print(f"  {label}: of which {split_mib(group)}")
        finally:
            stack.compose("down", check=False)
            stack.remove()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    image = build_image("mor-bench:latest")
    for search_index in (False, True):
        measure(image, search_index, args.messages, args.runs)


if __name__ == "__main__":
    main()
