"""components/scripts/pe_repo_pool_address.py against a stub node classifier on 127.0.0.1.

The stub speaks HTTPS with client-certificate authentication, like the real
classifier on port 4433, and merges group deltas the way the classifier does
(a null value removes a key). Puppet is a stub executable that records its runs.
"""

import copy
import json
import shlex
import ssl
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from components import pe
from components.pe_repo import script_command
from components.scripts import SCRIPTS_DIR
from tests.certs import LocalCA

SCRIPT = SCRIPTS_DIR / "pe_repo_pool_address.py"
CERTNAME = "puppet.example.com"
PE_MASTER_ID = "4d3b6f3e-0000-4000-8000-000000000001"


@dataclass
class Classifier:
    groups: list[dict[str, Any]]
    posts: list[tuple[str, Any]] = field(default_factory=list)
    fail_with: tuple[int, str] | None = None
    client_cns: list[str] = field(default_factory=list)


def merge(target: dict[str, Any], delta: dict[str, Any]) -> None:
    for key, value in delta.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            merge(target.setdefault(key, {}), value)
        else:
            target[key] = value


def handler_for(state: Classifier) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _client(self) -> None:
            peer = self.connection.getpeercert()
            state.client_cns.append(dict(x[0] for x in peer["subject"])["commonName"])

        def do_GET(self) -> None:
            self._client()
            if self.path == "/classifier-api/v1/groups":
                self._reply(200, state.groups)
            else:
                self._reply(404, {"kind": "not-found"})

        def do_POST(self) -> None:
            self._client()
            delta = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.posts.append((self.path, delta))
            if state.fail_with:
                status, msg = state.fail_with
                self._reply(status, {"kind": "puppetlabs.classifier/schema-violation", "msg": msg})
                return
            group_id = self.path.rsplit("/", 1)[-1]
            group = next(g for g in state.groups if g["id"] == group_id)
            merge(group, delta)
            self._reply(200, group)

    return Handler


@dataclass
class Primary:
    classifier: Classifier
    url: str
    ssl_dir: Path
    puppet: Path
    puppet_log: Path

    def run(self, action: str, address: str, puppet_exit: int = 0) -> subprocess.CompletedProcess[str]:
        self.puppet.write_text(f'#!/bin/sh\necho "$@" >> {self.puppet_log}\nexit {puppet_exit}\n')
        argv = [
            sys.executable, str(SCRIPT), action, address,
            "--certname", CERTNAME, "--classifier-url", self.url, "--ssl-dir", str(self.ssl_dir),
            "--group", pe.PE_MASTER_NODE_GROUP, "--parameter", pe.PE_REPO_POOL_ADDRESS_PARAMETER,
            "--puppet", str(self.puppet),
        ]  # fmt: skip
        return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)

    @property
    def pool_address(self) -> Any:
        group = next(g for g in self.classifier.groups if g["name"] == "PE Master")
        return group.get("config_data", {}).get("pe_repo", {}).get("compile_master_pool_address")

    @property
    def puppet_runs(self) -> int:
        return len(self.puppet_log.read_text().splitlines()) if self.puppet_log.exists() else 0


