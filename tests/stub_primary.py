"""A stub PE primary on 127.0.0.1 for the primary script (components/scripts/pe_primary/).

One HTTPS server answers as PE's CA (`/puppet-ca/v1`), node classifier (`/classifier-api/v1`),
PuppetDB (`/pdb/query/v4`), puppetserver's `/status/v1/simple` and a compile master's status.
Stub `puppet` and `systemctl` executables stand in for the CLIs. Everything the script does lands
in one ordered event log, so tests assert the order of every call.

The CA answers as puppetserver 7 does (measured against a real one, see
/work/shared/reference/real-puppet.md, and read from puppetserver 7.9.5's certificate_authority*.clj):
auth.conf's rule on certificate_status (a client certificate with pp_cli_auth), its status codes,
content types and messages, ca.conf's allow-subject-alt-names and allow-authorization-extensions,
the permitted extensions, the FIRST extension request of a CSR, a repeated extension answering 500.
What it cannot model: puppetserver stores a CSR re-encoded (canonical DER, subject rebuilt as the
certname alone, a lower-case certname alt name added), so the bytes read back differ from the bytes
submitted; re-signing a CSR needs its key, so the stub keeps the submitted bytes and applies the
CA's rules to the certificate it signs instead (subject CN=certname, the certname added to the alt
names, extensions from the first extension request).

A compile master is simulated: once the CA signs it, its first Puppet run shows up in PuppetDB
after ``report_delay`` seconds, and its status answers 200 then.
"""

from __future__ import annotations

import datetime
import json
import re
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from components.scripts import SCRIPTS_DIR, primary_script
from tests.aws_identity import FakeAws
from tests.certs import (
    PP_AUTH_CERT_EXT,
    PP_CLI_AUTH_OID,
    PP_PRIV_CERT_EXT,
    PP_REG_CERT_EXT,
    PUPPET_SHORT_NAMES,
    SAN_OID,
    Extension,
    LocalCA,
    ParsedRequest,
    der_text,
    fingerprint,
    parse_request,
    puppet_request,
    subtree_of,
)

SCRIPT = SCRIPTS_DIR / "pe_primary.py"
PRIMARY = "puppet.example.com"
POOL = "pool.example.com"
PLATFORM_OID = "1.3.6.1.4.1.34380.1.2.6099.1"
PP_AUTH_ROLE_OID = "1.3.6.1.4.1.34380.1.3.13"
IDENTITY_OID = "1.3.6.1.4.1.34380.1.2.6099.2"
REGION = "eu-west-1"
ACCOUNT = "123456789012"


def instance_id_of(certname: str) -> str:
    return certname.split(".")[0]


def instance_arn(certname: str) -> str:
    """The ARN of the instance whose resource name is ``certname``."""
    return f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{instance_id_of(certname)}"


def join_arguments(certname: str) -> tuple[str, ...]:
    """join's arguments as the components pass them (after the certname)."""
    return ("--pool-address", POOL, "--instance-arn", instance_arn(certname))


PE_MASTER_ID = "4d3b6f3e-0000-4000-8000-000000000001"
INFRA_AGENT_ID = "4d3b6f3e-0000-4000-8000-000000000002"
PE_AGENT_ID = "4d3b6f3e-0000-4000-8000-000000000003"
RHEL9 = 'NAME="Red Hat Enterprise Linux"\nVERSION_ID="9.4"\nID="rhel"\nID_LIKE="fedora"\n'
PLATFORM = "el-9-x86_64"

JSON = "application/json;charset=utf-8"
TEXT = "text/plain"
PLAIN_UTF8 = "text/plain; charset=UTF-8"
"""liberator's as-plain-text-response (certificate_status's 409, 403-free errors, 404 on PUT)."""
STATUS_TEXT = "text/plain;charset=utf-8"
CA_MEDIA_TYPES = ("application/json", "text/pson", "pson")
"""certificate_status's available media types; a PUT with another Content-Type is 415."""
STATUS_SERVICES = ("server", "master", "ca")
REPEATED_EXTENSION = "java.lang.IllegalArgumentException: repeated extension found: "
"""BouncyCastle's, when puppetserver reads a CSR that repeats an extension (certificate_status: 500)."""

