"""poolctl through the least-connections tier: the NLB's targets are HAProxy instances, which find
the compile masters through the discovery record (a Route53 private zone, in moto in server mode),
and each HAProxy's stats page is a local HTTP server serving CSV shaped as HAProxy 2.6's.

The page's shape is real: REAL_STATS below is Debian's HAProxy 2.6.12 running the rendered
haproxy.cfg (tests/real_haproxy's tier, 8 slots per backend, `stats show-legends` added so the
addresses show), read over HTTP at /;csv with one compile master drained from the record while a
session was open on it and another failing its check. The stub keeps every row as HAProxy wrote it
and changes only the server slots' fields (addr, status, scur, qcur, checks), from rows of the same
kind. Without `stats show-legends` (the rendered config as it is) that page has every addr empty:
the stub serves that too.

What moto does not emulate: Route53's change propagation (a change is INSYNC at once) and DNS
itself; the stub HAProxy follows the record as it stands in moto each time it is asked, as a real
one does within the record's TTL.
"""

from __future__ import annotations

import http.server
import io
import json
import os
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
import requests
from moto.server import ThreadedMotoServer

from components import pe
from components.poolctl import cli, tier
from components.poolctl.pool import Pool
from tests.aws_emulator import POOL, EmulatedTier, build_pool, build_tier, free_port, haproxy_instance
from tests.test_poolctl_aws import STUB_PULUMI, config, ends_in_error, one_line_error, poolctl

REAL_STATS = """# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,
puppetserver,FRONTEND,,,1,1,2000,1,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,1,,,,,,,,,,,0,0,0,,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,tcp,,0,1,1,,0,0,0,,,,,,,,,,,0,,,,,,,,,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
compile_masters_puppetserver,compile-master-1,0,0,1,1,,1,0,0,,0,,0,0,0,0,MAINT (resolution),100,1,0,0,2,1,1,,1,3,1,,1,,2,0,,1,,,,,,,,,,,,,,0,0,,,,,2,,,0,0,0,0,,,,,,,,,,,,,,tcp,,,,,,,,0,1,0,,,0,,0,0,0,0,0,0,0,0,1,100,,,,-,1,0,0,,,,,,,,,,,,,,,,,,,,,,
compile_masters_puppetserver,compile-master-2,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,100,1,0,0,1,2,0,,1,3,2,,0,,2,0,,0,L7OK,200,4,,,,,,,,,,,0,0,,,,,-1,,,0,0,0,0,,,,Layer7 check passed,,2,2,3,,,,127.0.0.12:35207,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,100,,,,-,2,1,0,,,,,,,,,,,,,,,,,,,,,,
compile_masters_puppetserver,compile-master-3,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,100,1,0,2,2,0,0,,1,3,3,,0,,2,0,,0,L7STS,503,4,,,,,,,,,,,0,0,,,,,-1,Service Unavailable,,0,0,0,0,,,,Layer7 wrong status,,2,2,0,,,,127.0.0.11:35207,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,100,,,,-,2,1,0,,,,,,,,,,,,,,,,,,,,,,
compile_masters_puppetserver,compile-master-4,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT (resolution),100,1,0,0,1,2,2,,1,3,4,,0,,2,0,,0,,,,,,,,,,,,,,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,0,100,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,
compile_masters_puppetserver,compile-master-5,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT (resolution),100,1,0,0,1,2,2,,1,3,5,,0,,2,0,,0,,,,,,,,,,,,,,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,0,100,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,
compile_masters_puppetserver,compile-master-6,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT (resolution),100,1,0,0,1,2,2,,1,3,6,,0,,2,0,,0,,,,,,,,,,,,,,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,0,100,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,
compile_masters_puppetserver,compile-master-7,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT (resolution),100,1,0,0,1,2,2,,1,3,7,,0,,2,0,,0,,,,,,,,,,,,,,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,0,100,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,
compile_masters_puppetserver,compile-master-8,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT (resolution),100,1,0,0,1,2,2,,1,3,8,,0,,2,0,,0,,,,,,,,,,,,,,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,0,100,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,
compile_masters_puppetserver,BACKEND,0,0,1,1,200,1,0,0,0,0,,0,0,0,0,UP,100,1,0,,1,2,0,,1,3,0,,1,,1,0,,1,,,,,,,,,,,,,,0,0,0,0,0,0,2,,,0,0,0,0,,,,,,,,,,,,,,tcp,leastconn,,,,,,,0,1,0,,,,,0,0,0,0,0,,,,,100,0,0,0,-,5,2,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,7,7,854,238,0,0,
pcp_broker,FRONTEND,,,0,0,2000,0,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,4,0,,,,0,0,0,0,,,,,,,,,,,0,0,0,,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,tcp,,0,0,0,,0,0,0,,,,,,,,,,,0,,,,,,,,,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
compile_masters_pcp_broker,compile-master-1,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT (resolution),100,1,0,0,2,1,1,,1,5,1,,0,,2,0,,0,,,,,,,,,,,,,,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,100,,,,-,1,0,0,,,,,,,,,,,,,,,,,,,,,,
compile_masters_pcp_broker,compile-master-2,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,100,1,0,0,1,2,0,,1,5,2,,0,,2,0,,0,L7OK,200,5,,,,,,,,,,,0,0,,,,,-1,,,0,0,0,0,,,,Layer7 check passed,,2,2,3,,,,127.0.0.12:35231,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,100,,,,-,2,0,0,,,,,,,,,,,,,,,,,,,,,,
compile_masters_pcp_broker,compile-master-3,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP 1/2,100,1,0,1,1,2,0,,1,5,3,,0,,2,0,,0,L7STS,503,5,,,,,,,,,,,0,0,,,,,-1,Service Unavailable,,0,0,0,0,,,,Layer7 wrong status,,2,2,2,,,,127.0.0.11:35231,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,1,100,,,,-,2,0,0,,,,,,,,,,,,,,,,,,,,,,
compile_masters_pcp_broker,compile-master-4,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT (resolution),100,1,0,0,1,2,2,,1,5,4,,0,,2,0,,0,,,,,,,,,,,,,,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,0,100,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,
compile_masters_pcp_broker,compile-master-5,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT (resolution),100,1,0,0,1,2,2,,1,5,5,,0,,2,0,,0,,,,,,,,,,,,,,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,0,100,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,
compile_masters_pcp_broker,compile-master-6,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT (resolution),100,1,0,0,1,2,2,,1,5,6,,0,,2,0,,0,,,,,,,,,,,,,,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,0,100,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,
compile_masters_pcp_broker,compile-master-7,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT (resolution),100,1,0,0,1,2,2,,1,5,7,,0,,2,0,,0,,,,,,,,,,,,,,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,0,100,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,
compile_masters_pcp_broker,compile-master-8,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT (resolution),100,1,0,0,1,2,2,,1,5,8,,0,,2,0,,0,,,,,,,,,,,,,,0,0,,,,,-1,,,0,0,0,0,,,,,,,,,,,,,,tcp,,,,,,,,0,0,0,,,0,,0,0,0,0,0,0,0,0,0,100,,,,-,0,0,0,,,,,,,,,,,,,,,,,,,,,,
compile_masters_pcp_broker,BACKEND,0,0,0,0,200,0,0,0,0,0,,0,0,0,0,UP,200,2,0,,1,2,0,,1,5,0,,0,,1,0,,0,,,,,,,,,,,,,,0,0,0,0,0,0,-1,,,0,0,0,0,,,,,,,,,,,,,,tcp,leastconn,,,,,,,0,0,0,,,,,0,0,0,0,0,,,,,200,0,0,0,-,5,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,5,5,604,245,0,0,
stats,FRONTEND,,,1,1,2000,2,107,6986,0,0,0,,,,,OPEN,,,,,,,,,1,6,0,,,,0,1,0,1,,,,0,1,0,0,0,0,,1,1,2,,,0,0,0,0,,,,,,,,,,,,,,,,,,,,,http,,1,1,2,2,0,0,0,,,0,0,,,,,,,0,,,,,,,,,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,1,2,2,246,7019,0,0,
stats,BACKEND,0,0,0,0,200,0,107,6986,0,0,,0,0,0,0,UP,0,0,0,,0,2,,,1,6,0,,0,,1,0,,0,,,,0,0,0,0,0,0,,,,0,0,0,0,0,0,0,0,,,0,0,0,0,,,,,,,,,,,,,,http,roundrobin,,,,,,,0,0,0,0,0,,,0,0,0,0,0,,,,,0,0,0,0,-,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
"""  # noqa: E501
"""HAProxy 2.6.12's /;csv: puppetserver's backend holds a drained slot (compile-master-1: MAINT
(resolution), its address gone, 1 session finishing), an UP one and a DOWN one (L7STS 503)."""

