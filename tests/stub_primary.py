"""A stub PE primary on 127.0.0.1 for components/scripts/pe_primary.py.

One HTTPS server with client-certificate authentication answers as PE's CA
(`/puppet-ca/v1`), node classifier (`/classifier-api/v1`), PuppetDB
(`/pdb/query/v4`) and a compile master's `/status/v1/simple`. Stub `puppet` and
`systemctl` executables stand in for the CLIs. Everything the script does lands
in one ordered event log, so tests assert the order of every call.

A compile master is simulated: once the CA signs it, its first Puppet run shows
up in PuppetDB after ``report_delay`` seconds, and its status answers 200 then.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from components.scripts import SCRIPTS_DIR
from tests.certs import LocalCA, puppet_request

SCRIPT = SCRIPTS_DIR / "pe_primary.py"
PRIMARY = "puppet.example.com"
POOL = "pool.example.com"
PLATFORM_OID = "1.3.6.1.4.1.34380.1.2.6099.1"
PP_AUTH_ROLE_OID = "1.3.6.1.4.1.34380.1.3.13"
PE_MASTER_ID = "4d3b6f3e-0000-4000-8000-000000000001"
INFRA_AGENT_ID = "4d3b6f3e-0000-4000-8000-000000000002"
PE_AGENT_ID = "4d3b6f3e-0000-4000-8000-000000000003"
RHEL9 = 'NAME="Red Hat Enterprise Linux"\nVERSION_ID="9.4"\nID="rhel"\nID_LIKE="fedora"\n'
PLATFORM = "el-9-x86_64"

PUPPET_STUB = r"""#!/bin/bash
# Stub of /opt/puppetlabs/bin/puppet: settings, agent runs with a lock file, node purge.
dir={dir}
case "$1 $2" in
  "config print")
    cat <<EOF
certname = {primary}
hostcert = $dir/ssl/certs/{primary}.pem
hostprivkey = $dir/ssl/private_keys/{primary}.pem
localcacert = $dir/ssl/certs/ca.pem
agent_catalog_run_lockfile = $dir/agent_catalog_run.lock
agent_disabled_lockfile = $dir/agent_disabled.lock
EOF
    ;;
  "node purge")
    echo "puppet node purge $3" >> "$dir/events.log"
    touch "$dir/purged/$3"
    ;;
  "agent --onetime")
    if [[ -e $dir/agent_catalog_run.lock ]]; then
      echo "Run of Puppet configuration client already in progress; skipping"; exit 1
    fi
    if [[ " $* " != *" --no-splay "* ]]; then
      echo "puppet agent splayed" >> "$dir/events.log"; sleep "$(cat "$dir/splay_seconds")"
    fi
    touch "$dir/agent_catalog_run.lock"
    echo "puppet $*" >> "$dir/events.log"
    date +%s.%N > "$dir/last_primary_run"
    sleep "$(cat "$dir/run_seconds")"
    rm -f "$dir/agent_catalog_run.lock"
    exit "$(cat "$dir/run_exit")"
    ;;
  *) echo "stub puppet: unexpected $*" >&2; exit 64 ;;