CA_CONF = """\
# CA-related settings (puppetserver's conf.d/ca.conf)
certificate-authority: {
    # allow CA to sign certificate requests that have subject alternative names.
    %(alt_names)s

    # allow CA to sign certificate requests that have authorization extensions.
    %(auth_extensions)s

    # enable the separate CRL for Puppet infrastructure nodes
    # enable-infra-crl: false
}
"""

PUPPET_STUB = r"""#!/bin/bash
# Stub of /opt/puppetlabs/bin/puppet: settings, agent runs with a lock file, PE's node purge.
# Like puppet, it colours its errors (ANSI, bold red on stderr) unless run with --color=false
# (or --color false).
dir=@DIR@
color=ansi previous=
for arg in "$@"; do
  [[ $previous == --color ]] && color=$arg
  [[ $arg == --color=* ]] && color=${arg#--color=}
  previous=$arg
done
error() {
  if [[ $color == false ]]; then printf 'Error: %s\n' "$*" >&2
  else printf '\033[1;31mError: %s\033[0m\n' "$*" >&2; fi
}
notice() { printf 'Notice: %s\n' "$*"; }
case "$1 $2" in
  "config print")
    cat <<EOF
certname = @PRIMARY@
hostcert = $dir/ssl/certs/@PRIMARY@.pem
hostprivkey = $dir/ssl/private_keys/@PRIMARY@.pem
localcacert = $dir/ssl/certs/ca.pem
agent_catalog_run_lockfile = $dir/agent_catalog_run.lock
agent_disabled_lockfile = $dir/agent_disabled.lock
EOF
    ;;
  "node purge")
    if [[ -s $dir/purge_error ]]; then error "$(cat "$dir/purge_error")"; exit 1; fi
    echo "puppet node purge $3" >> "$dir/events.log"
    touch "$dir/purged/$3"
    ;;
  "agent --onetime")
    if [[ -e $dir/agent_disabled.lock ]]; then
      reason=$(sed -n 's/.*"disabled_message": *"\([^"]*\)".*/\1/p' "$dir/agent_disabled.lock")
      notice "Skipping run of Puppet configuration client; administratively disabled (Reason: '$reason');"
      echo "Use 'puppet agent --enable' to re-enable."
      exit 1
    fi
    if [[ -e $dir/agent_catalog_run.lock ]]; then
      lock=$dir/agent_catalog_run.lock
      notice "Run of Puppet configuration client already in progress; skipping  ($lock exists)"
      exit 1
    fi
    if [[ " $* " != *" --no-splay "* ]]; then
      echo "puppet agent splayed" >> "$dir/events.log"; sleep "$(cat "$dir/splay_seconds")"
    fi
    touch "$dir/agent_catalog_run.lock"
    echo "puppet $*" >> "$dir/events.log"
    date +%s.%N > "$dir/last_primary_run"
    sleep "$(cat "$dir/run_seconds")"
    rm -f "$dir/agent_catalog_run.lock"
    code=$(cat "$dir/run_exit")
    case $code in
      0|2) notice "Applied catalog in 0.01 seconds" ;;
      4|6) error "/Stage[main]/Stub/Exec[stub]/returns: change from 'notrun' to ['0'] failed: stub failure" ;;
      *) error "Could not run Puppet configuration client: stub failure" ;;
    esac
    exit "$code"
    ;;
  *) error "stub puppet: unexpected $*"; exit 64 ;;
esac
"""

SYSTEMCTL_STUB = """#!/bin/bash
echo "systemctl $*" >> @DIR@/events.log
"""


class RequestRefusedError(Exception):
    """The CA refused a CSR submission (PUT certificate_request), as it answered."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


@dataclass
class Request:
    method: str
    url: str
    body: bytes = b""
    content_type: str | None = None
    accept: str | None = None
    client_certificate: bytes | None = None
    """The client's certificate (DER), if it sent one the CA verified."""


@dataclass
class Reply:
    status: int
    body: str = ""
    content_type: str = TEXT

    @classmethod
    def json(cls, status: int, value: Any) -> Reply:
        return cls(status, json.dumps(value), "application/json")


class _ServerError(Exception):
    """puppetserver's uncaught exception: 500 with its message."""