HEADER, *BASE_ROWS = REAL_STATS.splitlines()
FIELDS = HEADER[2:].split(",")
ROWS = [dict(zip(FIELDS, line.split(","), strict=True)) for line in BASE_ROWS]
SLOTS = 8
HIDDEN = (
    "\n".join([HEADER, *(",".join({**row, "addr": "", "algo": ""}[n] for n in FIELDS) for row in ROWS)])
    + "\n"
)
"""The same page as the rendered haproxy.cfg serves it (no `stats show-legends`): in the real
capture without it, addr and algo are empty and nothing else differs."""
PORT_OF = {backend: port for port, backend in tier.BACKENDS.items()}


def base_row(pxname: str, svname: str) -> dict[str, str]:
    return next(row for row in ROWS if row["pxname"] == pxname and row["svname"] == svname)


TEMPLATES = {
    "UP": base_row(pe.HAPROXY_PUPPETSERVER_BACKEND, "compile-master-2"),
    "DOWN": base_row(pe.HAPROXY_PUPPETSERVER_BACKEND, "compile-master-3"),
    "MAINT": base_row(pe.HAPROXY_PUPPETSERVER_BACKEND, "compile-master-4"),
    "UP 1/2": base_row(pe.HAPROXY_PCP_BROKER_BACKEND, "compile-master-3"),
}
"""A server row of each kind, as HAProxy wrote it: a slot is rendered from the row of its kind."""


@dataclass
class StubSlot:
    address: str = ""
    sessions: dict[int, tuple[int, int]] = field(default_factory=dict)
    """By port: (current sessions, queued)."""
    pages: int = 0
    """Pages served since it took its address: the first shows it UP 1/2 (checks initialising)."""


@dataclass
class StubHaproxy:
    """One HAProxy's stats page. It follows the discovery record as HAProxy follows DNS: an address
    that joins takes the first free slot, UP 1/2 until its first check then UP; one that leaves
    frees its slot (MAINT (resolution), address gone) and its sessions finish there."""

    address: str
    slots: list[StubSlot] = field(default_factory=lambda: [StubSlot() for _ in range(SLOTS)])
    follows: bool = True
    """False: it no longer follows the record (its resolver broken), so a change never shows."""
    status: dict[tuple[str, int], str] = field(default_factory=dict)
    """(compile master address, port) -> the status it shows instead (DOWN: failing its check)."""
    answer: int | str = 200
    """200: its page; another HTTP status; "close": closes the connection without an answer."""
    served: int = 0

    def sync(self, record: list[str]) -> None:
        for slot in self.slots:
            if slot.address and slot.address not in record:
                slot.address = ""
        held = {slot.address for slot in self.slots}
        for address in record:
            if address not in held:
                free = sorted((s for s in self.slots if not s.address), key=lambda s: bool(s.sessions))[0]
                free.address, free.sessions, free.pages = address, {}, 0

    def slot_of(self, address: str) -> StubSlot:
        return next(slot for slot in self.slots if slot.address == address)

    def page(self, record: list[str], hide_addresses: bool) -> str:
        if self.follows:
            self.sync(record)
        self.served += 1
        lines = [HEADER]
        for row in ROWS:
            if row["svname"].startswith("compile-master-"):
                index = int(row["svname"].rsplit("-", 1)[1]) - 1
                row = self.slot_row(row, self.slots[index], PORT_OF[row["pxname"]])
            if hide_addresses:
                row = {**row, "addr": "", "algo": ""}
            lines.append(",".join(row[name] for name in FIELDS))
        for slot in self.slots:
            slot.pages += bool(slot.address)
        return "\n".join(lines) + "\n"

    def slot_row(self, base: dict[str, str], slot: StubSlot, port: int) -> dict[str, str]:
        joining = bool(slot.address) and not slot.pages and (slot.address, port) not in self.status
        if slot.address:
            status = self.status.get((slot.address, port)) or ("UP" if slot.pages else "UP 1/2")
        else:
            status = "MAINT (resolution)"
        kind = "UP 1/2" if status.startswith("UP ") else status.split(" ")[0]
        row = dict(TEMPLATES[kind])
        current, queued = slot.sessions.get(port, (0, 0))
        row.update(
            pxname=base["pxname"], iid=base["iid"], sid=base["sid"], svname=base["svname"], status=status,
            scur=str(current), qcur=str(queued), addr=f"{slot.address}:{port}" if slot.address else "",
        )  # fmt: skip
        if joining:
            # As HAProxy shows a server it has just resolved, before its first check.
            row.update(check_status="INI", check_code="", check_desc="Initializing")
        return row


class StatsServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    stats: StubStats


class StatsHandler(http.server.BaseHTTPRequestHandler):
    server: StatsServer

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        stats = self.server.stats
        address, _, rest = self.path.lstrip("/").partition("/")
        haproxy = stats.haproxies.get(address)
        if haproxy is None or rest != ";csv":
            self.send_error(404)
            return
        with stats.lock:
            if haproxy.answer == "close":
                self.close_connection = True
                return
            if haproxy.answer != 200:
                self.send_error(int(haproxy.answer))
                return
            body = haproxy.page(stats.emulated.record(), stats.hide_addresses).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@dataclass
class StubStats:
    """Every HAProxy instance's stats page on one server of 127.0.0.1, at /<its private ip>/;csv
    (poolctl's --stats-url puts the address there)."""

    emulated: EmulatedTier
    haproxies: dict[str, StubHaproxy]
    url: str = ""
    hide_addresses: bool = False
    """As the rendered haproxy.cfg serves it today: without `stats show-legends`, no addr."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, instance_id: str) -> StubHaproxy:
        return self.haproxies[self.emulated.private_ip(instance_id)]

    def sessions(self, instance_id: str, port: int, current: int, queued: int = 0) -> None:
        """What every HAProxy counts for a compile master: ``current`` sessions, ``queued`` waiting."""
        address = self.emulated.private_ip(instance_id)
        for haproxy in self.haproxies.values():
            haproxy.slot_of(address).sessions[port] = (current, queued)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def emulated(moto_endpoint: str) -> EmulatedTier:
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    return build_tier(moto_endpoint)


@pytest.fixture
def stats(emulated: EmulatedTier) -> Iterator[StubStats]:
    haproxies = {emulated.private_ip(i): StubHaproxy(emulated.private_ip(i)) for i in emulated.haproxy_ids}
    stub = StubStats(emulated, haproxies)
    for haproxy in haproxies.values():
        # Settled before the test: every compile master in the record UP, its checks passed.
        haproxy.sync(emulated.record())
        for slot in haproxy.slots:
            slot.pages = 1
    server = StatsServer(("127.0.0.1", 0), StatsHandler)
    server.stats = stub
    stub.url = f"http://127.0.0.1:{server.server_address[1]}/{{address}}/;csv"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()


def args(emulated: EmulatedTier, stats: StubStats) -> list[str]:
    return [*emulated.pool.cli_args(), "--stats-url", stats.url, "--interval", "0.02"]


def status_args(emulated: EmulatedTier, stats: StubStats) -> list[str]:
    return [*emulated.pool.cli_args(), "--stats-url", stats.url]


def row_of(text: str, instance_id: str) -> list[str]:
    """A table row's cells (columns are two or more spaces apart)."""
    line = next(line for line in text.splitlines() if line.startswith(instance_id))
    return re.split(r" {2,}", line.strip())


@pytest.fixture
def stub_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, emulated: EmulatedTier) -> Path:
    binary = tmp_path / "bin" / "pulumi"
    binary.parent.mkdir()
    binary.write_text(f"#!{sys.executable}" + STUB_PULUMI)
    binary.chmod(0o755)
    (tmp_path / "outputs.json").write_text(
        json.dumps({"loadBalancerArn": emulated.pool.load_balancer_arn, "compileMasterPoolTag": POOL})
    )
    monkeypatch.setenv("PATH", f"{binary.parent}:{os.environ['PATH']}")
    monkeypatch.setenv("STUB_DIR", str(tmp_path))
    return tmp_path


def stack_args(emulated: EmulatedTier, stats: StubStats) -> list[str]:
    return ["--stack", "dev", "--endpoint-url", emulated.pool.endpoint, "--stats-url", stats.url]


# --- the stub is HAProxy's page ------------------------------------------------------------------


def test_the_stub_serves_the_real_page_row_for_row(emulated: EmulatedTier, stats: StubStats) -> None:
    """Its rows are HAProxy's: the real capture's slots put back give the capture itself."""
    rows = [",".join(row[name] for name in FIELDS) for row in ROWS]
    assert "\n".join([HEADER, *rows]) + "\n" == REAL_STATS
    page = requests.get(
        stats.url.replace("{address}", emulated.private_ip(emulated.haproxy_ids[0])), timeout=10
    )
    lines = page.text.splitlines()
    assert lines[0] == HEADER and len(lines) == len(REAL_STATS.splitlines())
    assert [line.split(",")[:2] for line in lines] == [
        line.split(",")[:2] for line in REAL_STATS.splitlines()
    ]


