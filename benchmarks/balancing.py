"""Least connections against an NLB's flow hash: real HAProxy with the rendered haproxy.cfg.

    python -m benchmarks.balancing             # every row: about 25 minutes on 2 cores
    python -m benchmarks.balancing --quick     # 85 % load only: about 8 minutes

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
A measurement, not a test: nothing fails on time. After the table, at 85 % load: two HAProxy
instances behind the NLB (each agent run sent to one at random, each balancing only its share), and
agents holding the connection idle through facts and apply (leastconn counts idle connections).
"""

from __future__ import annotations

import argparse
import getpass
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
"""Compile-master time per agent run."""
APPLY_MEAN_SECONDS = 10.0
ALGORITHMS = ("leastconn", "random(1)", "roundrobin")
LOADS = (0.5, 0.7, 0.85, 0.95)


@dataclass(frozen=True)
class Row:
    load: float
    slow: bool
    """One compile master twice as slow; the load is of the capacity that is left."""
    runs: int
    haproxies: int = 1
    """HAProxy instances behind the NLB, each agent run sent to one of them at random (the flow hash):
    each sees, and balances, only its own share of the connections."""
    idle: bool = False
    """Agents hold the connection idle through facts (1-3 s, before node) and apply (mean 10 s, after
    the catalog): least connections counts those idle connections too."""

    @property
    def label(self) -> str:
        label = f"{self.load:.0%} " + ("of what is left, one 2x slower" if self.slow else "equal")
        if self.haproxies > 1:
            label += f", {self.haproxies} HAProxy"
        return label + (", idle agents" if self.idle else "")


Step = tuple[str, float]
"""("work", seconds) a compile master spends, or ("idle", seconds) the agent holds the connection."""


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


def agent_run(address: tuple[str, int], context: ssl.SSLContext, steps: list[Step]) -> None:
    with context.wrap_socket(socket.create_connection(address, timeout=600)) as connection:
        reader = connection.makefile("rb")
        for kind, seconds in steps:
            if kind == "idle":
                time.sleep(seconds / TIME_SCALE)
                continue
            connection.sendall(f"WORK {seconds:.4f}\n".encode())
            if reader.readline() != b"DONE\n":
                raise RuntimeError("a compile master closed an agent run")


def schedule(row: Row, seed: int) -> list[tuple[float, list[Step], int]]:
    """(start, steps, HAProxy instance) of each agent run, Poisson arrivals at the row's load."""
    rng = random.Random(seed)
    capacity = COMPILE_MASTERS * WORKERS - (WORKERS / 2 if row.slow else 0)
    rate = row.load * capacity / MEAN_RUN_SECONDS
    start, runs = 0.0, []
    for _ in range(row.runs):
        start += rng.expovariate(rate)
        steps: list[Step] = [("idle", rng.uniform(1, 3))] if row.idle else []
        for name in SMALL_REQUESTS:
            if name is None:
                steps.append(("work", rng.expovariate(1 / CATALOG_MEAN_SECONDS)))
                if row.idle:
                    steps.append(("idle", rng.expovariate(1 / APPLY_MEAN_SECONDS)))
            else:
                steps.append(("work", rng.uniform(0.1, 0.3)))
        runs.append((start, steps, rng.randrange(row.haproxies)))
    return runs


