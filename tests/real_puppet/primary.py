"""A real one-host Puppet primary on 127.0.0.1 for the primary script: the real-Puppet tier.

Open-source Puppet 7 from Debian 12 stands in for PE: its own PostgreSQL cluster (initdb into a
temporary directory, run as ``postgres`` on port 55432), PuppetDB on it (TLS on 127.0.0.1:8081),
puppetserver (CA, catalogs; facts, catalogs and reports go to PuppetDB through
puppet-terminus-puppetdb) and, for PE's node classifier, the classifier of the project's stub
primary (tests/stub_primary.py) served with the primary's own certificate. Everything lives under
one temporary directory: Puppet's confdir, vardir, ssldir and cadir, puppetserver's and
PuppetDB's configuration, the cluster, the logs.

Names. The primary's certname is a fixed name nobody resolves (``pe-primary.pe-lb.test``): every
client reaches the services at 127.0.0.1 (``server = 127.0.0.1`` in puppet.conf, the script's
``--*-url`` flags) and the primary's certificate carries ``IP:127.0.0.1``, so TLS checks the
address. No /etc/hosts entry, no DNS; the machine's own name plays no part.

STAND-INs for what only PE has, each labelled where it is made:

- ``puppet node purge`` (the ``--puppet`` wrapper): ``puppet node deactivate`` then
  ``puppetserver ca clean``, what PE's purge does; everything else passes through to the real
  ``puppet`` with the tier's confdir.
- ``systemctl reload pe-postgresql.service`` (the ``--systemctl`` wrapper): ``pg_ctl reload`` of
  the tier's cluster, whose ``pg_ident.conf`` is the one the script edits.
- PE's install.bash: its ``section:key=value`` arguments (the bootstrap's ``install_settings``)
  written as puppet.conf settings and csr_attributes.yaml entries.
- The compile master's status URL: the compile master here is a Puppet agent, not a
  puppetserver, so ``--status-url`` names the primary's puppetserver.

puppetserver runs as `puppetserver foreground` runs it (the same java command line) but with the
tier's conf.d and as root: `foreground` hard-codes /etc/puppet/puppetserver/conf.d and the
``puppet`` user. The CA and the primary's certificate are made offline first
(`puppetserver ca setup`, seconds) so PuppetDB starts beside puppetserver, not after it.

Services are started in their own process groups and stopped by process group, on success,
failure and interruption alike; readiness is polled (``/status/v1/simple``, ``pg_isready``),
never slept for.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509

from components.pe import (
    COMPILER_AUTH_ROLE,
    INSTANCE_IDENTITY_OID,
    PE_INFRASTRUCTURE_AGENT_NODE_GROUP,
    PLATFORM_EXTENSION_OID,
)
from components.scripts import SCRIPTS_DIR, primary_script
from tests.stub_primary import StubPrimary, _handler

PACKAGES = ("puppetserver", "puppet", "puppetdb", "puppet-terminus-puppetdb", "postgresql")
"""Debian 12's packages the tier runs (`make test-puppet` installs the missing ones)."""

PRIMARY_CERTNAME = "pe-primary.pe-lb.test"
LOOPBACK = "127.0.0.1"
PUPPETSERVER_PORT = 8140
PUPPETDB_PORT = 8081
POSTGRESQL_PORT = 55432
REGION = "eu-west-1"
ACCOUNT_ID = "123456789012"
POOL_ADDRESS = "pool.pe-lb.example.com"

PUPPET = "/usr/bin/puppet"
PUPPETSERVER = "/usr/bin/puppetserver"
JAVA = "/usr/bin/java"
DEBIAN_PUPPETSERVER_CONF = Path("/etc/puppet/puppetserver")
DEBIAN_PUPPETDB_CONF = Path("/etc/puppetdb")
PUPPETSERVER_HOME = Path("/usr/share/puppetserver")
BOOTSTRAP = SCRIPTS_DIR / "compile_master_bootstrap.sh"

JVM_STARTUP = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
"""Client compiler only and the serial collector: the JVMs start in about half the time on 2 cores."""
PUPPETSERVER_JAVA_ARGS = (
    "-Xmx512m",
    *JVM_STARTUP,
    "-Djruby.logger.class=com.puppetlabs.jruby_utils.jruby.Slf4jLogger",
    "-Djruby.lib=/usr/share/jruby/lib",
    "-XX:+CrashOnOutOfMemoryError",
)
"""Debian's /etc/default/puppetserver and `puppetserver foreground`, with a 512 MB heap (one JRuby)."""
PUPPETDB_JAVA_ARGS = ("-Xmx192m", *JVM_STARTUP, "-Djava.security.egd=/dev/urandom")