def test_poolctl_reads_the_real_capture() -> None:
    slots = tier.parse_stats(REAL_STATS)
    puppetserver = slots[pe.PUPPETSERVER_PORT]
    assert [slot.name for slot in puppetserver] == [f"compile-master-{i}" for i in range(1, 9)]
    drained, up, down = puppetserver[:3]
    assert (drained.address, drained.status, drained.sessions, drained.out) == (
        "",
        "MAINT (resolution)",
        1,
        True,
    )
    assert (up.address, up.status, up.check) == ("127.0.0.12", "UP", "L7OK 200")
    assert (down.address, down.state) == ("127.0.0.11", "DOWN (L7STS 503)")
    assert slots[pe.PCP_BROKER_PORT][2].status == "UP 1/2", "going down: one more failure"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (HIDDEN, "stats show-legends"),
        ("<html>HAProxy Statistics</html>", "not HAProxy's CSV stats"),
        (REAL_STATS.replace(pe.HAPROXY_PCP_BROKER_BACKEND, "other"), "no backend compile_masters_pcp_broker"),
        ("# pxname,svname,status\nx,y,UP\n", "lack the fields scur, qcur, addr"),
    ],
    ids=["addresses hidden", "html", "another haproxy.cfg", "truncated"],
)
def test_pages_poolctl_cannot_use_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(tier.StatsError, match=message):
        tier.parse_stats(text)


# --- status --------------------------------------------------------------------------------------


def test_status_shows_each_compile_master_as_the_haproxy_instances_see_it(
    emulated: EmulatedTier, stats: StubStats
) -> None:
    first, second, third = emulated.compile_master_ids
    stats.sessions(first, pe.PUPPETSERVER_PORT, 5, 2)
    stats.sessions(second, pe.PCP_BROKER_PORT, 40)
    run = poolctl("status", *status_args(emulated, stats))
    assert run.code == 0, run.out + run.err
    for index, haproxy in enumerate(emulated.haproxy_ids):
        cells = row_of(run.out, haproxy)
        assert cells[1:] == [
            f"pe-lb-haproxy-{index}",
            emulated.private_ip(haproxy),
            cells[3],
            "in",
            "healthy",
            "healthy",
            "read",
        ]
    record = emulated.record()
    assert (
        f"Discovery record {pe.discovery_name(POOL)} (zone {emulated.zone_id}, TTL 10 s): {', '.join(record)}"
        in run.out
    )
    # Each compile master: in the record; 8140's state, sessions, queued; 8142's; summed over both.
    assert row_of(run.out, first)[4:] == ["in", "UP", "10", "4", "UP", "0", "0"]
    assert row_of(run.out, second)[4:] == ["in", "UP", "0", "0", "UP", "80", "0"]
    assert row_of(run.out, third)[4:] == ["in", "UP", "0", "0", "UP", "0", "0"]
    header = next(line for line in run.out.splitlines() if line.startswith("INSTANCE") and "SESSIONS" in line)
    assert (
        f"8140 {pe.HAPROXY_PUPPETSERVER_BACKEND}" in header
        and f"8142 {pe.HAPROXY_PCP_BROKER_BACKEND}" in header
    )
    assert "3 of 3 compile masters in rotation UP on every HAProxy, on 8140 and 8142" in run.out
    assert "2 of 2 HAProxy instances healthy on every port" in run.out


def test_status_json_has_each_haproxys_view(emulated: EmulatedTier, stats: StubStats) -> None:
    first = emulated.compile_master_ids[0]
    stats.sessions(first, pe.PUPPETSERVER_PORT, 5, 2)
    stats.of(emulated.haproxy_ids[1]).slot_of(emulated.private_ip(first)).sessions[pe.PUPPETSERVER_PORT] = (
        1,
        0,
    )
    run = poolctl("status", "--json", *status_args(emulated, stats))
    assert run.code == 0, run.err
    data = run.json
    assert data["balancing"] == "least-connections" and data["healthy"] is True and data["pool"] == POOL
    assert [h["instanceId"] for h in data["haproxies"]] == emulated.haproxy_ids
    assert all(
        h["health"]["8140"]["state"] == "healthy" and h["statsError"] is None for h in data["haproxies"]
    )
    assert (
        data["discovery"]["values"] == emulated.record()
        and data["discovery"]["ttl"] == pe.DISCOVERY_TTL_SECONDS
    )
    master = next(m for m in data["compileMasters"] if m["instanceId"] == first)
    assert master["rotation"] == "in" and master["inRecord"] is True and master["up"] is True
    puppetserver = master["backends"]["8140"]
    assert puppetserver["backend"] == pe.HAPROXY_PUPPETSERVER_BACKEND
    assert (puppetserver["state"], puppetserver["sessions"], puppetserver["queued"]) == ("UP", 6, 2)
    per_haproxy = puppetserver["haproxies"]
    assert set(per_haproxy) == set(emulated.haproxy_ids)
    assert per_haproxy[emulated.haproxy_ids[0]] == {
        "state": "UP",
        "slot": "compile-master-1",
        "sessions": 5,
        "queued": 2,
        "check": "L7OK 200",
    }
    assert per_haproxy[emulated.haproxy_ids[1]]["sessions"] == 1
    assert data["outOfRotation"] == [] and data["strayAddresses"] == [] and data["statsUnread"] == []


def test_a_compile_master_down_on_one_haproxy_exits_1(emulated: EmulatedTier, stats: StubStats) -> None:
    sick = emulated.compile_master_ids[2]
    stats.of(emulated.haproxy_ids[1]).status[(emulated.private_ip(sick), pe.PUPPETSERVER_PORT)] = "DOWN"
    run = poolctl("status", *status_args(emulated, stats))
    assert run.code == 1
    assert row_of(run.out, sick)[5] == "DOWN (L7STS 503) on 1 of 2, UP on 1 of 2"
    assert "2 of 3 compile masters in rotation UP on every HAProxy" in run.out
    data = poolctl("status", "--json", *status_args(emulated, stats)).json
    assert data["healthy"] is False
    seen = next(m for m in data["compileMasters"] if m["instanceId"] == sick)["backends"]["8140"]["haproxies"]
    assert (
        seen[emulated.haproxy_ids[1]]["state"] == "DOWN"
        and seen[emulated.haproxy_ids[1]]["check"] == "L7STS 503"
    )


