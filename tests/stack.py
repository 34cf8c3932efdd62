"""A rendered Mail-o-Rama stack run as a real container on 127.0.0.1, and an SMTP sink: for the
integration tests and the benchmarks."""

from __future__ import annotations

import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from mailorama import config as cfg
from mailorama import sieve
from mailorama.contract import SECRET_CONFIG
from mailorama.render import render
from mailorama.settings import settings_from

REPO = Path(__file__).resolve().parents[1]
IMAGE = "mor-test:latest"
PORTS = {"smtp": 2525, "submission": 2587, "submissions": 2465, "imap": 2143, "imaps": 2993,
         "managesieve": 2190}
SINK_PORT = 2600
PASSWORDS = cfg.EXAMPLE_PASSWORDS


def all_ports(ports: dict) -> dict:
    """A test's ports with every service the server has: the ones a test leaves out are put
    next to its SMTP port, so two test containers never meet on a default port."""
    smtp = ports["smtp"]
    return {"hostmail": smtp + 1, "managesieve": smtp + 165, **ports}


def sh(*args: str, check: bool = True, input: bytes | None = None, timeout: float = 600):
    return subprocess.run(args, check=check, capture_output=True, input=input, timeout=timeout)


def docker(*args: str, check: bool = True, input: bytes | None = None):
    return sh("docker", *args, check=check, input=input)


def compose_command() -> list[str]:
    if sh("docker", "compose", "version", check=False).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"]


def build_image(tag: str = IMAGE) -> str:
    """The image from image/ (the build cache keeps re-builds fast)."""
    if sh("docker", "info", check=False).returncode != 0:
        raise RuntimeError("no Docker engine: run tests/rig/up.sh (bash tests/run does)")
    docker("build", "-q", "--network", "host", "-t", tag, str(REPO / "mailorama" / "image"))
    return tag


@dataclass
class Stack:
    """One rendered stack (config, compose file) and its running container."""

    name: str
    base: Path
    settings_data: dict
    config_dir: Path = field(init=False)

    def __post_init__(self):
        self.config_dir = self.base / "mail"
        self.root = self.base / "opt"
        self.data = self.base / "srv"

    @property
    def settings(self):
        data = {"mailorama_ports": PORTS, **self.settings_data}
        data["mailorama_ports"] = all_ports(data["mailorama_ports"])
        return settings_from({
            "mailorama_container": self.name, "mailorama_image": IMAGE,
            "mailorama_root": str(self.root), "mailorama_data": str(self.data),
            **data}, fqdn="mail.bundy.net")

    def render(self):
        config = cfg.load(self.config_dir)
        scripts = sieve.load(self.config_dir, (a.name for a in config.accounts))
        for rel, text in render(config, self.settings, scripts).items():
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            path.chmod(0o600 if rel in SECRET_CONFIG or rel.startswith("config/") else 0o644)
        self.root.joinpath("config").chmod(0o700)

    def compose(self, *args: str, check: bool = True):
        return sh(*compose_command(), "-p", self.name, "-f", str(self.root / "compose.yaml"),
                  *args, check=check)

    def exec(self, *args: str, input: bytes | None = None, check: bool = True):
        return docker("exec", "-i", self.name, *args, input=input, check=check)

    def started_at(self) -> str:
        return docker("inspect", "-f", "{{.State.StartedAt}}", self.name).stdout.decode().strip()

    def wait_ready(self, timeout: float = 60):
        from mail import wait_for

        def ready():
            state = docker("inspect", "-f", "{{.State.Status}}", self.name, check=False)
            if state.stdout.decode().strip() in ("exited", "dead"):
                logs = docker("logs", self.name, check=False)
                raise AssertionError(f"container died:\n{logs.stderr.decode()[-3000:]}")
            ports = self.settings.port
            r = self.exec("mailorama-healthcheck", "127.0.0.1", str(ports["smtp"]),
                          str(ports["imap"]), check=False)
            return r.returncode == 0
        wait_for(ready, timeout, interval=0.3, what=f"{self.name} to be ready")

    def up(self):
        self.render()
        self.compose("up", "-d")
        self.wait_ready()

    def logs(self) -> str:
        """The container's whole log (both streams)."""
        r = docker("logs", self.name, check=False)
        return (r.stdout + r.stderr).decode(errors="replace")

    def save_logs(self):
        """Keep the container's log for a post-mortem: /tmp/mor-test-logs/<name>.log."""
        out = Path("/tmp/mor-test-logs")
        out.mkdir(exist_ok=True)
        (out / f"{self.name}.log").write_text(self.logs())

    def remove(self):
        docker("rm", "-f", self.name, check=False)


def fresh_stack(name: str, base: Path, **settings_data) -> Stack:
    """A new stack folder with a copy of the example config; leftovers of `name` removed."""
    docker("rm", "-f", name, check=False)
    stack = Stack(name, base, settings_data)
    shutil.copytree(REPO / "mail", stack.config_dir)
    return stack


class Sink:
    """An SMTP server on 127.0.0.1 that stores what it receives: the 'internet' for relays."""

    def __init__(self, port: int = SINK_PORT, login: tuple[str, str] | None = None,
                 tls_files: tuple[str, str] | None = None):
        """With `login`, the sink requires STARTTLS (certificate and key from `tls_files`)
        and that AUTH login; it records who logged in."""
        self.port, self.login, self.tls_files = port, login, tls_files
        self.logins: list[str] = []
        self.messages: list[dict] = []
        self.lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                with sink.lock:
                    sink.messages.append({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                                          "data": envelope.original_content})
                return "250 OK"

        self.handler = Handler()
        self.controller = None

    def start(self):
        from aiosmtpd.controller import Controller

        options = {}
        if self.login:
            import ssl

            from aiosmtpd.smtp import AuthResult

            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self.tls_files)

            def authenticate(server, session, envelope, mechanism, auth_data):
                given = (auth_data.login.decode(), auth_data.password.decode())
                if given == self.login:
                    self.logins.append(given[0])
                return AuthResult(success=given == self.login)

            options = dict(tls_context=context, require_starttls=True, auth_required=True,
                           auth_require_tls=True, authenticator=authenticate)
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                     **options)
        self.controller.start()

    def stop(self):
        self.controller.stop()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def find(self, text: str) -> list[dict]:
        with self.lock:
            return [m for m in self.messages if text.encode() in m["data"]]