T = TypeVar("T")

STARTUP_TIMEOUT = 600.0
STOP_TIMEOUT = 60.0
POLL_SECONDS = 0.25


class TierError(Exception):
    """The tier could not do what a test asked (a service would not start, a command failed)."""


# ---------------------------------------------------------------- processes


@dataclass
class Service:
    """A process the tier started, leader of its own process group; stopped by that group."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    stop_signal: int = signal.SIGTERM

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Ask the group to stop, wait, then kill whatever is left of it."""
        if self.process.poll() is None:
            self.signal_group(self.stop_signal)
        self.wait_stopped(timeout)

    def wait_stopped(self, timeout: float = STOP_TIMEOUT) -> None:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            self.process.wait()
        self.signal_group(signal.SIGKILL)  # children that outlived their leader

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def spawn(
    name: str,
    argv: Sequence[str | Path],
    log: Path,
    *,
    cwd: Path | None = None,
    user: str | None = None,
    stop_signal: int = signal.SIGTERM,
) -> Service:
    """Start ``argv`` in a new session (its own process group), output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        process = subprocess.Popen(
            [str(arg) for arg in argv],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
            user=user,
            group=user,
            extra_groups=[] if user else None,
        )
    return Service(name, process, log, stop_signal)


def run(argv: Sequence[str | Path], *, what: str, user: str | None = None, timeout: float = 300) -> str:
    """Run a command to completion; its output, or TierError naming ``what`` with the output's tail."""
    result = subprocess.run(
        [str(arg) for arg in argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        user=user,
        group=user,
        extra_groups=[] if user else None,
    )
    if result.returncode != 0:
        raise TierError(f"{what} exited {result.returncode}: {(result.stdout + result.stderr)[-2000:]}")
    return result.stdout


def postgresql_bin() -> Path:
    """The newest installed PostgreSQL's server binaries (Debian: /usr/lib/postgresql/<major>/bin)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda path: int(path.parent.parent.name)
    )
    if not found:
        raise TierError("no PostgreSQL server in /usr/lib/postgresql (Debian's postgresql package)")
    return found[-1].parent


def _refuse_busy_ports() -> None:
    for port in (PUPPETSERVER_PORT, PUPPETDB_PORT, POSTGRESQL_PORT):
        with socket.socket() as probe:
            if probe.connect_ex((LOOPBACK, port)) == 0:
                raise TierError(
                    f"{LOOPBACK}:{port} is already in use: the tier needs it (is a Puppet running?)"
                )


def _ini(sections: Mapping[str, Mapping[str, str]]) -> str:
    """puppet.conf / PuppetDB .ini text."""
    lines = []
    for section, settings in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the primary


class RealPrimary:
    """The tier's primary: start it with :func:`running_primary`; tests read and drive it here."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.confdir = root / "puppet"
        self.ssldir = self.confdir / "ssl"
        self.cadir = root / "ca"
        self.codedir = root / "code"
        self.server_dir = root / "puppetserver"
        self.puppetdb_dir = root / "puppetdb"
        self.pg_dir = root / "postgresql"
        self.pg_data = self.pg_dir / "data"
        self.pg_bin = postgresql_bin()
        self.logs = root / "logs"
        self.bin = root / "bin"
        self.state_dir = root / "pe-lb"
        self.hiera_yaml = root / "hiera.yaml"
        self.script = root / "pe-lb-primary.py"
        self.services: list[Service] = []
        self.background: list[Service] = []
        """Short-lived processes (CA setup, compile masters' agent runs), stopped with the tier."""
        self._classifier: StubPrimary | None = None
        self._classifier_server: ThreadingHTTPServer | None = None
        self.classifier_port = 0
        self.timings: dict[str, float] = {}
        """Seconds from the start of :meth:`start` until each service answered."""
        self.python = sys.executable
        """The interpreter the script runs under (a test may pick Python 3.6)."""

    # -- paths

    @property
    def hostcert(self) -> Path:
        return self.ssldir / "certs" / f"{PRIMARY_CERTNAME}.pem"

    @property
    def hostprivkey(self) -> Path:
        return self.ssldir / "private_keys" / f"{PRIMARY_CERTNAME}.pem"

    @property
    def localcacert(self) -> Path:
        return self.ssldir / "certs" / "ca.pem"

    @property
    def ca_conf(self) -> Path:
        return self.server_dir / "conf.d" / "ca.conf"

    @property
    def pg_ident(self) -> Path:
        return self.pg_data / "pg_ident.conf"

    @property
    def pg_log(self) -> Path:
        return self.logs / "postgresql.log"

    # -- starting and stopping

    def start(self) -> None:
        begun = time.monotonic()
        _refuse_busy_ports()
        for directory in (self.logs, self.bin, self.state_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self._write_puppet_configuration()
        # The CA and the primary's certificate first, offline (seconds), so that PuppetDB, which
        # needs them, starts beside puppetserver instead of after its first start.
        ca_setup = spawn(
            "puppetserver ca setup",
            [
                PUPPETSERVER, "ca", "setup",
                "--config", self.confdir / "puppet.conf",
                "--certname", PRIMARY_CERTNAME,
                "--subject-alt-names", f"puppet,IP:{LOOPBACK}",
            ],
            self.logs / "ca-setup.log",
        )  # fmt: skip
        self.background.append(ca_setup)
        self._start_postgresql()
        self.timings["postgresql"] = time.monotonic() - begun
        if ca_setup.process.wait(timeout=300) != 0:
            raise TierError(f"puppetserver ca setup failed: {ca_setup.tail()}")
        self._write_server_configuration()
        self._write_puppetdb_configuration()
        self.services.append(
            spawn(
                "puppetserver",
                [
                    JAVA, *PUPPETSERVER_JAVA_ARGS,
                    f"-XX:ErrorFile={self.logs}/puppetserver_err_pid%p.log",
                    "-jar", PUPPETSERVER_HOME / "puppetserver.jar",
                    "--config", self.server_dir / "conf.d",
                    "--bootstrap-config", self.server_dir / "services.d",
                ],
                self.logs / "puppetserver.log",
                cwd=PUPPETSERVER_HOME,
            )
        )  # fmt: skip
        self.services.append(
            spawn(
                "puppetdb",
                [
                    JAVA, *PUPPETDB_JAVA_ARGS,
                    "-cp", "/usr/share/puppetdb/puppetdb.jar",
                    "clojure.main", "-m", "puppetlabs.puppetdb.core", "services",
                    "--config", self.puppetdb_dir / "conf.d",
                    "--bootstrap-config", self.puppetdb_dir / "bootstrap.cfg",
                ],
                self.logs / "puppetdb.log",
            )
        )  # fmt: skip
        self._start_classifier()
        self._write_wrappers()
        self.script.write_text(primary_script(), encoding="utf-8")
        self.hiera_yaml.write_text("---\nversion: 5\nhierarchy:\n  - name: common\n    path: common.yaml\n")
        self._wait_ready(begun)

    def stop(self) -> None:
        """Stop everything the tier started (idempotent): agents, JVMs together, then PostgreSQL."""
        for service in self.background:
            service.signal_group(signal.SIGKILL)
            service.wait_stopped()
        if self._classifier_server is not None:
            self._classifier_server.shutdown()
            self._classifier_server.server_close()
            self._classifier_server = None
        # PuppetDB and puppetserver together, then the database PuppetDB was using.
        ordered = sorted(self.services, key=lambda service: service.name == "postgresql")
        for service in ordered:
            if service.name != "postgresql" and service.process.poll() is None:
                service.signal_group(service.stop_signal)
        for service in ordered:
            service.stop()

    def _wait_ready(self, begun: float) -> None:
        """Poll each JVM's /status/v1/simple until it answers 200 (connections are refused before)."""
        pending = {
            service.name: service for service in self.services if service.name in ("puppetserver", "puppetdb")
        }
        ports = {"puppetserver": PUPPETSERVER_PORT, "puppetdb": PUPPETDB_PORT}
        while pending:
            for name, service in list(pending.items()):
                if service.process.poll() is not None:
                    raise TierError(
                        f"{name} exited {service.process.returncode} while starting:\n{service.tail()}"
                    )
                status, _ = self.https(ports[name], "GET", "/status/v1/simple", timeout=5)
                if status == 200:
                    self.timings[name] = time.monotonic() - begun
                    del pending[name]
            if time.monotonic() - begun > STARTUP_TIMEOUT:
                raise TierError(
                    "not ready after {:.0f} s: {}\n{}".format(
                        STARTUP_TIMEOUT, ", ".join(pending), "\n".join(s.tail() for s in pending.values())
                    )
                )
            if pending:
                time.sleep(POLL_SECONDS)

    # -- PostgreSQL

    def _start_postgresql(self) -> None:
        self.pg_dir.mkdir(mode=0o700)
        shutil.chown(self.pg_dir, "postgres", "postgres")
        run(
            [self.pg_bin / "initdb", "-D", self.pg_data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
             "--locale=C.UTF-8"],
            what="initdb",
            user="postgres",
        )  # fmt: skip
        service = spawn(
            "postgresql",
            [
                self.pg_bin / "postgres", "-D", self.pg_data, "-p", str(POSTGRESQL_PORT),
                "-c", f"listen_addresses={LOOPBACK}",
                "-c", f"unix_socket_directories={self.pg_dir}",
                "-c", "fsync=off",
                "-c", "full_page_writes=off",
            ],
            self.pg_log,
            user="postgres",
            stop_signal=signal.SIGINT,  # fast shutdown: SIGTERM would wait for PuppetDB's connections
        )  # fmt: skip
        self.services.append(service)
        deadline = time.monotonic() + 60
        while subprocess.run(
            [self.pg_bin / "pg_isready", "-q", "-h", LOOPBACK, "-p", str(POSTGRESQL_PORT)], check=False
        ).returncode:
            if service.process.poll() is not None or time.monotonic() > deadline:
                raise TierError(f"PostgreSQL did not start:\n{service.tail()}")
            time.sleep(POLL_SECONDS)
        self.sql("CREATE ROLE puppetdb LOGIN")
        self.sql("CREATE DATABASE puppetdb OWNER puppetdb")
        self.sql("CREATE EXTENSION pg_trgm", database="puppetdb")

    def sql(self, statement: str, database: str = "postgres") -> list[list[str]]:
        """Rows of one statement run as the cluster's superuser (tab-separated fields)."""
        output = run(
            [
                self.pg_bin / "psql", "-h", LOOPBACK, "-p", str(POSTGRESQL_PORT), "-U", "postgres",
                "-d", database, "-v", "ON_ERROR_STOP=1", "-X", "-A", "-t", "-F", "\t", "-c", statement,
            ],
            what=f"psql {statement!r}",
        )  # fmt: skip
        return [line.split("\t") for line in output.splitlines() if line]

    def pg_ident_maps(self, certname: str) -> list[str]:
        """The maps PostgreSQL parses from pg_ident.conf for ``certname`` ("map system-user role")."""
        rows = self.sql(
            "SELECT map_name, sys_name, pg_username FROM pg_ident_file_mappings "
            f"WHERE sys_name = '{certname}' ORDER BY line_number"
        )
        return [" ".join(row) for row in rows]

    def pg_ident_errors(self) -> list[list[str]]:
        return self.sql("SELECT * FROM pg_ident_file_mappings WHERE error IS NOT NULL")

    def pg_reloads(self) -> int:
        """How often PostgreSQL has reloaded its configuration (SIGHUP, as pg_ctl reload sends)."""
        return self.pg_log.read_text(errors="replace").count("received SIGHUP, reloading configuration files")

    # -- configuration

    def _write_puppet_configuration(self) -> None:
        self.confdir.mkdir(parents=True)
        main = {
            "certname": PRIMARY_CERTNAME,
            "server": LOOPBACK,
            "vardir": str(self.root / "var"),
            "ssldir": str(self.ssldir),
            "cadir": str(self.cadir),
            "codedir": str(self.codedir),
            "rundir": str(self.root / "run"),
            "logdir": str(self.logs),
            "publicdir": str(self.root / "public"),
        }
        server = {"storeconfigs": "true", "storeconfigs_backend": "puppetdb", "reports": "puppetdb"}
        (self.confdir / "puppet.conf").write_text(_ini({"main": main, "server": server}))
        (self.confdir / "puppetdb.conf").write_text(
            _ini(
                {
                    "main": {
                        "server_urls": f"https://{LOOPBACK}:{PUPPETDB_PORT}",
                        "soft_write_failure": "false",
                    }
                }
            )
        )
        manifests = self.codedir / "environments" / "production" / "manifests"
        manifests.mkdir(parents=True)
        (manifests / "site.pp").write_text("")

    def _write_logback(self, path: Path) -> None:
        path.write_text(
            "<configuration>\n"
            '  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">\n'
            "    <encoder><pattern>%d{HH:mm:ss.SSS} %-5p [%c{2}] %m%n</pattern></encoder>\n"
            "  </appender>\n"
            '  <root level="info"><appender-ref ref="STDOUT"/></root>\n'
            "</configuration>\n"
        )

    def _write_server_configuration(self) -> None:
        conf_d = self.server_dir / "conf.d"
        conf_d.mkdir(parents=True)
        shutil.copytree(DEBIAN_PUPPETSERVER_CONF / "services.d", self.server_dir / "services.d")
        for name in ("auth.conf", "web-routes.conf", "metrics.conf"):
            shutil.copy(DEBIAN_PUPPETSERVER_CONF / "conf.d" / name, conf_d / name)
        self._write_logback(self.server_dir / "logback.xml")
        (conf_d / "global.conf").write_text(
            f"global: {{\n  logging-config: {self.server_dir / 'logback.xml'}\n}}\n"
        )
        # TLS 1.2: Debian's Ruby 3.1 Net::HTTP, reusing a TLS 1.3 connection after a PUT (the
        # session ticket arrives after the answer), blocks until Jetty's 30 s idle timeout: every
        # `puppet ssl submit_request` took 35 s.
        (conf_d / "webserver.conf").write_text(
            "webserver: {\n"
            "  client-auth: want\n"
            f"  ssl-host: {LOOPBACK}\n"
            f"  ssl-port: {PUPPETSERVER_PORT}\n"
            "  ssl-protocols: [TLSv1.2]\n"
            "}\n"
        )
        # What PE sets for compilers, and what the script checks (--ca-conf) before signing.
        self.ca_conf.write_text(
            "certificate-authority: {\n"
            "  allow-subject-alt-names: true\n"
            "  allow-authorization-extensions: true\n"
            "}\n"
        )
        (conf_d / "puppetserver.conf").write_text(
            "jruby-puppet: {\n"
            "  ruby-load-path: [/usr/lib/puppetserver/ruby/vendor_ruby]\n"
            f"  gem-home: {self.server_dir / 'jruby-gems'}\n"
            '  gem-path: [${jruby-puppet.gem-home}, "/usr/lib/puppetserver/vendored-jruby-gems"]\n'
            f"  server-conf-dir: {self.confdir}\n"
            f"  server-code-dir: {self.codedir}\n"
            f"  server-var-dir: {self.server_dir / 'var'}\n"
            f"  server-run-dir: {self.root / 'run'}\n"
            f"  server-log-dir: {self.logs}\n"
            "  max-active-instances: 1\n"
            "}\n"
            "http-client: {}\n"
            "profiler: {}\n"
        )

    def _write_puppetdb_configuration(self) -> None:
        conf_d = self.puppetdb_dir / "conf.d"
        conf_d.mkdir(parents=True)
        (self.puppetdb_dir / "var").mkdir()
        shutil.copy(DEBIAN_PUPPETDB_CONF / "bootstrap.cfg", self.puppetdb_dir / "bootstrap.cfg")
        shutil.copy(DEBIAN_PUPPETDB_CONF / "conf.d" / "auth.conf", conf_d / "auth.conf")
        self._write_logback(self.puppetdb_dir / "logback.xml")
        (conf_d / "puppetdb.ini").write_text(
            _ini(
                {
                    "global": {
                        "vardir": str(self.puppetdb_dir / "var"),
                        "logging-config": str(self.puppetdb_dir / "logback.xml"),
                    },
                    "command-processing": {"threads": "1"},
                    "database": {
                        "subname": f"//{LOOPBACK}:{POSTGRESQL_PORT}/puppetdb",
                        "username": "puppetdb",
                        "password": "puppetdb",
                    },
                    "jetty": {
                        "ssl-host": LOOPBACK,
                        "ssl-port": str(PUPPETDB_PORT),
                        "ssl-key": str(self.hostprivkey),
                        "ssl-cert": str(self.hostcert),
                        "ssl-ca-cert": str(self.localcacert),
                    },
                    "nrepl": {"enabled": "false"},
                }
            )
        )

    def _write_wrappers(self) -> None:
        # STAND-IN for PE's /opt/puppetlabs/bin/puppet: the real one with the tier's confdir, and
        # `node purge`, which only PE has, as what it does: deactivate the node, clean its certificate.
        self._executable(
            "puppet",
            f"""#!/bin/bash
# STAND-IN for PE's puppet (pe-lb real-Puppet tier): real puppet with the tier's confdir; PE's
# `puppet node purge NAME` is `puppet node deactivate NAME` + `puppetserver ca clean --certname NAME`.
set -euo pipefail
confdir={self.confdir}
if [[ ${{1:-}} == node && ${{2:-}} == purge ]]; then
  certname=$3
  shift 3
  {PUPPET} node deactivate "$certname" --confdir "$confdir" "$@"
  {PUPPETSERVER} ca clean --certname "$certname" --config "$confdir/puppet.conf"
  exit 0
fi
exec {PUPPET} "$@" --confdir "$confdir"
""",
        )
        self._executable(
            "systemctl",
            f"""#!/bin/bash
# STAND-IN for systemctl (pe-lb real-Puppet tier): reloading PE-PostgreSQL reloads the tier's own
# cluster, which then parses the pg_ident.conf the script wrote.
set -euo pipefail
if [[ $* == "reload pe-postgresql.service" ]]; then
  exec runuser -u postgres -- {self.pg_bin / "pg_ctl"} reload -s -D {self.pg_data}
fi
echo "systemctl stand-in: unexpected: $*" >&2
exit 64
""",
        )

    def _executable(self, name: str, text: str) -> None:
        path = self.bin / name
        path.write_text(text)
        path.chmod(0o755)

    # -- the classifier (the stub primary's)

    @property
    def classifier(self) -> StubPrimary:
        """The stub primary, of which only the classifier answers here (PE's node classifier)."""
        if self._classifier is None:
            raise TierError("the classifier stub has not started")
        return self._classifier

    def _start_classifier(self) -> None:
        self._classifier = StubPrimary(self.root / "classifier-stub")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.hostcert, self.hostprivkey)
        context.load_verify_locations(self.localcacert)
        context.verify_mode = ssl.CERT_OPTIONAL
        server = ThreadingHTTPServer((LOOPBACK, 0), _handler(self.classifier))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self.classifier_port = server.server_address[1]
        threading.Thread(target=server.serve_forever, name="classifier-stub", daemon=True).start()
        self._classifier_server = server

    def pinned(self) -> list[str]:
        """The nodes pinned to PE Infrastructure Agent."""
        return list(self.classifier.group(PE_INFRASTRUCTURE_AGENT_NODE_GROUP).get("pinned", []))

    # -- HTTPS to the primary's services

    def https(
        self,
        port: int,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        content_type: str | None = None,
        accept: str | None = None,
        client_certificate: bool = True,
        timeout: float = 30,
    ) -> tuple[int, str]:
        """(HTTP status, body) of one request, verified by the Puppet CA; status 0 when nobody answers.

        ``client_certificate``: as the primary (its certificate carries pp_cli_auth), else anonymous.
        """
        context = ssl.create_default_context(cafile=str(self.localcacert))
        if client_certificate:
            context.load_cert_chain(self.hostcert, self.hostprivkey)
        headers = {}
        if content_type:
            headers["Content-Type"] = content_type
        if accept:
            headers["Accept"] = accept
        request = urllib.request.Request(
            f"https://{LOOPBACK}:{port}{path}", data=body, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, context=context, timeout=timeout) as response:
                return int(response.status), response.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")
        except (urllib.error.URLError, OSError):
            return 0, ""

    def ca_status(self, certname: str) -> tuple[int, Any]:
        """certificate_status: (HTTP status, the decoded JSON or the text)."""
        status, text = self.https(PUPPETSERVER_PORT, "GET", f"/puppet-ca/v1/certificate_status/{certname}")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def ca_certificate(self, certname: str) -> str | None:
        """The signed certificate the CA serves for ``certname`` (anonymously, as agents fetch it)."""
        status, text = self.https(
            PUPPETSERVER_PORT, "GET", f"/puppet-ca/v1/certificate/{certname}", client_certificate=False
        )
        return text if status == 200 else None

    def submit_request(self, certname: str, pem: bytes) -> tuple[int, str]:
        """PUT a CSR as an agent does (anonymous, text/plain)."""
        return self.https(
            PUPPETSERVER_PORT,
            "PUT",
            f"/puppet-ca/v1/certificate_request/{certname}",
            pem,
            content_type="text/plain",
            client_certificate=False,
        )

    def discard_request(self, certname: str) -> None:
        """Remove a pending request (the API first; the CA's file when the API cannot read it)."""
        status, _ = self.https(PUPPETSERVER_PORT, "DELETE", f"/puppet-ca/v1/certificate_status/{certname}")
        if status not in (200, 204, 404):
            (self.cadir / "requests" / f"{certname}.pem").unlink(missing_ok=True)

    def inventory(self) -> list[tuple[int, str]]:
        """(serial, subject) of every certificate the CA has ever signed (inventory.txt)."""
        entries = []
        for line in (self.cadir / "inventory.txt").read_text().splitlines():
            fields = line.split()
            if len(fields) >= 4:
                entries.append((int(fields[0], 16), fields[3]))
        return entries

    def signed_serials(self, certname: str) -> list[int]:
        return [serial for serial, subject in self.inventory() if subject == f"/CN={certname}"]

    def revoked_serials(self) -> set[int]:
        """Serials on the CA's CRLs (ca_crl.pem holds the issuing CA's CRL and the root's)."""
        text = (self.cadir / "ca_crl.pem").read_text()
        blocks = re.findall(r"-----BEGIN X509 CRL-----.*?-----END X509 CRL-----", text, re.S)
        return {entry.serial_number for block in blocks for entry in x509.load_pem_x509_crl(block.encode())}

    def puppetdb_node(self, certname: str) -> dict[str, Any] | None:
        status, text = self.https(PUPPETDB_PORT, "GET", f"/pdb/query/v4/nodes/{certname}")
        if status == 404:
            return None
        if status != 200:
            raise TierError(f"PuppetDB answered {status} for node {certname}: {text[:300]}")
        return dict(json.loads(text))

    def wait_for(self, what: str, check: Callable[[], T | None], timeout: float = 60) -> T:
        """Poll ``check()`` until truthy (PuppetDB processes commands asynchronously)."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TierError(f"{what}: not within {timeout:.0f} s")
            time.sleep(POLL_SECONDS)

    # -- the script

    def script_options(self) -> dict[str, str]:
        base = f"https://{LOOPBACK}"
        return {
            "--puppet": str(self.bin / "puppet"),
            "--systemctl": str(self.bin / "systemctl"),
            "--state-dir": str(self.state_dir),
            "--postgresql-data-glob": str(self.pg_ident),
            "--hiera-yaml": str(self.hiera_yaml),
            "--os-release": "/etc/os-release",
            "--ca-conf": str(self.ca_conf),
            "--ca-url": f"{base}:{PUPPETSERVER_PORT}/puppet-ca/v1",
            "--classifier-url": f"{base}:{self.classifier_port}/classifier-api",
            "--puppetdb-url": f"{base}:{PUPPETDB_PORT}/pdb/query/v4",
            # STAND-IN: the compile master here is a Puppet agent, not a puppetserver: the
            # primary's puppetserver answers for it.
            "--status-url": base + ":{port}/status/v1/simple",
            "--poll-seconds": "0.5",
            "--csr-timeout": "60",
            "--run-timeout": "300",
            "--status-timeout": "60",
            "--lock-timeout": "300",
        }

    def run_script(
        self,
        action: str,
        *args: str,
        options: Mapping[str, str] | None = None,
        python: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 600,
    ) -> subprocess.CompletedProcess[str]:
        """The primary script (the bundle the components send), run as on the primary: as root."""
        merged = {**self.script_options(), **(options or {})}
        argv = [python or self.python, str(self.script), action, *args]
        for option, value in merged.items():
            argv += [option, value]
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            check=False,
            timeout=timeout,
            env=dict(os.environ if env is None else env),
        )

    def join(
        self, instance: Instance, identity_certificates: Path, **options: str
    ) -> subprocess.CompletedProcess[str]:
        return self.run_script(
            "join",
            instance.certname,
            options={
                "--pool-address": POOL_ADDRESS,
                "--instance-arn": instance.arn,
                "--identity-certificates": str(identity_certificates),
                **options,
            },
        )


@contextlib.contextmanager
def running_primary(root: Path) -> Iterator[RealPrimary]:
    """The tier's primary, started under ``root`` and stopped when the block ends, however it ends."""
    primary = RealPrimary(root)
    try:
        primary.start()
        yield primary
    finally:
        primary.stop()


# ---------------------------------------------------------------- compile masters


@dataclass(frozen=True)
class Instance:
    """An EC2 instance as the contract names it: certname <instance-id>.<region>.compute.internal."""

    instance_id: str
    region: str = REGION
    account_id: str = ACCOUNT_ID

    @property
    def certname(self) -> str:
        domain = "ec2.internal" if self.region == "us-east-1" else f"{self.region}.compute.internal"
        return f"{self.instance_id}.{domain}"

    @property
    def arn(self) -> str:
        return f"arn:aws:ec2:{self.region}:{self.account_id}:instance/{self.instance_id}"


def bootstrap_function(name: str, *args: str, env: Mapping[str, str] | None = None) -> list[str]:
    """The lines one function of the compile master's bootstrap prints (the file sourced, main not run)."""
    result = subprocess.run(
        ["bash", "-c", 'source "$1"; shift; "$@"', "bash", str(BOOTSTRAP), name, *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )
    if result.returncode != 0:
        raise TierError(f"the bootstrap's {name} exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout.splitlines()


def bootstrap_platform() -> str:
    """The platform the bootstrap declares for this machine (what the script computes for the primary)."""
    return bootstrap_function("platform_tag", "/etc/os-release", os.uname().machine)[0]


def install_settings(instance: Instance, platform: str, identity: str) -> list[str]:
    """The ``section:key=value`` arguments the bootstrap passes to PE's install.bash."""
    return bootstrap_function(
        "install_settings",
        instance.certname,
        platform,
        identity,
        env={
            "PE_POOL_NAMES": POOL_ADDRESS,
            "PE_AUTH_ROLE": COMPILER_AUTH_ROLE,
            "PE_PLATFORM_OID": PLATFORM_EXTENSION_OID,
            "PE_IDENTITY_OID": INSTANCE_IDENTITY_OID,
        },
    )


CSR_ATTRIBUTE_SECTIONS = ("extension_requests", "custom_attributes")


def install_bash_stand_in(confdir: Path, settings: Sequence[str], tier_settings: Mapping[str, str]) -> None:
    """STAND-IN for PE's install.bash (PE only): its ``section:key=value`` arguments as it applies them.

    ``extension_requests:`` and ``custom_attributes:`` go to csr_attributes.yaml, every other
    section to puppet.conf. ``tier_settings`` ([main]) route the agent to the tier (server
    127.0.0.1, its own directories); the install settings come after them and win.
    """
    conf: dict[str, dict[str, str]] = {"main": dict(tier_settings)}
    attributes: dict[str, dict[str, str]] = {}
    for line in settings:
        section, colon, setting = line.partition(":")
        key, equals, value = setting.partition("=")
        if not (colon and equals and section and key):
            raise TierError(f"not an install.bash setting (section:key=value): {line!r}")
        target = attributes if section in CSR_ATTRIBUTE_SECTIONS else conf
        target.setdefault(section, {})[key] = value
    (confdir / "puppet.conf").write_text(_ini(conf))
    yaml = ["---"]
    for section, entries in attributes.items():
        yaml.append(f"{section}:")
        # JSON strings are YAML double-quoted scalars.
        yaml += [f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in entries.items()]
    (confdir / "csr_attributes.yaml").write_text("\n".join(yaml) + "\n")


@dataclass
class CompileMaster:
    """A compile master for the tier: a real `puppet agent` with its own confdir and ssldir.

    Installed from the bootstrap's install.bash arguments (through the install.bash stand-in),
    with the PE CA the bootstrap writes; its request goes out with `puppet ssl submit_request`
    and its first run waits for the signature (`--waitforcert`), as the bootstrap does.
    """

    primary: RealPrimary
    instance: Instance
    settings: list[str] = field(default_factory=list)
    """The install.bash arguments it was installed with."""

    @property
    def certname(self) -> str:
        return self.instance.certname

    @property
    def confdir(self) -> Path:
        return self.primary.root / "compile-masters" / self.instance.instance_id

    def install(self, identity: str) -> None:
        self.confdir.mkdir(parents=True)
        self.settings = install_settings(self.instance, bootstrap_platform(), identity)
        install_bash_stand_in(
            self.confdir,
            self.settings,
            {
                "server": LOOPBACK,
                "vardir": str(self.confdir / "var"),
                "ssldir": str(self.confdir / "ssl"),
                "rundir": str(self.confdir / "run"),
                "logdir": str(self.confdir / "log"),
                "publicdir": str(self.confdir / "public"),
            },
        )
        cacert = self.confdir / "ssl" / "certs" / "ca.pem"
        cacert.parent.mkdir(parents=True)
        shutil.copy(self.primary.localcacert, cacert)

    def puppet(self, *args: str) -> list[str]:
        return [PUPPET, *args, "--confdir", str(self.confdir), "--color=false"]

    def submit_request(self) -> None:
        run(self.puppet("ssl", "submit_request"), what=f"puppet ssl submit_request on {self.certname}")

    def start_first_run(self) -> Service:
        """The first Puppet run, in the background: it waits for the certificate, then reports."""
        service = spawn(
            f"first run of {self.certname}",
            self.puppet(
                "agent", "--onetime", "--no-daemonize", "--no-splay", "--waitforcert", "1",
                "--detailed-exitcodes", "--verbose",
            ),
            self.confdir / "first-run.log",
        )  # fmt: skip
        self.primary.background.append(service)
        return service