@pytest.fixture
def primary(tmp_path: Path) -> Iterator[Primary]:
    ca = LocalCA()
    ssl_dir = tmp_path / "ssl"
    (ssl_dir / "certs").mkdir(parents=True)
    (ssl_dir / "certs" / "ca.pem").write_bytes(ca.cert_pem)
    ca.issue(CERTNAME, [CERTNAME]).write(
        ssl_dir / "certs" / f"{CERTNAME}.pem", ssl_dir / "private_keys" / f"{CERTNAME}.pem"
    )
    server_pem = ca.issue(CERTNAME, [CERTNAME, "localhost"], ["127.0.0.1"])
    server_pem.write(tmp_path / "server.pem", tmp_path / "server.key")

    state = Classifier(
        groups=[
            {"id": "00000000-0000-4000-8000-000000000000", "name": "All Nodes", "classes": {}},
            {
                "id": PE_MASTER_ID,
                "name": "PE Master",
                "classes": {"pe_repo": {}},
                "config_data": {"puppet_enterprise::profile::master": {"code_manager_auto_configure": True}},
            },
        ]
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    context.load_verify_locations(cadata=ca.cert_pem.decode())
    context.verify_mode = ssl.CERT_REQUIRED
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    puppet = tmp_path / "puppet"
    puppet.write_text("")
    puppet.chmod(0o755 | stat.S_IEXEC)
    try:
        yield Primary(
            state,
            f"https://127.0.0.1:{server.server_address[1]}/classifier-api",
            ssl_dir,
            puppet,
            tmp_path / "runs",
        )
    finally:
        server.shutdown()
        server.server_close()


def test_set_writes_config_data_then_runs_puppet(primary: Primary) -> None:
    result = primary.run("set", "pool.example.com")
    assert result.returncode == 0, result.stderr
    assert primary.pool_address == "pool.example.com"
    assert primary.classifier.posts == [
        (
            f"/classifier-api/v1/groups/{PE_MASTER_ID}",
            {"config_data": {"pe_repo": {"compile_master_pool_address": "pool.example.com"}}},
        )
    ]
    assert primary.classifier.client_cns and set(primary.classifier.client_cns) == {CERTNAME}
    assert primary.puppet_runs == 1
    assert "--detailed-exitcodes" in primary.puppet_log.read_text()
    # the rest of the group's config data is untouched
    group = next(g for g in primary.classifier.groups if g["id"] == PE_MASTER_ID)
    assert group["config_data"]["puppet_enterprise::profile::master"] == {"code_manager_auto_configure": True}


def test_set_is_idempotent(primary: Primary) -> None:
    assert primary.run("set", "pool.example.com").returncode == 0
    before = copy.deepcopy(primary.classifier.groups)
    second = primary.run("set", "pool.example.com")
    assert second.returncode == 0
    assert "unchanged" in second.stdout
    assert len(primary.classifier.posts) == 1
    assert primary.classifier.groups == before


def test_puppet_exit_2_means_changes_applied(primary: Primary) -> None:
    assert primary.run("set", "pool.example.com", puppet_exit=2).returncode == 0


def test_failed_puppet_run_fails_the_command(primary: Primary) -> None:
    result = primary.run("set", "pool.example.com", puppet_exit=6)
    assert result.returncode == 1
    assert "the Puppet run on the primary failed (exit 6)" in result.stderr


def test_unset_reverts_only_its_own_address(primary: Primary) -> None:
    primary.run("set", "new-pool.example.com")
    left = primary.run("unset", "old-pool.example.com")
    assert left.returncode == 0 and "left alone" in left.stdout
    assert primary.pool_address == "new-pool.example.com"
    removed = primary.run("unset", "new-pool.example.com")
    assert removed.returncode == 0, removed.stderr
    assert primary.pool_address is None
    assert primary.classifier.posts[-1][1] == {
        "config_data": {"pe_repo": {"compile_master_pool_address": None}}
    }


def test_classifier_error_is_reported_loudly(primary: Primary) -> None:
    primary.classifier.fail_with = (400, "pe_repo has no parameter compile_master_pool_address")
    result = primary.run("set", "pool.example.com")
    assert result.returncode == 1
    assert "answered HTTP 400" in result.stderr
    assert "pe_repo has no parameter compile_master_pool_address" in result.stderr
    assert "Traceback" not in result.stderr
    assert primary.puppet_runs == 0


def test_missing_node_group_is_reported(primary: Primary) -> None:
    primary.classifier.groups = [g for g in primary.classifier.groups if g["name"] != "PE Master"]
    result = primary.run("set", "pool.example.com")
    assert result.returncode == 1
    assert "no node group named 'PE Master'" in result.stderr


def test_unreadable_certificates_are_reported(primary: Primary) -> None:
    (primary.ssl_dir / "private_keys" / f"{CERTNAME}.pem").unlink()
    result = primary.run("set", "pool.example.com")
    assert result.returncode == 1
    assert f"cannot load the certificates of '{CERTNAME}'" in result.stderr


def test_script_runs_from_standard_input_as_the_component_sends_it(primary: Primary) -> None:
    """The component feeds the script on stdin to `python3 - ...`; prove that form works."""
    argv = shlex.split(script_command("set", "pool.example.com", CERTNAME, "root"))
    assert argv[:2] == ["python3", "-"]
    argv = [sys.executable, "-", *argv[2:]]
    argv[argv.index("--classifier-url") + 1] = primary.url
    argv += ["--ssl-dir", str(primary.ssl_dir), "--puppet", str(primary.puppet)]
    primary.puppet.write_text(f'#!/bin/sh\necho "$@" >> {primary.puppet_log}\n')
    result = subprocess.run(argv, input=SCRIPT.read_text(), capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert primary.pool_address == "pool.example.com"