def read_ca_conf(text: str) -> dict[str, bool]:
    """allow-* settings of a puppetserver ca.conf (HOCON: `certificate-authority: { ... }` or the
    dotted form); a setting that is absent is false, puppetserver 7's default."""
    text = re.sub(r"(#|//).*", "", text)
    settings: dict[str, bool] = {}
    truth = {"true": True, "yes": True, "on": True}
    for block in re.finditer(r'"?certificate-authority"?\s*[:=]?\s*\{', text):
        depth, body = 1, []
        for char in text[block.end() :]:
            depth += {"{": 1, "}": -1}.get(char, 0)
            if depth == 0:
                break
            body.append(char if depth == 1 else " ")
        for match in re.finditer(r'"?(allow-[a-z-]+)"?\s*[:=]\s*"?(\w+)', "".join(body)):
            settings[match.group(1)] = truth.get(match.group(2).lower(), False)
    for match in re.finditer(r'certificate-authority\.(allow-[a-z-]+)"?\s*[:=]\s*"?(\w+)', text):
        settings[match.group(1)] = truth.get(match.group(2).lower(), False)
    return settings


def has_cli_auth(certificate_der: bytes | None) -> bool:
    """Whether a client certificate passes auth.conf's certificate_status rule: pp_cli_auth "true"."""
    if not certificate_der:
        return False
    try:
        extension = x509.load_der_x509_certificate(certificate_der).extensions.get_extension_for_oid(
            x509.ObjectIdentifier(PP_CLI_AUTH_OID)
        )
    except (ValueError, x509.ExtensionNotFound):
        return False
    value = extension.value
    return isinstance(value, x509.UnrecognizedExtension) and der_text(value.value) == "true"


def _subject_problem(hostname: str, subject: str | None) -> str | None:
    """puppetserver's validate-subject!."""
    subject = subject or ""
    if hostname != subject:
        return f'Instance name "{subject}" does not match requested key "{hostname}"'
    if hostname != hostname.lower():
        return "Certificate names must be lower case."
    if "*" in subject:
        return f"Subject contains a wildcard, which is not allowed: {subject}"
    # ^([a-z0-9](?:(?:[a-z0-9\-_]*|(?<!-)\.(?![\-.]))*[a-z0-9]+)?)$ without its backtracking
    if not re.fullmatch(r"[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?", subject) or any(
        pair in subject for pair in ("-.", ".-", "..")
    ):
        return "Subject hostname format is invalid"
    return None


def _date(when: datetime.datetime) -> str:
    """puppetserver's format-date-time: YYYY-MM-DDTHH:MM:SSUTC."""
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SUTC")


def _pdb_time(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(epoch))


