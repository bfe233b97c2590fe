"""Processes of the real-HAProxy tier: stub compile masters, dnsmasq and HAProxy, each waited on by
what it answers, never by a timer."""

from __future__ import annotations

import csv
import os
import pwd
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from components import pe
from components.haproxy_config import HaproxySettings, render
from tests.aws_emulator import free_port
from tests.certs import LocalCA

DISCOVERY_NAME = "compile-masters.pool.test"
BACKENDS = ("compile_masters_puppetserver", "compile_masters_pcp_broker")
DEADLINE_SECONDS = 90.0
"""How long a wait for an event may take before the test fails (never a pass condition)."""
TIMING = pe.HealthCheckTiming(
    interval_seconds=1, timeout_seconds=1, healthy_threshold=2, unhealthy_threshold=2
)
"""Checks every second here, so a state change shows in seconds; the thresholds are the NLB's kind."""


def wait_for(what: str, condition: Callable[[], bool]) -> None:
    """Until ``condition()`` holds; fails after DEADLINE_SECONDS, naming what it waited for."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


class _Handler(BaseHTTPRequestHandler):
    server: _StubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        stub = self.server.stub
        if self.path in (pe.STATUS_PATH, pe.PCP_STATUS_PATH):
            sick = stub.sick or (self.path == pe.PCP_STATUS_PATH and stub.broker_sick)
            self._answer(503 if sick else 200, "sick" if sick else "running")
            return
        # /who: its name; /hold: its name, then the connection stays open until released.
        stub.requests.append(self.path)
        body = f"{stub.name}\n".encode()
        if self.path != "/hold":
            self._answer(200, body.decode())
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body) + len(b"released\n")))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        stub.held += 1
        stub.release.wait(DEADLINE_SECONDS)
        stub.held -= 1
        self.wfile.write(b"released\n")

    def _answer(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _StubServer(ThreadingHTTPServer):
    daemon_threads = True
    stub: StubCompileMaster


@dataclass
class StubCompileMaster:
    """A compile master's two pool ports over TLS with the PE CA's certificate: status answers as
    puppetserver's (200, or 503 when sick; the broker's own path too), /who and /hold for traffic."""

    name: str
    address: str
    ca: LocalCA
    directory: Path
    ports: tuple[int, int]
    sick: bool = False
    broker_sick: bool = False
    held: int = 0
    requests: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    _servers: list[_StubServer] = field(default_factory=list)

    def start(self) -> None:
        pem = self.ca.issue(self.name, [self.name], ip_addresses=[self.address])
        cert, key = self.directory / f"{self.name}.pem", self.directory / f"{self.name}.key"
        pem.write(cert, key)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        for port in self.ports:
            server = _StubServer((self.address, port), _Handler)
            server.stub = self
            server.socket = context.wrap_socket(server.socket, server_side=True)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self._servers.append(server)

    def stop(self) -> None:
        self.release.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()


@dataclass
class Dnsmasq:
    """Debian's dnsmasq answering the discovery name from a hosts file (SIGHUP re-reads it)."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def hosts(self) -> Path:
        return self.directory / "compile-masters.hosts"

    def serve(self, addresses: list[str]) -> None:
        """The discovery record now holds exactly ``addresses``."""
        self.hosts.write_text("".join(f"{address} {DISCOVERY_NAME}\n" for address in addresses))
        self.hosts.chmod(0o644)
        if self.process is not None:
            self.process.send_signal(signal.SIGHUP)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "dnsmasq", "--keep-in-foreground", "--no-daemon", "--user=root", "--conf-file=/dev/null",
                f"--port={self.port}", "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
                "--no-hosts", f"--addn-hosts={self.hosts}", "--local-ttl=1", "--pid-file=",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        wait_for("dnsmasq to listen", lambda: _answers_udp(self.port))

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)


def _answers_udp(port: int) -> bool:
    # A DNS query for the discovery name; any answer means dnsmasq is up.
    query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    query += b"".join(bytes([len(label)]) + label.encode() for label in DISCOVERY_NAME.split(".")) + b"\x00"
    query += b"\x00\x01\x00\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(0.5)
        try:
            client.sendto(query, ("127.0.0.1", port))
            return client.recv(512)[:2] == b"\x12\x34"
        except OSError:
            return False


@dataclass
class Haproxy:
    """Debian's HAProxy running the rendered config in the foreground."""

    directory: Path
    settings: HaproxySettings
    process: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        return self.directory / "haproxy.cfg"

    def check(self) -> subprocess.CompletedProcess[str]:
        self.config.write_text(render(self.settings))
        return subprocess.run(
            ["haproxy", "-c", "-f", str(self.config)], capture_output=True, text=True, timeout=60, check=False
        )

    def start(self) -> None:
        checked = self.check()
        assert checked.returncode == 0, checked.stdout + checked.stderr
        self.process = subprocess.Popen(
            ["haproxy", "-db", "-f", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=(self.directory / "haproxy.log").open("wb"),
            start_new_session=True,
        )
        wait_for("HAProxy's stats socket", self._answers)

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            log = (self.directory / "haproxy.log").read_text()
            raise AssertionError(f"HAProxy exited with {self.process.returncode}: {log}")
        return Path(self.settings.stats_socket).exists() and bool(self.stat())

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(30)

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(5)
            try:
                client.connect(self.settings.stats_socket)
            except OSError:
                return ""
            client.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := client.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks).decode()

    def stat(self) -> list[dict[str, str]]:
        """`show stat`: a row per frontend, backend and server slot."""
        text = self.command("show stat").lstrip("# ")
        return [row for row in csv.DictReader(text.splitlines()) if row.get("pxname")]

    def slots(self, backend: str) -> dict[str, dict[str, str]]:
        """Address -> `show stat` row of the backend's server slots that hold an address."""
        return {
            row["addr"].rsplit(":", 1)[0]: row
            for row in self.stat()
            if row["pxname"] == backend and row["svname"].startswith("compile-master-") and row.get("addr")
        }

    def servers(self, backend: str) -> dict[str, str]:
        """Address -> status (UP, DOWN, MAINT...)."""
        return {address: row["status"] for address, row in self.slots(backend).items()}

    def current_sessions(self, backend: str) -> dict[str, int]:
        return {address: int(row["scur"] or 0) for address, row in self.slots(backend).items()}