@contextmanager
def pool(directory: Path, row: Row, balance: str) -> Iterator[tuple[list[tuple[str, int]], ssl.SSLContext]]:
    """The stub compile masters, dnsmasq and ``row.haproxies`` HAProxy instances with the same config;
    yields each instance's 8140 address."""
    ca = LocalCA()
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.cert_pem)
    port = free_port()
    addresses = [f"127.0.0.{21 + i}" for i in range(COMPILE_MASTERS)]
    stubs = [
        StubCompileMaster(a, port, ca, directory, 2.0 if row.slow and i == 0 else 1.0)
        for i, a in enumerate(addresses)
    ]
    dns = Dnsmasq(directory)
    dns.serve(addresses)
    dns.start()
    haproxies = []
    try:
        for index in range(row.haproxies):
            own = directory / f"haproxy-{index}"
            own.mkdir()
            settings = HaproxySettings(
                discovery_name=DISCOVERY_NAME, resolver=f"127.0.0.1:{dns.port}", ca_file=str(ca_file),
                balance=balance, bind_address="127.0.0.1", puppetserver_port=free_port(),
                pcp_broker_port=free_port(), compile_master_puppetserver_port=port,
                compile_master_pcp_broker_port=port, max_compile_masters=8,
                timing=replace(TIMING, interval_seconds=2), dns_hold_seconds=1, stats_port=free_port(),
                stats_socket=str(own / "admin.sock"), log_target="stdout", max_connections=2000,
                run_as=getpass.getuser(),  # whoever runs the benchmark: HAProxy keeps that user
            )  # fmt: skip
            haproxy = Haproxy(own, settings)
            haproxy.start()
            haproxies.append(haproxy)
            wait_for("every compile master up", lambda haproxy=haproxy: sum(  # type: ignore[misc]
                status.startswith("UP") for status in haproxy.servers("compile_masters_puppetserver").values()
            ) == COMPILE_MASTERS)  # fmt: skip
        yield [("127.0.0.1", h.settings.puppetserver_port) for h in haproxies], client_context(ca_file)
    finally:
        for haproxy in haproxies:
            haproxy.stop()
        dns.stop()
        for stub in stubs:
            stub.close()


def measure(row: Row, balance: str, seed: int) -> list[float]:
    """Each agent run's duration, in real-equivalent seconds."""
    runs = schedule(row, seed)
    durations: list[float] = []
    directory = tempfile.TemporaryDirectory(prefix="pe-lb-balancing-")
    with directory, pool(Path(directory.name), row, balance) as (fronts, context):
        began = time.monotonic()
        threads = []

        def one(steps: list[Step], front: int) -> None:
            start = time.monotonic()
            agent_run(fronts[front], context, steps)
            durations.append((time.monotonic() - start) * TIME_SCALE)

        for start, steps, front in runs:
            time.sleep(max(0.0, began + start / TIME_SCALE - time.monotonic()))
            thread = threading.Thread(target=one, args=(steps, front), daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
    return durations


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def rows(quick: bool, runs: int) -> list[Row]:
    loads = (0.85,) if quick else LOADS
    table = [Row(load, slow, runs) for slow in (False, True) for load in loads]
    # What one HAProxy on loopback leaves out: several instances behind the NLB, each seeing part of
    # the connections, and agents holding connections idle (counted by leastconn as busy).
    return table + [Row(0.85, slow, runs, **extra) for extra in ({"haproxies": 2}, {"idle": True})
                    for slow in (False, True)]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="85 % load only, fewer runs")
    parser.add_argument("--runs", type=int, default=0, help="agent runs per measurement")
    args = parser.parse_args()
    runs = args.runs or (300 if args.quick else 600)
    print(
        f"{'pool load':<46} {'algorithm':<11} {'p50':>7} {'p95':>7} {'p99':>7}   leastconn / random(1), p99"
    )
    for row in rows(args.quick, runs):
        p99 = {}
        for balance in ALGORITHMS:
            durations = measure(row, balance, seed=int(row.load * 100) + row.slow)
            p99[balance] = percentile(durations, 99)
            p50, p95 = percentile(durations, 50), percentile(durations, 95)
            print(f"{row.label:<46} {balance:<11} {p50:7.1f} {p95:7.1f} {p99[balance]:7.1f}", flush=True)
        ratio = p99["leastconn"] / p99["random(1)"]
        print(f"{row.label:<46} {'':<11} {'':>7} {'':>7} {'':>7}   {ratio:.2f}", flush=True)


if __name__ == "__main__":
    main()
