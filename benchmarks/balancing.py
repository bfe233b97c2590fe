"""Least connections against an NLB's flow hash: real HAProxy with the rendered haproxy.cfg.

    python -m benchmarks.balancing             # every row: about 15 minutes on 2 cores
    python -m benchmarks.balancing --quick     # 85 % load, equal and one slow: about 3 minutes

Debian's HAProxy runs components/scripts/haproxy.cfg as pe_lb.haproxy_config renders it,
finding four stub compile masters through Debian's dnsmasq (as the tier finds them through the
VPC resolver). Each stub compile master has four workers taking requests first come, first
served (JRuby instances), and serves TLS with a test PE CA; one agent run is one keep-alive
connection carrying node, 3 file_metadata, catalog, 2 file_metadata and report (the catalog
exponential with a mean of 8 s, the small requests 0.1-0.3 s), run TIME_SCALE times faster and
shown in real-equivalent seconds. Arrivals are Poisson; every balance algorithm gets the same
arrivals (one seed per row). `random(1)` stands in for the NLB (a new flow goes to any target,
whatever it holds); HAProxy 2.6's plain `random` is random(2).

Prints p50/p95/p99 of an agent run per algorithm, and leastconn's p99 as a ratio of random(1)'s.
A measurement, not a test: nothing fails on time. Not measured yet (issue 16 asks for them): two
HAProxy instances sharing the load, and agents holding the connection idle through facts and apply.
"""

from __future__ import annotations

import argparse
import queue
import random
import socket
import ssl
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from components.haproxy_config import HaproxySettings
from tests.aws_emulator import free_port
from tests.certs import LocalCA
from tests.real_haproxy.tier import DISCOVERY_NAME, TIMING, Dnsmasq, Haproxy, client_context, wait_for

TIME_SCALE = 20
"""Real seconds per benchmark second."""
WORKERS = 4
COMPILE_MASTERS = 4
CATALOG_MEAN_SECONDS = 8.0
SMALL_REQUESTS = ("node", "file_metadata", "file_metadata", "file_metadata", None, "file_metadata",
                  "file_metadata", "report")  # fmt: skip
"""An agent run in order; None is the catalog."""
MEAN_RUN_SECONDS = CATALOG_MEAN_SECONDS + 7 * 0.2
ALGORITHMS = ("leastconn", "random(1)", "roundrobin")
LOADS = (0.5, 0.7, 0.85, 0.95)


@dataclass(frozen=True)
class Row:
    load: float
    slow: bool
    """One compile master twice as slow; the load is of the capacity that is left."""
    runs: int


class StubCompileMaster:
    """TLS on one port: HTTP status for health checks, else one line per request ("WORK <seconds>")
    answered once one of its workers has done it, first come, first served."""

    def __init__(self, address: str, port: int, ca: LocalCA, directory: Path, slowdown: float) -> None:
        pem = ca.issue(address, [address], ip_addresses=[address])
        pem.write(directory / f"{address}.pem", directory / f"{address}.key")
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(directory / f"{address}.pem", directory / f"{address}.key")
        self.listener = socket.create_server((address, port))
        self.slowdown = slowdown
        self.jobs: queue.Queue[tuple[float, threading.Event]] = queue.Queue()
        for _ in range(WORKERS):
            threading.Thread(target=self._work, daemon=True).start()
        threading.Thread(target=self._accept, daemon=True).start()

    def _work(self) -> None:
        while True:
            seconds, done = self.jobs.get()
            time.sleep(seconds * self.slowdown / TIME_SCALE)
            done.set()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            with self.context.wrap_socket(raw, server_side=True) as connection:
                reader = connection.makefile("rb")
                for line in reader:
                    if line.startswith(b"GET "):
                        connection.sendall(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nrunning"
                        )
                        return
                    done = threading.Event()
                    self.jobs.put((float(line.split()[1]), done))
                    done.wait()
                    connection.sendall(b"DONE\n")
        except (OSError, ValueError, IndexError):
            return

    def close(self) -> None:
        self.listener.close()


def agent_run(address: tuple[str, int], context: ssl.SSLContext, seconds: list[float]) -> None:
    with context.wrap_socket(socket.create_connection(address, timeout=600)) as connection:
        reader = connection.makefile("rb")
        for request in seconds:
            connection.sendall(f"WORK {request:.4f}\n".encode())
            if reader.readline() != b"DONE\n":
                raise RuntimeError("a compile master closed an agent run")


