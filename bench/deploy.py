"""Deploy benchmark: wall seconds of real `pyinfra inventory.py deploy.py` runs over SSH.

    .venv/bin/python bench/deploy.py [--runs 5]

Needs the whole rig (bash tests/rig/up.sh: Docker and sshd on 127.0.0.1). Prints the first
deploy, a no-change re-deploy, and no-change re-deploys with 10 and with 1,000 addresses, measured
alternately in one run (the machine is noisy: compare the ratio). Goals (issue 4): a no-change
re-deploy under 3 s, growing by less than 20% from 10 to 1,000 addresses.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from project import Project  # noqa: E402

NAME = "mor-bench-deploy"
PORTS = {"smtp": 6525, "submission": 6587, "submissions": 6465, "imap": 6143, "imaps": 6993}


def timed(project: Project, expect_change: bool) -> float:
    t0 = time.monotonic()
    out = project.deployed()
    seconds = time.monotonic() - t0
    changed = out["results"]["totals"]["success"]
    assert bool(changed) == expect_change, out["results"]["totals"]
    return seconds


def with_addresses(project: Project, example_virtuals: str, count: int) -> None:
    """`count` addresses: the example's first ones (each refers only to earlier lines), then
    generated ones."""
    base = [line for line in example_virtuals.splitlines() if line and not line.startswith("#")]
    extra = [f"user{i:04}@bundy.net al" for i in range(max(0, count - len(base)))]
    project.file("virtuals").write_text("\n".join((base + extra)[:count]) + "\n")


def line(label: str, values: list[float]) -> None:
    runs = ", ".join(f"{v:.2f}" for v in values)
    print(f"{label:<40} {statistics.median(values):>6.2f} s   (runs: {runs})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    subprocess.run(["docker", "rm", "-f", NAME], capture_output=True)
    with tempfile.TemporaryDirectory(prefix="mor-bench-") as tmp:
        project = Project(Path(tmp), name=NAME, ports=PORTS)
        example = project.file("virtuals").read_text()
        try:
            line("first deploy (image cached)", [timed(project, True)])
            line("no-change re-deploy (example)", [timed(project, False) for _ in range(args.runs)])
            small, large = [], []
            for _ in range(args.runs):
                with_addresses(project, example, 10)
                timed(project, True)
                small.append(timed(project, False))
                with_addresses(project, example, 1000)
                timed(project, True)
                large.append(timed(project, False))
            line("no-change re-deploy, 10 addresses", small)
            line("no-change re-deploy, 1,000 addresses", large)
            print(f"{'growth 10 -> 1,000 addresses':<40} "
                  f"{100 * (statistics.median(large) / statistics.median(small) - 1):>+6.1f} %")
        finally:
            subprocess.run(["docker", "rm", "-f", NAME], capture_output=True)
            Path(f"/etc/cron.d/{NAME}").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