def test_up_with_a_failed_check_is_not_up(emulated: EmulatedTier, stats: StubStats) -> None:
    """UP 1/2: still sent connections, but one more failed check takes it down."""
    shaky = emulated.compile_master_ids[0]
    stats.of(emulated.haproxy_ids[0]).status[(emulated.private_ip(shaky), pe.PCP_BROKER_PORT)] = "UP 1/2"
    run = poolctl("status", *status_args(emulated, stats))
    assert run.code == 1
    assert row_of(run.out, shaky)[8] == "UP on 1 of 2, UP 1/2 on 1 of 2"
    assert "2 of 3 compile masters in rotation UP on every HAProxy" in run.out


def test_with_flow_hash_the_pools_haproxy_instances_are_no_compile_masters(moto_endpoint: str) -> None:
    """While the pool moves to least connections its HAProxy instances exist before they are targets:
    they carry the pool's tag, but status lists them nowhere (nor as compile masters out of rotation)."""
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    flow_hash = build_pool(moto_endpoint)
    newcomer = haproxy_instance(flow_hash, "pe-lb-haproxy-0", flow_hash.subnet_ids[0])
    run = poolctl("status", *flow_hash.cli_args())
    assert run.code == 0, run.out
    assert newcomer not in run.out
    assert poolctl("status", "--json", *flow_hash.cli_args()).json["balancing"] == "flow-hash"


@pytest.mark.parametrize(
    ("answer", "error"),
    [(503, "HTTP 503 from http://127.0.0.1:"), ("close", "reading http://127.0.0.1:")],
    ids=["an error page", "no answer"],
)
def test_an_haproxy_whose_stats_cannot_be_read_is_reported(
    emulated: EmulatedTier, stats: StubStats, answer: int | str, error: str
) -> None:
    broken = emulated.haproxy_ids[1]
    stats.of(broken).answer = answer
    run = poolctl("status", *status_args(emulated, stats))
    assert run.code == 1 and "Traceback" not in run.err and run.err == ""
    assert row_of(run.out, broken)[-1].startswith(f"NOT READ: {error}")
    assert row_of(run.out, emulated.haproxy_ids[0])[-1] == "read"
    assert f"stats of 1 HAProxy instances not read: {broken} (poolctl reads them on port 8404" in run.out
    # What the other one sees is still shown.
    assert row_of(run.out, emulated.compile_master_ids[0])[5] == "UP"
    data = poolctl("status", "--json", *status_args(emulated, stats)).json
    assert data["statsUnread"] == [broken] and data["healthy"] is False
    assert data["haproxies"][1]["statsError"].startswith(error)


def test_no_haproxy_reachable_says_so_for_each(emulated: EmulatedTier) -> None:
    closed = f"http://127.0.0.1:{free_port()}/{{address}}/;csv"
    run = poolctl("status", *emulated.pool.cli_args(), "--stats-url", closed)
    assert run.code == 1 and "Traceback" not in run.err
    for haproxy in emulated.haproxy_ids:
        assert "NOT READ: cannot reach" in row_of(run.out, haproxy)[-1]
    assert row_of(run.out, emulated.compile_master_ids[0])[5:] == ["not read", "0", "0", "not read", "0", "0"]


def test_the_rendered_config_without_show_legends_is_named(emulated: EmulatedTier, stats: StubStats) -> None:
    stats.hide_addresses = True
    run = poolctl("status", *status_args(emulated, stats))
    assert run.code == 1
    for haproxy in emulated.haproxy_ids:
        assert row_of(run.out, haproxy)[-1] == (
            "NOT READ: its stats page hides the servers' addresses: the `listen stats` section of "
            "haproxy.cfg needs `stats show-legends`"
        )


def test_drained_out_and_stray_addresses(emulated: EmulatedTier, stats: StubStats, tmp_path: Path) -> None:
    drained, out, kept = emulated.compile_master_ids
    emulated.set_record([emulated.private_ip(kept), "10.20.9.9"])
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "loadBalancerArn": emulated.pool.load_balancer_arn,
                "drainedCompileMasterIds": [drained],
                "compileMasterPoolTag": POOL,
            }
        )
    )
    where = ["--outputs", str(outputs), "--endpoint-url", emulated.pool.endpoint, "--stats-url", stats.url]
    run = poolctl("status", *where)
    assert run.code == 1
    assert row_of(run.out, drained)[4:] == ["drained", "absent", "0", "0", "absent", "0", "0"]
    assert row_of(run.out, out)[4] == "out" and row_of(run.out, kept)[4] == "in"
    assert "1 drained on purpose (drainedCompileMasters)" in run.out
    assert (
        f"1 out of rotation and not drained by the stack: {out} (poolctl undrain, or `pulumi up`)" in run.out
    )
    assert f"the discovery record holds 10.20.9.9, no compile master's of pool {POOL}" in run.out
    data = poolctl("status", "--json", *where).json
    assert data["outOfRotation"] == [out] and data["strayAddresses"] == ["10.20.9.9"]


def test_a_target_that_is_not_the_pools_haproxy_is_foreign(emulated: EmulatedTier, stats: StubStats) -> None:
    """A compile master left registered from flow-hash balancing, next to the HAProxy instances."""
    leftover = emulated.compile_master_ids[0]
    for port, arn in emulated.pool.target_group_arns.items():
        emulated.pool.elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": leftover, "Port": port}])
    run = poolctl("status", *status_args(emulated, stats))
    assert run.code == 1
    assert row_of(run.out, leftover)[4] == "foreign" and row_of(run.out, leftover)[-1] == "-"
    assert f"1 in the target groups but not HAProxy instances of pool {POOL}" in run.out
    assert poolctl("status", "--json", *status_args(emulated, stats)).json["foreign"] == [leftover]


def test_without_the_pools_identity_status_shows_the_haproxy_targets_and_says_why(
    emulated: EmulatedTier, stats: StubStats
) -> None:
    run = poolctl(
        "status", "--load-balancer", emulated.pool.load_balancer_name,
        "--endpoint-url", emulated.pool.endpoint, "--stats-url", stats.url,
    )  # fmt: skip
    assert run.code == 0, run.out
    assert all(haproxy in run.out for haproxy in emulated.haproxy_ids)
    assert emulated.compile_master_ids[0] not in run.out
    assert (
        "the targets are HAProxy instances (balancing least-connections): with the pool's identity" in run.out
    )
    where = ["--load-balancer", emulated.pool.load_balancer_name, "--endpoint-url", emulated.pool.endpoint]
    assert poolctl("status", "--json", *where).json["balancing"] == "least-connections"