def schedule(row: Row, seed: int) -> list[tuple[float, list[float]]]:
    """(start, request seconds) of each agent run, Poisson arrivals at the row's load."""
    rng = random.Random(seed)
    capacity = COMPILE_MASTERS * WORKERS - (WORKERS / 2 if row.slow else 0)
    rate = row.load * capacity / MEAN_RUN_SECONDS
    start, runs = 0.0, []
    for _ in range(row.runs):
        start += rng.expovariate(rate)
        requests = [
            rng.expovariate(1 / CATALOG_MEAN_SECONDS) if name is None else rng.uniform(0.1, 0.3)
            for name in SMALL_REQUESTS
        ]
        runs.append((start, requests))
    return runs


@contextmanager
def pool(directory: Path, slow: bool, balance: str) -> Iterator[tuple[tuple[str, int], ssl.SSLContext]]:
    ca = LocalCA()
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.cert_pem)
    port = free_port()
    addresses = [f"127.0.0.{21 + i}" for i in range(COMPILE_MASTERS)]
    stubs = [
        StubCompileMaster(a, port, ca, directory, 2.0 if slow and i == 0 else 1.0)
        for i, a in enumerate(addresses)
    ]
    dns = Dnsmasq(directory)
    dns.serve(addresses)
    dns.start()
    settings = HaproxySettings(
        discovery_name=DISCOVERY_NAME, resolver=f"127.0.0.1:{dns.port}", ca_file=str(ca_file),
        balance=balance,
        bind_address="127.0.0.1", puppetserver_port=free_port(), pcp_broker_port=free_port(),
        compile_master_puppetserver_port=port, compile_master_pcp_broker_port=port, max_compile_masters=8,
        timing=replace(TIMING, interval_seconds=2), dns_hold_seconds=1, stats_port=free_port(),
        stats_socket=str(directory / "admin.sock"), log_target="stdout", max_connections=2000,
    )  # fmt: skip
    haproxy = Haproxy(directory, settings)
    haproxy.start()
    try:
        wait_for("every compile master up", lambda: sum(
            status.startswith("UP") for status in haproxy.servers("compile_masters_puppetserver").values()
        ) == COMPILE_MASTERS)  # fmt: skip
        yield ("127.0.0.1", settings.puppetserver_port), client_context(ca_file)
    finally:
        haproxy.stop()
        dns.stop()
        for stub in stubs:
            stub.close()


def measure(row: Row, balance: str, seed: int) -> list[float]:
    """Each agent run's duration, in real-equivalent seconds."""
    runs = schedule(row, seed)
    durations: list[float] = []
    directory = tempfile.TemporaryDirectory(prefix="pe-lb-balancing-")
    with directory, pool(Path(directory.name), row.slow, balance) as (address, context):
        began = time.monotonic()
        threads = []

        def one(seconds: list[float]) -> None:
            start = time.monotonic()
            agent_run(address, context, seconds)
            durations.append((time.monotonic() - start) * TIME_SCALE)

        for start, seconds in runs:
            time.sleep(max(0.0, began + start / TIME_SCALE - time.monotonic()))
            thread = threading.Thread(target=one, args=(seconds,), daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
    return durations


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="85 % load only, fewer runs")
    parser.add_argument("--runs", type=int, default=0, help="agent runs per measurement")
    args = parser.parse_args()
    loads = (0.85,) if args.quick else LOADS
    runs = args.runs or (300 if args.quick else 600)
    print(
        f"{'pool load':<34} {'algorithm':<11} {'p50':>7} {'p95':>7} {'p99':>7}   leastconn / random(1), p99"
    )
    for slow in (False, True):
        for load in loads:
            row = Row(load, slow, runs)
            label = f"{load:.0%} " + ("of what is left, one 2x slower" if slow else "equal compile masters")
            p99 = {}
            for balance in ALGORITHMS:
                durations = measure(row, balance, seed=int(load * 100) + slow)
                p99[balance] = percentile(durations, 99)
                p50, p95 = percentile(durations, 50), percentile(durations, 95)
                print(f"{label:<34} {balance:<11} {p50:7.1f} {p95:7.1f} {p99[balance]:7.1f}", flush=True)
            print(
                f"{label:<34} {'':<11} {'':>7} {'':>7} {'':>7}   {p99['leastconn'] / p99['random(1)']:.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