esac
"""

SYSTEMCTL_STUB = """#!/bin/bash
echo "systemctl $*" >> {dir}/events.log
"""


class StubPrimary:
    """State of the stub primary; ``run`` runs the real script against it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ca = LocalCA("Puppet CA: " + PRIMARY)
        self.requests: dict[str, bytes] = {}
        self.certificates: dict[str, bytes] = {}
        self.revoked: set[str] = set()
        self.signed_at: dict[str, float] = {}
        self.report_delay = 0.0
        self.never_reports: set[str] = set()
        self.swap_before_signing: dict[str, bytes] = {}
        """A request that replaces the verified one just before the CA signs (a race with an attacker)."""
        self.groups: list[dict[str, Any]] = [
            {"id": "00000000-0000-4000-8000-000000000000", "name": "All Nodes", "classes": {}},
            {
                "id": PE_MASTER_ID,
                "name": "PE Master",
                "classes": {"pe_repo": {}},
                "config_data": {"puppet_enterprise::profile::master": {"code_manager_auto_configure": True}},
            },
            {
                "id": PE_AGENT_ID,
                "name": "PE Agent",
                "classes": {"puppet_enterprise::profile::agent": {}},
            },
            {
                "id": INFRA_AGENT_ID,
                "name": "PE Infrastructure Agent",
                "classes": {
                    "puppet_enterprise::profile::agent": {
                        "server_list": [f"{PRIMARY}:8140"],
                        "pcp_broker_list": [f"{PRIMARY}:8142"],
                    }
                },
                "pinned": [],
            },
        ]
        self.pe_repo_history: list[tuple[float, Any]] = []
        """(when, value) of each change to pe_repo's pool address, for the primary's install script."""
        self.served: dict[str, Any] = {}
        """The pool address each compile master's install script names (set by its own Puppet runs)."""
        self.compile_masters_run_on_their_own = True
        """Each request sees a compile master that has run Puppet since the last change."""
        self.lock = threading.Lock()
        (root / "purged").mkdir(parents=True)
        (root / "state").mkdir()
        self.events_path = root / "events.log"
        self.events_path.touch()
        self.set_puppet(run_seconds=0, exit_code=0)
        (root / "splay_seconds").write_text("0")
        self.pg_ident = root / "postgresql" / "14" / "data" / "pg_ident.conf"
        self.pg_ident.parent.mkdir(parents=True)
        self.pg_ident.write_text("pe-postgres-map pe-postgres pe-postgres\n")
        (root / "os-release").write_text(RHEL9)
        (root / "hiera.yaml").write_text(
            "---\nversion: 5\nhierarchy:\n  - name: common\n    path: common.yaml\n"
        )
        ssl_dir = root / "ssl"
        (ssl_dir / "certs").mkdir(parents=True)
        (ssl_dir / "certs" / "ca.pem").write_bytes(self.ca.cert_pem)
        self.ca.issue(PRIMARY, [PRIMARY]).write(
            ssl_dir / "certs" / f"{PRIMARY}.pem", ssl_dir / "private_keys" / f"{PRIMARY}.pem"
        )
        bin_dir = root / "bin"
        bin_dir.mkdir()
        for name, text in (("puppet", PUPPET_STUB), ("systemctl", SYSTEMCTL_STUB)):
            path = bin_dir / name
            path.write_text(text.format(dir=root, primary=PRIMARY))
            path.chmod(0o755)
        self.port = 0

    # ---- what a test arranges

    def set_puppet(self, *, run_seconds: float = 0, exit_code: int = 0) -> None:
        (self.root / "run_seconds").write_text(str(run_seconds))
        (self.root / "run_exit").write_text(str(exit_code))

    def request_certificate(
        self,
        certname: str,
        *,
        alt_names: list[str] | None = None,
        role: str | None = "pe_compiler",
        platform: str | None = PLATFORM,
        common_name: str | None = None,
    ) -> None:
        """What the compile master's bootstrap does: submit a CSR."""
        extensions = {}
        if role is not None:
            extensions[PP_AUTH_ROLE_OID] = role
        if platform is not None:
            extensions[PLATFORM_OID] = platform
        names = [certname, "puppet", POOL] if alt_names is None else alt_names
        with self.lock:
            self.requests[certname] = puppet_request(common_name or certname, names, extensions)

    @property
    def signed(self) -> set[str]:
        """Certnames with a certificate on the CA (after any `puppet node purge`)."""
        with self.lock:
            for marker in (self.root / "purged").iterdir():
                self._purged(marker.name)
            return set(self.certificates)

    def group(self, name: str) -> dict[str, Any]:
        return next(group for group in self.groups if group["name"] == name)

    @property
    def pool_address(self) -> Any:
        return (
            self.group("PE Master")
            .get("config_data", {})
            .get("pe_repo", {})
            .get("compile_master_pool_address")
        )

    def agent_settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = self.group("PE Agent")["classes"]["puppet_enterprise::profile::agent"]
        return settings

    def compile_master_runs(self, certname: str) -> None:
        """A Puppet run on the compile master: its install script names the current pool address."""
        with self.lock:
            self.served[certname] = self.pool_address

    def _installer_names(self, host: str) -> Any:
        if host == PRIMARY:
            try:
                last_run = float((self.root / "last_primary_run").read_text())
            except (OSError, ValueError):
                return None
            values = [value for when, value in self.pe_repo_history if when <= last_run]
            return values[-1] if values else None
        if self.compile_masters_run_on_their_own:
            return self.pool_address
        return self.served.get(host)

    def events(self) -> list[str]:
        return self.events_path.read_text().splitlines()

    def event(self, line: str) -> None:
        with self.lock, self.events_path.open("a") as log:
            log.write(line + "\n")

    def puppet_runs(self) -> list[str]:
        return [line for line in self.events() if line.startswith("puppet agent --onetime")]

    # ---- the script, run for real

    def argv(self, action: str, *args: str, poll: float = 0.02) -> list[str]:
        base = f"https://127.0.0.1:{self.port}"
        return [
            action, *args,
            "--puppet", str(self.root / "bin" / "puppet"),
            "--systemctl", str(self.root / "bin" / "systemctl"),
            "--state-dir", str(self.root / "state"),
            "--postgresql-data-glob", str(self.root / "postgresql" / "*" / "data" / "pg_ident.conf"),
            "--hiera-yaml", str(self.root / "hiera.yaml"),
            "--os-release", str(self.root / "os-release"),
            "--machine", "x86_64",
            "--ca-url", f"{base}/puppet-ca/v1",
            "--classifier-url", f"{base}/classifier-api",
            "--puppetdb-url", f"{base}/pdb/query/v4",
            "--status-url", base + "/status/v1/simple?certname={certname}",
            "--package-url", base + "/packages/current/install.bash?host={host}",
            "--poll-seconds", str(poll),
        ]  # fmt: skip

    def run(
        self, action: str, *args: str, timeout: float = 60, python: str = sys.executable
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, str(SCRIPT), *self.argv(action, *args)],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )

    # ---- what the server answers

    def _purged(self, certname: str) -> bool:
        marker = self.root / "purged" / certname
        if marker.exists():
            marker.unlink()
            self.requests.pop(certname, None)
            self.certificates.pop(certname, None)
            self.signed_at.pop(certname, None)
        return certname not in self.requests and certname not in self.certificates

    def answer(self, method: str, url: str, body: Any) -> tuple[int, Any]:
        parts = urlsplit(url)
        path = parts.path
        self.event(f"{method} {path}" + (f" {json.dumps(body, sort_keys=True)}" if body is not None else ""))
        with self.lock:
            if path.startswith("/puppet-ca/v1/"):
                return self._ca(method, path.removeprefix("/puppet-ca/v1/"), body)
            if path.startswith("/classifier-api/v1/groups"):
                return self._classifier(method, path.removeprefix("/classifier-api/v1/groups"), body)
            if path.startswith("/pdb/query/v4/nodes/"):
                certname = path.rsplit("/", 1)[-1]
                reported = self._reported(certname)
                if reported is None:
                    return 404, {"error": f"No information is known about node {certname}"}
                return 200, {"certname": certname, "report_timestamp": reported}
            if path == "/packages/current/install.bash":
                host = parse_qs(parts.query)["host"][0]
                return 200, f"#!/bin/bash\nPE_MASTER='{self._installer_names(host) or host}'\n"
            if path == "/status/v1/simple":
                certname = parse_qs(parts.query)["certname"][0]
                return (200, "running") if self._reported(certname) else (503, "starting")
        return 404, {"kind": "not-found"}

    def _reported(self, certname: str) -> str | None:
        signed = self.signed_at.get(certname)
        if signed is None or certname in self.never_reports or time.time() < signed + self.report_delay:
            return None
        return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(signed + self.report_delay))

    def _ca(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        kind, _, certname = path.partition("/")
        if self._purged(certname):
            return 404, f"Invalid certname {certname}"
        if kind == "certificate_status" and method == "GET":
            state = (
                "revoked"
                if certname in self.revoked
                else "signed"
                if certname in self.certificates
                else "requested"
            )
            return 200, {"name": certname, "state": state}
        if kind == "certificate_status" and method == "PUT":
            if body == {"desired_state": "signed"} and certname in self.requests:
                request = self.swap_before_signing.pop(certname, None) or self.requests[certname]
                del self.requests[certname]
                self.certificates[certname] = self.ca.sign_request(request)
                self.signed_at[certname] = time.time()
                return 204, None
            if body == {"desired_state": "revoked"} and certname in self.certificates:
                self.revoked.add(certname)
                return 204, None
            return 409, f"cannot move {certname} to {body}"
        if kind == "certificate_request" and certname in self.requests:
            return 200, self.requests[certname].decode()
        if kind == "certificate" and certname in self.certificates:
            return 200, self.certificates[certname].decode()
        return 404, f"no {kind} for {certname}"

    def _classifier(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if method == "GET" and path == "":
            return 200, self.groups
        group_id, _, action = path.lstrip("/").partition("/")
        group = next((g for g in self.groups if g["id"] == group_id), None)
        if group is None:
            return 404, {"kind": "not-found"}
        if action in ("pin", "unpin"):
            pinned = [node for node in group.get("pinned", []) if node not in body["nodes"]]
            group["pinned"] = pinned + (body["nodes"] if action == "pin" else [])
            return 204, None
        before = self.pool_address
        _merge(group, body)
        if self.pool_address != before:
            self.pe_repo_history.append((time.time(), self.pool_address))
        return 200, group


def _merge(target: dict[str, Any], delta: dict[str, Any]) -> None:
    """The classifier's group update: a delta merged in, a null value removing its key."""
    for key, value in delta.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            _merge(target.setdefault(key, {}), value)
        else:
            target[key] = value


def _handler(primary: StubPrimary) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self, method: str) -> None:
            if not self.path.startswith(("/status/", "/packages/")) and not self.connection.getpeercert():
                self.send_error(401, "PE's APIs want the primary's client certificate")
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, answer = primary.answer(method, self.path, body)
            data = (
                answer if isinstance(answer, str) else json.dumps(answer) if answer is not None else ""
            ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if isinstance(answer, str) else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

    return Handler


@contextmanager
def stub_primary(root: Path) -> Iterator[StubPrimary]:
    """The stub primary, serving on a free port of 127.0.0.1 until the block ends."""
    primary = StubPrimary(root)
    server_pem = primary.ca.issue(PRIMARY, [PRIMARY, "localhost"], ["127.0.0.1"])
    server_pem.write(root / "server.pem", root / "server.key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(root / "server.pem", root / "server.key")
    context.load_verify_locations(cadata=primary.ca.cert_pem.decode())
    # Status and packages take anonymous clients, as puppetserver does; PE's APIs want a certificate.
    context.verify_mode = ssl.CERT_OPTIONAL
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(primary))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    primary.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield primary
    finally:
        server.shutdown()
        server.server_close()