@dataclass
class Tier:
    ca_file: Path
    dns: Dnsmasq
    haproxy: Haproxy
    compile_masters: dict[str, StubCompileMaster]
    context: ssl.SSLContext

    @property
    def puppetserver(self) -> tuple[str, int]:
        return "127.0.0.1", self.haproxy.settings.puppetserver_port

    @property
    def pcp_broker(self) -> tuple[str, int]:
        return "127.0.0.1", self.haproxy.settings.pcp_broker_port

    def get(self, path: str = "/who", port: tuple[str, int] | None = None) -> str:
        """One request through HAProxy on a new connection: the compile master that answered. Returns
        once HAProxy has counted the connection closed, so the next one meets settled counts."""
        with self.open(path, port) as answer:
            pass
        self.settle()
        return answer

    def settle(self) -> None:
        """Until HAProxy's count of connections to each compile master is the count it holds open."""
        wait_for("HAProxy's connection counts to settle", self._settled)

    def _settled(self) -> bool:
        return all(
            count <= self.by_address(address).held
            for backend in BACKENDS
            for address, count in self.haproxy.current_sessions(backend).items()
        )

    @contextmanager
    def open(self, path: str, port: tuple[str, int] | None = None) -> Iterator[str]:
        """A TLS connection through HAProxy, verified end to end against the PE CA (HAProxy passes it
        through), with its request sent; yields the answering compile master's name."""
        raw = socket.create_connection(port or self.puppetserver, timeout=DEADLINE_SECONDS)
        with self.context.wrap_socket(raw) as connection:
            connection.sendall(f"GET {path} HTTP/1.1\r\nHost: pool\r\n\r\n".encode())
            reader = connection.makefile("rb")
            while reader.readline() not in (b"\r\n", b""):
                pass
            name = reader.readline().decode().strip()
            if path == "/hold":
                # Counted by HAProxy before the next connection comes: least connections sees it.
                stub = self.compile_masters[name]
                wait_for(
                    f"HAProxy to count the connection to {name}",
                    lambda: (
                        sum(self.haproxy.current_sessions(b).get(stub.address, 0) for b in BACKENDS)
                        >= stub.held
                    ),
                )
            yield name
            if path == "/hold":
                self.last_release = reader.readline().decode().strip()

    def up(self, backend: str = "compile_masters_puppetserver") -> set[str]:
        return {
            address for address, status in self.haproxy.servers(backend).items() if status.startswith("UP")
        }

    def by_address(self, address: str) -> StubCompileMaster:
        return next(stub for stub in self.compile_masters.values() if stub.address == address)

    last_release: str = ""


def client_context(ca_file: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file))
    # Stubs are reached by address through HAProxy; each certificate names its own address, not the
    # pool's (the chain is what this tier checks; names are the replay's and the real tier's).
    context.check_hostname = False
    return context


@contextmanager
def running_tier(
    directory: Path, count: int, *, balance: str = "leastconn", in_dns: int | None = None
) -> Iterator[Tier]:
    """``count`` stub compile masters on 127.0.0.11.., the first ``in_dns`` (default all) in the record."""
    ca = LocalCA()
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.cert_pem)
    ports = (free_port(), free_port())
    stubs = {
        f"cm{i}": StubCompileMaster(f"cm{i}", f"127.0.0.{11 + i}", ca, directory, ports) for i in range(count)
    }
    dns = Dnsmasq(directory)
    dns.serve([stub.address for stub in list(stubs.values())[: count if in_dns is None else in_dns]])
    settings = HaproxySettings(
        discovery_name=DISCOVERY_NAME,
        resolver=f"127.0.0.1:{dns.port}",
        ca_file=str(ca_file),
        balance=balance,
        bind_address="127.0.0.1",
        puppetserver_port=free_port(),
        pcp_broker_port=free_port(),
        compile_master_puppetserver_port=ports[0],
        compile_master_pcp_broker_port=ports[1],
        max_compile_masters=8,
        timing=TIMING,
        dns_hold_seconds=1,
        stats_port=free_port(),
        stats_socket=str(directory / "admin.sock"),
        log_target="stdout",
        # Within a container's open-file limit (HAProxy asks for two per connection).
        max_connections=2000,
        # Whoever runs the tier (root under make test-haproxy): HAProxy can only become its own user.
        run_as=pwd.getpwuid(os.getuid()).pw_name,
    )
    haproxy = Haproxy(directory, settings)
    started: list[Any] = []
    try:
        for stub in stubs.values():
            stub.start()
            started.append(stub)
        dns.start()
        started.append(dns)
        haproxy.start()
        started.append(haproxy)
        yield Tier(ca_file, dns, haproxy, stubs, client_context(ca_file))
    finally:
        for part in reversed(started):
            part.stop()