def test_a_missing_discovery_zone_is_shown_and_exits_1(emulated: EmulatedTier, stats: StubStats) -> None:
    emulated.route53.change_tags_for_resource(
        ResourceType="hostedzone", ResourceId=emulated.zone_id, RemoveTagKeys=[pe.POOL_TAG]
    )
    run = poolctl("status", *status_args(emulated, stats))
    assert run.code == 1
    assert row_of(run.out, emulated.compile_master_ids[0])[4:6] == ["unknown", "UP"]
    assert (
        f"Discovery record not read: no private hosted zone {pe.discovery_zone_name(POOL)} tagged "
        f"{pe.POOL_TAG}={POOL} (the pool's discovery record)"
    ) in run.out
    drain = poolctl("drain", emulated.compile_master_ids[0], *args(emulated, stats))
    one_line_error(drain, f"no private hosted zone {pe.discovery_zone_name(POOL)} tagged")


def test_a_zone_of_another_vpc_is_not_the_pools_record(emulated: EmulatedTier, stats: StubStats) -> None:
    other = emulated.pool.ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    emulated.route53.associate_vpc_with_hosted_zone(
        HostedZoneId=emulated.zone_id, VPC={"VPCRegion": "eu-west-1", "VPCId": other}
    )
    emulated.route53.disassociate_vpc_from_hosted_zone(
        HostedZoneId=emulated.zone_id, VPC={"VPCRegion": "eu-west-1", "VPCId": emulated.pool.vpc_id}
    )
    run = poolctl("drain", emulated.compile_master_ids[0], *args(emulated, stats))
    one_line_error(run, f"none is associated with the load balancer's VPC {emulated.pool.vpc_id}")
    assert len(emulated.record()) == 3


# --- drain ---------------------------------------------------------------------------------------


def test_drain_takes_it_out_of_the_record_and_waits_for_every_haproxy(
    emulated: EmulatedTier, stats: StubStats
) -> None:
    victim, *others = emulated.compile_master_ids
    address = emulated.private_ip(victim)
    stats.sessions(victim, pe.PUPPETSERVER_PORT, 3)
    first, second = sorted(emulated.haproxy_ids)
    lagging = stats.of(second)
    lagging.follows = False

    class FollowOnFirstProgress(io.StringIO):
        """The second HAProxy catches up with the record once poolctl has shown it still UP."""

        def write(self, text: str) -> int:
            if "8140 UP" in text:
                lagging.follows = True
            return super().write(text)

    progress = FollowOnFirstProgress()
    code = cli.main(["drain", victim, *args(emulated, stats)], out=io.StringIO(), progress=progress)
    err = progress.getvalue()
    assert code == 0, err
    assert emulated.record() == [emulated.private_ip(i) for i in others]
    lines = err.splitlines()
    assert lines[0] == f"taking {victim} ({address}) out of the discovery record {pe.discovery_name(POOL)}"
    assert lines[1] == f"  {pe.discovery_name(POOL)} = {', '.join(emulated.record())}"
    assert lines[2].endswith(f"] {first}: 8140 absent (3 sessions finishing); {second}: 8140 UP")
    assert lines[3].endswith(
        f"] {first}: 8140 absent (3 sessions finishing); {second}: 8140 absent (3 sessions finishing)"
    )
    assert lines[4].startswith(f"{victim} out of rotation on every HAProxy after ")
    assert lines[5] == (
        f"6 8140 sessions still open on {victim} finish there (agent runs in flight; its 8142 ones are "
        "closed, and PXP agents reconnect to another broker)"
    )
    assert "add pool index 0 to the stack's drainedCompileMasters (poolctl does it with --stack)" in lines[6]
    after = poolctl("status", *status_args(emulated, stats))
    assert row_of(after.out, victim)[4:6] == ["out", "absent"]
    assert row_of(after.out, first)[-1] == "read, 3 finishing on 8140"


def test_drain_json(emulated: EmulatedTier, stats: StubStats) -> None:
    victim = emulated.compile_master_ids[0]
    run = poolctl("drain", victim, "--json", *args(emulated, stats))
    assert run.code == 0, run.err
    data = run.json
    assert data["done"] is True and data["instanceId"] == victim
    assert set(data["haproxies"]) == set(emulated.haproxy_ids)
    assert all(
        h["backends"]["8140"]["state"] == "absent" and h["error"] is None for h in data["haproxies"].values()
    )


def test_drain_with_a_stack_writes_the_config_before_the_record(
    emulated: EmulatedTier, stats: StubStats, stub_pulumi: Path
) -> None:
    (stub_pulumi / "drained.json").write_text("[1]")
    emulated.set_record([emulated.private_ip(i) for i in emulated.compile_master_ids[::2]])
    victim = emulated.compile_master_ids[2]
    run = poolctl("drain", victim, *stack_args(emulated, stats), "--interval", "0.02")
    assert run.code == 0, run.err
    assert config(stub_pulumi) == [1, 2]
    assert emulated.record() == [emulated.private_ip(emulated.compile_master_ids[0])]
    assert run.err.index("drainedCompileMasters = [1, 2]") < run.err.index("out of the discovery record")
    assert "drainedCompileMasters" not in run.err.split("after")[-1], "no advice: the stack keeps it"


def test_drain_refuses_the_last_compile_master_in_the_record_even_with_force(
    emulated: EmulatedTier, stats: StubStats
) -> None:
    last = emulated.compile_master_ids[0]
    emulated.set_record([emulated.private_ip(last)])
    for flags in ([], ["--force"]):
        run = poolctl("drain", last, *flags, *args(emulated, stats))
        one_line_error(
            run, f"refusing to drain {last}: it is the only compile master in the discovery record"
        )
        assert emulated.record() == [emulated.private_ip(last)]


