"""poolctl probe against a real HTTPS server on 127.0.0.1, with certificates made here."""

from __future__ import annotations

import io
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from components.poolctl import cli
from components.poolctl.probe import name_matches
from tests.aws_emulator import free_port
from tests.certs import LocalCA, Pem

POOL = "puppet-pool.example.com"
LOAD_BALANCER_ARN = (
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/pe-lb/0123456789abcdef"
)


class StatusHandler(BaseHTTPRequestHandler):
    status = 200
    body = "running"
    installer = f"#!/bin/bash\nPE_MASTER='{POOL}'\ncurl https://{POOL}:8140/packages/...\n"
    paths: ClassVar[list[str]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        installer = self.path == "/packages/current/install.bash"
        data = (self.installer if installer else self.body).encode()
        self.send_response(200 if installer else self.status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


Serve = Callable[..., tuple[int, type[StatusHandler]]]


@pytest.fixture
def ca() -> LocalCA:
    return LocalCA()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    servers: list[ThreadingHTTPServer] = []

    def start(
        pem: Pem, status: int = 200, body: str = "running", installer: str = StatusHandler.installer
    ) -> tuple[int, type[StatusHandler]]:
        pem.write(tmp_path / "server.pem", tmp_path / "server.key")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
        handler = type(
            "Handler", (StatusHandler,), {"status": status, "body": body, "installer": installer, "paths": []}
        )
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1], handler

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def probe(port: int, *extra: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    argv = ["probe", "--address", POOL, "--connect-to", "127.0.0.1", "--port", str(port), *extra]
    code = cli.main(argv, out=out, progress=err)
    return code, out.getvalue() + err.getvalue()


def ca_file(ca: LocalCA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    path.write_bytes(ca.cert_pem)
    return str(path)


def test_healthy_pool_with_its_name_in_the_certificate(ca: LocalCA, serve: Serve, tmp_path: Path) -> None:
    port, handler = serve(ca.issue("cm-0.example.com", ["cm-0.example.com", "puppet", POOL]))
    code, output = probe(port, "--cacert", ca_file(ca, tmp_path))
    assert code == 0, output
    assert handler.paths == ["/status/v1/simple", "/packages/current/install.bash"]
    assert "status:      200" in output and "body:        running" in output
    assert f"pool name:   valid for {POOL}" in output
    assert "chain:       verified against" in output
    assert f"installer:   https://{POOL}:{port}/packages/current/install.bash names {POOL}" in output


@pytest.mark.parametrize(
    "installer",
    [
        "#!/bin/bash\nPE_MASTER='cm-0.example.com'\n",
        f"#!/bin/bash\nPE_MASTER='old-{POOL}'\n",  # a longer name that merely ends with the pool's
    ],
)
def test_an_install_script_that_does_not_name_the_pool_fails_the_probe(
    ca: LocalCA, serve: Serve, tmp_path: Path, installer: str
) -> None:
    port, _ = serve(ca.issue(POOL, [POOL]), installer=installer)
    code, output = probe(port, "--cacert", ca_file(ca, tmp_path))
    assert code == 1
    assert f"install.bash does NOT name {POOL}" in output
    assert "Set pe_repo::compile_master_pool_address (PeRepoPoolAddress), then run Puppet" in output


def test_pool_name_missing_from_alt_names_is_the_classic_failure(
    ca: LocalCA, serve: Serve, tmp_path: Path
) -> None:
    port, _ = serve(ca.issue("cm-0.example.com", ["cm-0.example.com", "puppet"]))
    code, output = probe(port, "--cacert", ca_file(ca, tmp_path))
    assert code == 1
    assert f"pool name:   NOT valid for {POOL}" in output
    assert f"does not name {POOL} (it names: cm-0.example.com, puppet)" in output
    assert "dns_alt_names" in output


def test_certificate_from_another_ca_is_not_trusted(ca: LocalCA, serve: Serve, tmp_path: Path) -> None:
    port, _ = serve(LocalCA("Someone else").issue(POOL, [POOL]))
    code, output = probe(port, "--cacert", ca_file(ca, tmp_path))
    assert code == 1
    assert "certificate not trusted by" in output


def test_without_cacert_names_are_still_checked(ca: LocalCA, serve: Serve) -> None:
    port, _ = serve(ca.issue(POOL, [POOL]))
    code, output = probe(port)
    assert code == 0, output
    assert "chain:       not verified (no --cacert)" in output


def test_unhealthy_status_endpoint(ca: LocalCA, serve: Serve, tmp_path: Path) -> None:
    port, _ = serve(ca.issue(POOL, [POOL]), status=503, body="error")
    code, output = probe(port, "--cacert", ca_file(ca, tmp_path))
    assert code == 1
    assert "status:      503" in output
    assert "/status/v1/simple answered HTTP 503: error" in output


def test_nothing_listening(tmp_path: Path) -> None:
    code, output = probe(free_port())
    assert code == 1
    assert "no answer from 127.0.0.1" in output


def test_json_output(ca: LocalCA, serve: Serve, tmp_path: Path) -> None:
    port, _ = serve(ca.issue(POOL, ["*.example.com"]))
    out = io.StringIO()
    argv = ["probe", "--address", POOL, "--connect-to", "127.0.0.1", "--port", str(port), "--json"]
    assert cli.main(argv, out=out, progress=io.StringIO()) == 0
    result = json.loads(out.getvalue())
    assert result["ok"] is True and result["status"] == 200
    assert result["certificateNames"] == ["*.example.com"]
    assert result["installerNamesPool"] is True and result["nameValid"] is True


def test_pool_address_from_saved_outputs(ca: LocalCA, serve: Serve, tmp_path: Path) -> None:
    port, _ = serve(ca.issue(POOL, [POOL]))
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"poolAddress": POOL, "loadBalancerArn": LOAD_BALANCER_ARN}))
    out = io.StringIO()
    argv = ["probe", "--outputs", str(outputs), "--connect-to", "127.0.0.1", "--port", str(port)]
    assert cli.main(argv, out=out, progress=io.StringIO()) == 0
    assert f"GET https://{POOL}:{port}/status/v1/simple via 127.0.0.1" in out.getvalue()


@pytest.mark.parametrize(
    ("address", "name", "matches"),
    [
        ("pool.example.com", "pool.example.com", True),
        ("Pool.Example.com.", "pool.example.com", True),
        ("pool.example.com", "*.example.com", True),
        ("a.pool.example.com", "*.example.com", False),
        ("example.com", "*.example.com", False),
        ("pool.example.com", "other.example.com", False),
        ("10.0.0.1", "10.0.0.1", True),
    ],
)
def test_name_matching(address: str, name: str, matches: bool) -> None:
    assert name_matches(address, name) is matches
