"""Knot DNS (Debian's `knot`) on loopback, authoritative for the root zone: whatever records a
test writes, any name resolves from them, PTR and blocklist names included."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query

CONFIG = """\
server:
    rundir: "{dir}"
    listen: {address}@{port}
database:
    storage: "{dir}/db"
control:
    listen: "{dir}/knot.sock"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "{dir}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
  - domain: .
    file: root.zone
"""


class Knot:
    def __init__(self, folder: Path, address: str = "127.0.0.1", port: int = 6653):
        self.dir, self.address, self.port = folder, address, port
        self.conf = folder / "knot.conf"
        self.serial = 0
        self.process: subprocess.Popen | None = None

    @property
    def resolver(self) -> str:
        return f"{self.address}:{self.port}"

    def _write(self, records: str):
        self.serial += 1
        (self.dir / "root.zone").write_text(
            f". 60 IN SOA ns. hostmaster. {self.serial} 3600 600 86400 60\n"
            ". 60 IN NS ns.\nns. 60 IN A 127.0.0.1\n" + records)

    def load(self, records: str):
        """Serve `records` (zone-file text, absolute names) as the whole root zone."""
        self._write(records)
        subprocess.run(["knotc", "-c", str(self.conf), "-b", "zone-reload", "."], check=True,
                       capture_output=True, timeout=30)
        self._wait_serial()

    def _wait_serial(self, timeout: float = 10):
        deadline = time.monotonic() + timeout
        while True:
            try:
                answer = dns.query.udp(dns.message.make_query(".", "SOA"), self.address,
                                       port=self.port, timeout=1)
                if answer.answer and answer.answer[0][0].serial == self.serial:
                    return
            except (dns.exception.DNSException, OSError):
                pass
            if time.monotonic() > deadline or (self.process and self.process.poll() is not None):
                raise AssertionError(f"knotd does not serve serial {self.serial}: "
                                     f"{(self.dir / 'knotd.log').read_text()[-2000:]}")
            time.sleep(0.1)

    def start(self, records: str):
        (self.dir / "db").mkdir(exist_ok=True)
        self.conf.write_text(CONFIG.format(dir=self.dir, address=self.address, port=self.port))
        self._write(records)
        with open(self.dir / "knotd.log", "w") as log:
            self.process = subprocess.Popen(["knotd", "-c", str(self.conf)], stdout=log,
                                            stderr=subprocess.STDOUT)
        self._wait_serial()

    def stop(self):
        if self.process:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