def test_drain_refuses_when_no_other_is_up_everywhere_unless_forced(
    emulated: EmulatedTier, stats: StubStats
) -> None:
    victim, *others = emulated.compile_master_ids
    sick = stats.of(emulated.haproxy_ids[0])
    for other in others:
        sick.status[(emulated.private_ip(other), pe.PCP_BROKER_PORT)] = "DOWN"
    run = poolctl("drain", victim, *args(emulated, stats))
    one_line_error(
        run, f"refusing to drain {victim}: no other compile master in the discovery record is UP on every"
    )
    assert len(emulated.record()) == 3
    forced = poolctl("drain", victim, "--force", *args(emulated, stats))
    assert forced.code == 0, forced.err
    assert emulated.private_ip(victim) not in emulated.record()


def test_drain_refuses_what_it_could_not_see_done(emulated: EmulatedTier, stats: StubStats) -> None:
    """An HAProxy's stats unreadable (poolctl outside adminCidrs, or that HAProxy sick): no change."""
    stats.of(emulated.haproxy_ids[1]).answer = "close"
    victim = emulated.compile_master_ids[0]
    run = poolctl("drain", victim, *args(emulated, stats))
    one_line_error(
        run, f"cannot drain {victim}: the stats of HAProxy {emulated.haproxy_ids[1]} cannot be read"
    )
    assert run.err.rstrip().endswith("nothing changed")
    assert len(emulated.record()) == 3


def test_drain_of_what_is_no_compile_master_of_the_pool(emulated: EmulatedTier, stats: StubStats) -> None:
    haproxy = emulated.haproxy_ids[0]
    run = poolctl("drain", haproxy, *args(emulated, stats))
    one_line_error(
        run, f"{haproxy} is not a compile master of pool {POOL} (the targets are HAProxy instances"
    )
    victim = emulated.compile_master_ids[1]
    emulated.set_record([emulated.private_ip(i) for i in emulated.compile_master_ids if i != victim])
    again = poolctl("drain", victim, *args(emulated, stats))
    one_line_error(again, f"{victim} ({emulated.private_ip(victim)}) is not in the discovery record")


def test_drain_needs_the_pools_identity(emulated: EmulatedTier, stats: StubStats) -> None:
    run = poolctl(
        "drain", emulated.compile_master_ids[0], "--load-balancer", emulated.pool.load_balancer_name,
        "--endpoint-url", emulated.pool.endpoint, "--stats-url", stats.url,
    )  # fmt: skip
    one_line_error(
        run, "drain through the HAProxy tier (balancing least-connections) needs the pool's identity"
    )


def test_drain_not_seen_by_every_haproxy_in_time_is_undone(
    emulated: EmulatedTier, stats: StubStats, stub_pulumi: Path
) -> None:
    """One HAProxy never follows the record (its resolver broken): the drain times out, and the
    record and the stack's config are put back, newest first; nothing changed, exit 2."""
    before = emulated.record()
    stuck = emulated.haproxy_ids[1]
    stats.of(stuck).follows = False
    victim = emulated.compile_master_ids[1]
    address = emulated.private_ip(victim)
    run = poolctl("drain", victim, *stack_args(emulated, stats), "--interval", "0.02", "--timeout", "0.3")
    last = ends_in_error(run, f"not every HAProxy took {victim} out of rotation within 0.3s")
    assert f"{stuck}: 8140 UP" in last
    record = pe.discovery_name(POOL)
    assert last.endswith(
        f"; nothing changed (stack dev: drainedCompileMasters = [1] (was []), "
        f"removed {address} ({victim}) from the discovery record {record}: undone)"
    )
    assert f"timed out after 0.3s waiting for {victim} out of rotation on every HAProxy" in run.err
    assert sorted(emulated.record()) == sorted(before), "an A record set's order means nothing"
    assert config(stub_pulumi) is None


def test_a_drain_whose_undo_fails_exits_3_and_says_what_changed(
    emulated: EmulatedTier, stats: StubStats, monkeypatch: pytest.MonkeyPatch
) -> None:
    stats.of(emulated.haproxy_ids[0]).follows = False
    refuse_after(monkeypatch, 1)
    victim = emulated.compile_master_ids[0]
    address = emulated.private_ip(victim)
    run = poolctl("drain", victim, *args(emulated, stats), "--timeout", "0.3")
    last = ends_in_error(run, "not every HAProxy took", code=3)
    assert (
        f"; stopped part-way, changed: removed {address} ({victim}) from the discovery record "
        f"{pe.discovery_name(POOL)}; undoing failed: AWS denied the request (AccessDenied)"
    ) in last
    assert address not in emulated.record()


def test_a_record_change_refused_by_route53_puts_the_config_back(
    emulated: EmulatedTier, stats: StubStats, stub_pulumi: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refuse_after(monkeypatch, 0)
    victim = emulated.compile_master_ids[2]
    run = poolctl("drain", victim, *stack_args(emulated, stats))
    last = ends_in_error(run, "AWS denied the request (AccessDenied)")
    assert last.endswith("; nothing changed (stack dev: drainedCompileMasters = [2] (was []): undone)")
    assert config(stub_pulumi) is None
    assert len(emulated.record()) == 3


def refuse_after(monkeypatch: pytest.MonkeyPatch, allowed: int) -> None:
    """Route53 accepts ``allowed`` record changes, then answers AccessDenied (moto enforces no IAM)."""
    original = Pool.set_discovery
    calls = [0]

    def set_discovery(self: Pool, *args: Any) -> None:
        calls[0] += 1
        if calls[0] > allowed:
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "not allowed"}}, "ChangeResourceRecordSets"
            )
        original(self, *args)

    monkeypatch.setattr(Pool, "set_discovery", set_discovery)


def test_interrupted_while_waiting_says_what_changed(emulated: EmulatedTier, stats: StubStats) -> None:
    stats.of(emulated.haproxy_ids[0]).follows = False
    victim = emulated.compile_master_ids[0]

    class InterruptOnFirstProgress(io.StringIO):
        def write(self, text: str) -> int:
            if "] " in text:
                raise KeyboardInterrupt
            return super().write(text)

    progress = InterruptOnFirstProgress()
    code = cli.main(["drain", victim, *args(emulated, stats)], out=io.StringIO(), progress=progress)
    assert code == 3
    assert progress.getvalue().strip().splitlines()[-1] == (
        f"poolctl: interrupted; stopped part-way, changed: removed {emulated.private_ip(victim)} ({victim}) "
        f"from the discovery record {pe.discovery_name(POOL)}"
    )