class StubPrimary:
    """State of the stub primary; ``run`` runs the real script against it."""

    def __init__(self, root: Path, *, pe_broker: bool = True) -> None:
        self.root = root
        self.pe_broker = pe_broker
        """PE's PCP broker: /status/v1/simple/broker-service answers (open-source Puppet: 404)."""
        self.ca = LocalCA("Puppet CA: " + PRIMARY)
        self.aws = FakeAws(root / "aws")
        """Stands in for AWS's identity-document signer: the script is given its certificate."""
        self.requests: dict[str, bytes] = {}
        """Pending CSRs (PEM, as submitted) by certname."""
        self.certificates: dict[str, bytes] = {}
        self.revoked: set[str] = set()
        self.signed_at: dict[str, float] = {}
        self.report_delay = 0.0
        self.never_reports: set[str] = set()
        self.deactivated: dict[str, dict[str, Any]] = {}
        """PuppetDB's record of each node `puppet node purge` deactivated (it still answers 200)."""
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
        self.fail_purge(None)
        (root / "splay_seconds").write_text("0")
        self.pg_ident = root / "postgresql" / "14" / "data" / "pg_ident.conf"
        self.pg_ident.parent.mkdir(parents=True)
        self.pg_ident.write_text("pe-postgres-map pe-postgres pe-postgres\n")
        (root / "os-release").write_text(RHEL9)
        (root / "hiera.yaml").write_text(
            "---\nversion: 5\nhierarchy:\n  - name: common\n    path: common.yaml\n"
        )
        self.ca_conf = root / "puppetserver" / "conf.d" / "ca.conf"
        """puppetserver's conf.d/ca.conf; read at start and by ``restart_ca`` (SIGHUP does not reload it)."""
        self.ca_settings: dict[str, bool] = {}
        self.write_ca_conf()
        ssl_dir = root / "ssl"
        (ssl_dir / "certs").mkdir(parents=True)
        (ssl_dir / "certs" / "ca.pem").write_bytes(self.ca.cert_pem)
        # The CA host's own certificate carries pp_cli_auth, which certificate_status wants.
        self.ca.issue(PRIMARY, ["puppet", PRIMARY], extensions={PP_CLI_AUTH_OID: "true"}).write(
            self.hostcert, ssl_dir / "private_keys" / f"{PRIMARY}.pem"
        )
        bin_dir = root / "bin"
        bin_dir.mkdir()
        for name, text in (("puppet", PUPPET_STUB), ("systemctl", SYSTEMCTL_STUB)):
            path = bin_dir / name
            path.write_text(text.replace("@DIR@", str(root)).replace("@PRIMARY@", PRIMARY))
            path.chmod(0o755)
        self.port = 0

    # ---- what a test arranges

    @property
    def hostcert(self) -> Path:
        """The primary's host certificate (its key: ssl/private_keys/<primary>.pem)."""
        return self.root / "ssl" / "certs" / f"{PRIMARY}.pem"

    @property
    def hostprivkey(self) -> Path:
        return self.root / "ssl" / "private_keys" / f"{PRIMARY}.pem"

    def set_puppet(self, *, run_seconds: float = 0, exit_code: int = 0) -> None:
        (self.root / "run_seconds").write_text(str(run_seconds))
        (self.root / "run_exit").write_text(str(exit_code))

    def fail_purge(self, message: str | None) -> None:
        """Make `puppet node purge` fail with this error (None: succeed)."""
        (self.root / "purge_error").write_text(message or "")

    def write_ca_conf(
        self,
        *,
        allow_subject_alt_names: bool | None = True,
        allow_authorization_extensions: bool | None = True,
        restart: bool = True,
    ) -> None:
        """Write ca.conf (None: the setting is left out, as in puppetserver's own file), then restart
        the CA so it reads it (unless ``restart`` is false)."""

        def line(name: str, value: bool | None) -> str:
            return f"# {name}: false" if value is None else f"{name}: {str(value).lower()}"

        self.ca_conf.parent.mkdir(parents=True, exist_ok=True)
        self.ca_conf.write_text(
            CA_CONF
            % {
                "alt_names": line("allow-subject-alt-names", allow_subject_alt_names),
                "auth_extensions": line("allow-authorization-extensions", allow_authorization_extensions),
            }
        )
        if restart:
            self.restart_ca()

    def restart_ca(self) -> None:
        """What restarting puppetserver does for the CA here: read ca.conf again."""
        settings = read_ca_conf(self.ca_conf.read_text()) if self.ca_conf.exists() else {}
        with self.lock:
            self.ca_settings = settings

    def request_certificate(
        self,
        certname: str,
        *,
        alt_names: list[str] | None = None,
        role: str | None = "pe_compiler",
        platform: str | None = PLATFORM,
        common_name: str | None = None,
        extra_extensions: dict[str, str] | None = None,
        second_extension_request: dict[str, str] | None = None,
        duplicate_extension: bool | tuple[str, str] = False,
        ip_alt_name: str | None = None,
        custom_attributes: dict[str, str] | None = None,
        key: ec.EllipticCurvePrivateKey | None = None,
        identity: str | None = "",
    ) -> bytes:
        """What the compile master's bootstrap does: submit a CSR (PUT certificate_request).

        ``extra_extensions``: more Puppet-style extensions (OID: value), e.g. pp_cli_auth;
        ``second_extension_request``: a second extReq attribute (the CA signs with the first);
        ``duplicate_extension``: repeat pp_auth_role (True) or add (OID, value) again;
        ``ip_alt_name``: an IP alt name too; ``custom_attributes``: OID: PrintableString value;
        ``key``: the agent's key (default: a new one), e.g. the same instance asking again;
        ``identity``: the instance-identity attribute (default "": the certname's instance's own,
        signed by ``self.aws``; None: none).
        Returns the CSR (PEM); raises RequestRefusedError when the CA refuses it, as a real one would
        (a second CSR for a pending name, a subject that is not the certname).
        """
        extensions = {}
        if role is not None:
            extensions[PP_AUTH_ROLE_OID] = role
        if platform is not None:
            extensions[PLATFORM_OID] = platform
        extensions.update(extra_extensions or {})
        names = [certname, "puppet", POOL] if alt_names is None else alt_names
        duplicate = (PP_AUTH_ROLE_OID, role or "") if duplicate_extension is True else duplicate_extension
        attributes = dict(custom_attributes or {})
        if identity == "":
            identity = self.aws.pkcs7(instance_id_of(certname), REGION, ACCOUNT)
        if identity is not None:
            attributes.setdefault(IDENTITY_OID, identity)
        pem = puppet_request(
            common_name or certname,
            names,
            extensions,
            ip_addresses=[ip_alt_name] if ip_alt_name else [],
            second_extension_request=second_extension_request,
            duplicate_extension=duplicate or None,
            custom_attributes=attributes,
            key=key,
        )
        with self.lock:
            status, message = self._submit(certname, pem)
        if status != 200:
            raise RequestRefusedError(status, message)
        return pem

    @property
    def signed(self) -> set[str]:
        """Certnames with a certificate on the CA (after any `puppet node purge`)."""
        with self.lock:
            self._purge_marked()
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
            "--ca-conf", str(self.ca_conf),
            "--identity-certificates", str(self.aws.certificate_path),
            "--ca-url", f"{base}/puppet-ca/v1",
            "--classifier-url", f"{base}/classifier-api",
            "--puppetdb-url", f"{base}/pdb/query/v4",
            "--status-url", base + "/status/v1/simple?certname={certname}",
            "--package-url", base + "/packages/current/install.bash?host={host}",
            "--poll-seconds", str(poll),
        ]  # fmt: skip

    def script(self) -> Path:
        """The primary script as the components ship it: one file (the bundle of pe_primary/)."""
        path = self.root / "pe-lb-primary.py"
        if not path.exists():
            path.write_text(primary_script())
        return path

    def start(self, action: str, *args: str) -> subprocess.Popen[str]:
        """The script running in the background, its output readable line by line as it comes."""
        return subprocess.Popen(
            [sys.executable, str(self.script()), *self.argv(action, *args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def run(
        self, action: str, *args: str, timeout: float = 60, python: str = sys.executable
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, str(self.script()), *self.argv(action, *args)],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )

    # ---- what the server answers

    def _purge_marked(self) -> None:
        """Apply each `puppet node purge` (PE: `puppet node deactivate` and `puppetserver ca clean`)."""
        for marker in (self.root / "purged").iterdir():
            certname = marker.name
            when = marker.stat().st_mtime
            marker.unlink()
            reported = self._reported(certname)
            last = self.deactivated.get(certname, {}).get("report_timestamp")
            self.deactivated[certname] = self._node(certname, reported or last, _pdb_time(when))
            self.requests.pop(certname, None)
            self.certificates.pop(certname, None)
            self.signed_at.pop(certname, None)
            self.revoked.discard(certname)

    def handle(self, request: Request) -> Reply:
        parts = urlsplit(request.url)
        path = parts.path
        try:
            body: Any = json.loads(request.body) if request.body else None
        except ValueError:
            body = None
        self.event(
            f"{request.method} {path}" + (f" {json.dumps(body, sort_keys=True)}" if body is not None else "")
        )
        with self.lock:
            self._purge_marked()
            if path.startswith("/puppet-ca/v1/"):
                return self._ca(request, path.removeprefix("/puppet-ca/v1/"), path)
            if path.startswith("/status/v1/simple"):
                return self._status(path, parse_qs(parts.query))
            if path == "/packages/current/install.bash":
                host = parse_qs(parts.query)["host"][0]
                return Reply(200, f"#!/bin/bash\nPE_MASTER='{self._installer_names(host) or host}'\n")
            if not request.client_certificate:
                return Reply(401, "PE's APIs want the primary's client certificate")
            if path.startswith("/classifier-api/v1/groups"):
                return self._classifier(request.method, path.removeprefix("/classifier-api/v1/groups"), body)
            if path.startswith("/pdb/query/v4/nodes/"):
                return self._puppetdb(path.rsplit("/", 1)[-1])
        return Reply.json(404, {"kind": "not-found"})

    # -- status

    def _status(self, path: str, query: dict[str, list[str]]) -> Reply:
        service = path.removeprefix("/status/v1/simple").strip("/")
        if not service and "certname" in query:
            # A compile master's own status (the script's --status-url points here with ?certname=).
            running = self._reported(query["certname"][0])
            return Reply(200, "running", STATUS_TEXT) if running else Reply(503, "starting", STATUS_TEXT)
        if not service or service in STATUS_SERVICES or (service == "broker-service" and self.pe_broker):
            return Reply(200, "running", STATUS_TEXT)
        return Reply(404, f"not found: {service}", STATUS_TEXT)

    # -- PuppetDB

    def _node(self, certname: str, reported: str | None, deactivated: str | None) -> dict[str, Any]:
        return {
            "certname": certname,
            "deactivated": deactivated,
            "expired": None,
            "report_timestamp": reported,
            "catalog_timestamp": reported,
            "facts_timestamp": reported,
            "latest_report_status": "unchanged" if reported else None,
        }

    def _puppetdb(self, certname: str) -> Reply:
        reported = self._reported(certname)
        if reported is not None:
            return Reply.json(200, self._node(certname, reported, None))
        if certname in self.deactivated:
            return Reply.json(200, self.deactivated[certname])
        return Reply.json(404, {"error": f"No information is known about node {certname}"})

    def _reported(self, certname: str) -> str | None:
        signed = self.signed_at.get(certname)
        if signed is None or certname in self.never_reports or time.time() < signed + self.report_delay:
            return None
        return _pdb_time(signed + self.report_delay)

    # -- the CA

    def _ca(self, request: Request, path: str, full_path: str) -> Reply:
        kind, _, name = path.partition("/")
        if kind in ("certificate_status", "certificate_statuses"):
            # auth.conf's "puppetlabs cert status" rule: allow: {extensions: {pp_cli_auth: "true"}}
            if not has_cli_auth(request.client_certificate):
                return Reply(
                    403,
                    f"Forbidden request: {full_path} (method :{request.method.lower()}). "
                    "Please see the server logs for details.",
                )
            try:
                if kind == "certificate_statuses":
                    return self._certificate_statuses(request)
                return self._certificate_status(request, name)
            except _ServerError as error:
                return Reply(500, f"Internal Server Error: {error}", PLAIN_UTF8)
        if kind == "certificate" and request.method == "GET":
            if name in self.certificates:
                return Reply(200, self.certificates[name].decode())
            return Reply(404, f"Could not find certificate {name}")
        if kind == "certificate_request" and request.method == "GET":
            if name in self.requests:
                return Reply(200, self.requests[name].decode())
            return Reply(404, f"Could not find certificate_request {name}")
        if kind == "certificate_request" and request.method == "PUT":
            status, message = self._submit(name, request.body)
            return Reply(status, message)
        if kind == "certificate_request" and request.method == "DELETE":
            if self.requests.pop(name, None) is None:
                return Reply(404, f"No certificate request for {name}")
            return Reply(204, "")
        return Reply(404, "Not Found")

    def _submit(self, certname: str, pem: bytes) -> tuple[int, str]:
        """process-csr-submission! (autosign off): duplicates, then the subject; then stored as is."""
        try:
            request = parse_request(pem)
        except ValueError as error:
            return 500, f"Internal Server Error: {error}"
        subject = request.subject_cn or ""
        state = self._state(subject)
        if state is not None:
            return 400, f"{subject} already has a {state} certificate; ignoring certificate request"
        problem = _subject_problem(certname, request.subject_cn)
        if problem:
            return 400, problem
        self.requests[certname] = pem
        return 200, ""

    def _state(self, certname: str) -> str | None:
        if certname in self.certificates:
            return "revoked" if certname in self.revoked else "signed"
        return "requested" if certname in self.requests else None

    def _certificate_statuses(self, request: Request) -> Reply:
        if request.method != "GET":
            return Reply(405, "Method not allowed.", PLAIN_UTF8)
        wanted = parse_qs(urlsplit(request.url).query).get("state", [None])[0]
        names = sorted(set(self.requests) | set(self.certificates))
        statuses = [self._status_of(name) for name in names]
        if wanted in ("requested", "signed", "revoked"):
            statuses = [status for status in statuses if status["state"] == wanted]
        return Reply(200, json.dumps(statuses), JSON)

    def _certificate_status(self, request: Request, name: str) -> Reply:
        """liberator's decisions, in its order: method, malformed, content type, accept, exists, conflict."""
        method = request.method
        if method not in ("GET", "PUT", "DELETE"):
            return Reply(405, "Method not allowed.", PLAIN_UTF8)
        desired = None
        if method == "PUT":
            if not request.body:
                return Reply(400, "Empty request body.", PLAIN_UTF8)
            try:
                body = json.loads(request.body)
            except ValueError:
                return Reply(400, "Request body is not JSON.", PLAIN_UTF8)
            desired = body.get("desired_state") if isinstance(body, dict) else None
            if not desired:
                return Reply(400, 'Missing required parameter "desired_state"', PLAIN_UTF8)
            if desired not in ("signed", "revoked"):
                return Reply(
                    400,
                    f"State {desired} invalid; Must specify desired state of 'signed' or 'revoked' "
                    f"for host {name}.",
                    PLAIN_UTF8,
                )
            # No Content-Type is accepted (puppetserver's content-type-valid?); urllib and curl -d
            # send application/x-www-form-urlencoded unless told otherwise.
            content_type = (request.content_type or "").split(";")[0].strip().lower()
            if content_type and content_type not in CA_MEDIA_TYPES:
                return Reply(415, "Unsupported media type.", PLAIN_UTF8)
        if not _accepts(request.accept):
            return Reply(406, "No acceptable resource available.", PLAIN_UTF8)
        if self._state(name) is None:
            if method == "PUT":
                return Reply(404, "Invalid certificate subject.", PLAIN_UTF8)
            return Reply(404, "Resource not found.", JSON)
        if method == "GET":
            return Reply(200, json.dumps(self._status_of(name)), JSON)
        if method == "DELETE":
            self.certificates.pop(name, None)
            self.requests.pop(name, None)
            self.revoked.discard(name)
            return Reply(204, "")
        if desired == "revoked":
            if name not in self.certificates:
                return Reply(
                    409, f"Cannot revoke certificate for host {name} without a signed certificate", PLAIN_UTF8
                )
            self.revoked.add(name)  # revoking again changes nothing: 204 too
            return Reply(204, "")
        if name not in self.requests:
            return Reply(
                409, f"Cannot sign certificate for host {name} without a certificate request", PLAIN_UTF8
            )
        pem = self.swap_before_signing.pop(name, None) or self.requests[name]
        problem = self._signing_problem(name, parse_request(pem))
        if problem:
            return Reply(409, problem, PLAIN_UTF8)
        del self.requests[name]
        self.certificates[name] = self.ca.sign_request(pem, name)
        self.signed_at[name] = time.time()
        return Reply(204, "")

    def _signing_problem(self, name: str, request: ParsedRequest) -> str | None:
        """validate-csr, in puppetserver's order; a repeated extension fails as it does (500)."""
        problem = _subject_problem(name, request.subject_cn)
        if problem:
            return problem
        repeated = request.repeated_extension()
        if repeated:
            raise _ServerError(REPEATED_EXTENSION + repeated)
        subject = request.subject_cn or ""
        alt_names = request.subject_alt_names()
        # One alt name equal to the subject is always allowed (SERVER-2338).
        allowed = self.ca_settings.get("allow-subject-alt-names", False) or alt_names == [f"DNS:{subject}"]
        if alt_names and not allowed:
            extra = ", ".join(alt for alt in alt_names if alt != f"DNS:{subject}")
            return (
                f"CSR '{subject}' contains extra subject alternative names ({extra}), which are "
                "disallowed. To allow subject alternative names, set allow-subject-alt-names to true "
                "in your ca.conf file. Then restart the puppetserver and try signing this certificate "
                "again."
            )
        extensions = request.extensions
        if not self.ca_settings.get("allow-authorization-extensions", False) and any(
            subtree_of(PP_AUTH_CERT_EXT, extension.oid) for extension in extensions
        ):
            return (
                f"CSR '{subject}' contains an authorization extension, which is disallowed. To allow "
                "authorization extensions, set allow-authorization-extensions to true in your ca.conf "
                "file. Then restart the puppetserver and try signing this certificate again."
            )
        refused = [extension.oid for extension in extensions if not _permitted(extension)]
        if refused:
            return "Found extensions that are not permitted: " + ", ".join(refused)
        if not request.signature_valid:
            return "CSR contains a public key that does not correspond to the signing key"
        return None

    def _status_of(self, name: str) -> dict[str, Any]:
        """get-cert-or-csr-status: the certificate when there is one, else the (first extReq of the) CSR."""
        if name in self.certificates:
            certificate = x509.load_pem_x509_certificate(self.certificates[name])
            data = certificate.public_bytes(serialization.Encoding.DER)
            try:
                san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                dns = san.get_values_for_type(x509.DNSName)
                ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
            except x509.ExtensionNotFound:
                dns, ips = [], []
            extensions = [
                Extension(e.oid.dotted_string, e.value.value)
                for e in certificate.extensions
                if isinstance(e.value, x509.UnrecognizedExtension)
            ]
            details: dict[str, Any] = {
                "not_after": _date(certificate.not_valid_after_utc),
                "not_before": _date(certificate.not_valid_before_utc),
                "serial_number": certificate.serial_number,
            }
        else:
            request = parse_request(self.requests[name])
            repeated = request.repeated_extension()
            if repeated:
                raise _ServerError(
                    f"java.lang.IllegalArgumentException: repeated extension found: {repeated}"
                )
            data, dns, ips, extensions, details = (
                request.der,
                request.dns_names(),
                request.ip_names(),
                request.extensions,
                {},
            )
        digest = fingerprint(data)
        return {
            "name": name,
            "state": self._state(name),
            "dns_alt_names": [f"DNS:{dns_name}" for dns_name in dns],
            "subject_alt_names": [f"IP:{ip}" for ip in ips] + [f"DNS:{dns_name}" for dns_name in dns],
            "authorization_extensions": {
                PUPPET_SHORT_NAMES.get(e.oid, e.oid): der_text(e.value)
                for e in extensions
                if subtree_of(PP_AUTH_CERT_EXT, e.oid)
            },
            "fingerprint": digest,
            "fingerprints": {
                "SHA1": fingerprint(data, "sha1"),
                "SHA256": digest,
                "SHA512": fingerprint(data, "sha512"),
                "default": digest,
            },
            **details,
        }

    # -- the classifier

    def _classifier(self, method: str, path: str, body: Any) -> Reply:
        if method == "GET" and path == "":
            return Reply.json(200, self.groups)
        group_id, _, action = path.lstrip("/").partition("/")
        group = next((g for g in self.groups if g["id"] == group_id), None)
        if group is None:
            return Reply.json(404, {"kind": "not-found"})
        if action in ("pin", "unpin"):
            pinned = [node for node in group.get("pinned", []) if node not in body["nodes"]]
            group["pinned"] = pinned + (body["nodes"] if action == "pin" else [])
            return Reply(204, "")
        before = self.pool_address
        _merge(group, body)
        if self.pool_address != before:
            self.pe_repo_history.append((time.time(), self.pool_address))
        return Reply.json(200, group)


def _permitted(extension: Extension) -> bool:
    """puppetserver's allowed-extension?: subjectAltName and Puppet's arcs, but never pp_cli_auth."""
    oid = extension.oid
    return (
        oid == SAN_OID
        or (subtree_of(PP_AUTH_CERT_EXT, oid) and oid != PP_CLI_AUTH_OID)
        or subtree_of(PP_REG_CERT_EXT, oid)
        or subtree_of(PP_PRIV_CERT_EXT, oid)
    )


def _accepts(accept: str | None) -> bool:
    if not accept:
        return True
    ranges = [item.split(";")[0].strip().lower() for item in accept.split(",")]
    return any(item in ("*/*", "application/*", "text/*", *CA_MEDIA_TYPES) for item in ranges)


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
            length = int(self.headers.get("Content-Length") or 0)
            reply = primary.handle(
                Request(
                    method=method,
                    url=self.path,
                    body=self.rfile.read(length) if length else b"",
                    content_type=self.headers.get("Content-Type"),
                    accept=self.headers.get("Accept"),
                    client_certificate=self.connection.getpeercert(binary_form=True),
                )
            )
            data = reply.body.encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            if reply.status != 204:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if reply.status != 204:
                self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

    return Handler


@contextmanager
def stub_primary(root: Path, **options: Any) -> Iterator[StubPrimary]:
    """The stub primary, serving on a free port of 127.0.0.1 until the block ends.

    ``options`` go to StubPrimary (``pe_broker=False``: no PCP broker, as open-source Puppet)."""
    primary = StubPrimary(root, **options)
    server_pem = primary.ca.issue(
        PRIMARY, ["puppet", PRIMARY, "localhost"], ["127.0.0.1"], extensions={PP_CLI_AUTH_OID: "true"}
    )
    server_pem.write(root / "server.pem", root / "server.key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(root / "server.pem", root / "server.key")
    context.load_verify_locations(cadata=primary.ca.cert_pem.decode())
    # Status, packages and certificate/certificate_request take anonymous clients, as puppetserver
    # does; certificate_status wants pp_cli_auth; the classifier and PuppetDB want a certificate.
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