# --- undrain -------------------------------------------------------------------------------------


def test_undrain_puts_it_back_and_waits_until_up_everywhere(emulated: EmulatedTier, stats: StubStats) -> None:
    victim = emulated.compile_master_ids[1]
    address = emulated.private_ip(victim)
    emulated.set_record([emulated.private_ip(i) for i in emulated.compile_master_ids if i != victim])
    run = poolctl("undrain", victim, *args(emulated, stats))
    assert run.code == 0, run.err
    assert emulated.record()[-1] == address and len(emulated.record()) == 3
    lines = run.err.splitlines()
    assert lines[0] == f"putting {victim} ({address}) back in the discovery record {pe.discovery_name(POOL)}"
    first, second = sorted(emulated.haproxy_ids)
    # UP 1/2 (its first check not passed yet) is not UP: poolctl waits for the check.
    assert lines[2].endswith(f"] {first}: 8140 UP 1/2, 8142 UP 1/2; {second}: 8140 UP 1/2, 8142 UP 1/2")
    assert lines[3].endswith(f"] {first}: 8140 UP, 8142 UP; {second}: 8140 UP, 8142 UP")
    assert lines[4].startswith(f"{victim} UP on every HAProxy after ")
    assert "remove pool index 1 from the stack's drainedCompileMasters" in lines[5]


def test_undrain_with_a_stack_takes_it_out_of_the_drained_list(
    emulated: EmulatedTier, stats: StubStats, stub_pulumi: Path
) -> None:
    (stub_pulumi / "drained.json").write_text("[1]")
    victim = emulated.compile_master_ids[1]
    emulated.set_record([emulated.private_ip(i) for i in emulated.compile_master_ids if i != victim])
    run = poolctl("undrain", victim, *stack_args(emulated, stats), "--interval", "0.02")
    assert run.code == 0, run.err
    assert config(stub_pulumi) is None
    assert emulated.private_ip(victim) in emulated.record()


def test_undrain_that_never_comes_up_is_undone(emulated: EmulatedTier, stats: StubStats) -> None:
    victim = emulated.compile_master_ids[1]
    address = emulated.private_ip(victim)
    without = [emulated.private_ip(i) for i in emulated.compile_master_ids if i != victim]
    emulated.set_record(without)
    stats.of(emulated.haproxy_ids[0]).status[(address, pe.PUPPETSERVER_PORT)] = "DOWN"
    run = poolctl("undrain", victim, *args(emulated, stats), "--timeout", "0.3")
    last = ends_in_error(run, f"not every HAProxy has {victim} UP within 0.3s")
    assert "8140 DOWN (L7STS 503)" in last
    record = pe.discovery_name(POOL)
    assert last.endswith(
        f"nothing changed (added {address} ({victim}) to the discovery record {record}: undone)"
    )
    assert emulated.record() == without


def test_undrain_refuses_an_haproxy_and_one_in_the_record(emulated: EmulatedTier, stats: StubStats) -> None:
    haproxy = emulated.haproxy_ids[0]
    run = poolctl("undrain", haproxy, *args(emulated, stats))
    one_line_error(run, f"{haproxy} is not a compile master (pe-lb:role is haproxy)")
    member = emulated.compile_master_ids[0]
    again = poolctl("undrain", member, *args(emulated, stats))
    one_line_error(again, f"{member} ({emulated.private_ip(member)}) is in the discovery record")
    assert len(emulated.record()) == 3


# --- wait-healthy --------------------------------------------------------------------------------


def test_wait_healthy_waits_for_the_haproxy_targets(emulated: EmulatedTier, stats: StubStats) -> None:
    run = poolctl("wait-healthy", *args(emulated, stats))
    assert run.code == 0, run.err
    assert "8140: 2/2 healthy; 8142: 2/2 healthy" in run.err
    assert "every HAProxy instance healthy after" in run.err
    emulated.pool.ec2.stop_instances(InstanceIds=[emulated.haproxy_ids[1]])
    stopped = poolctl("wait-healthy", *args(emulated, stats), "--timeout", "0.3")
    assert stopped.code == 1
    assert f"{emulated.haproxy_ids[1]} unused (Target.InvalidState) on 8140" in stopped.err
    one = poolctl("wait-healthy", "--instance", emulated.haproxy_ids[0], *args(emulated, stats))
    assert one.code == 0, one.err


def test_a_stopped_haproxy_is_shown_and_not_asked(emulated: EmulatedTier, stats: StubStats) -> None:
    stopped = emulated.haproxy_ids[1]
    emulated.pool.ec2.stop_instances(InstanceIds=[stopped])
    asked = stats.of(stopped).served
    run = poolctl("status", *status_args(emulated, stats))
    assert run.code == 1
    assert row_of(run.out, stopped)[-3:] == [
        "unused (Target.InvalidState)",
        "unused (Target.InvalidState)",
        "not read (stopped)",
    ]
    assert stats.of(stopped).served == asked
    drain = poolctl("drain", emulated.compile_master_ids[0], *args(emulated, stats))
    assert drain.code == 0, drain.err


# --- flags ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:8404/;csv", "has no {address} for the HAProxy's private IP"),
        ("ftp://{address}/;csv", "is not an http:// or https:// URL"),
    ],
)
def test_a_bad_stats_url_is_a_usage_error(url: str, message: str) -> None:
    run = poolctl("status", "--load-balancer", "pe-lb", "--stats-url", url)
    one_line_error(run, message)


def test_the_stats_url_is_the_haproxy_private_address_by_default() -> None:
    assert cli.parser().parse_args(["status"]).stats_url == f"http://{{address}}:{pe.HAPROXY_STATS_PORT}/;csv"
    assert "--stats-url" not in cli.parser().format_help()
