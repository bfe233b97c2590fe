#!/usr/bin/env python3
"""pe-lb's steps on the PE primary: compile masters join and leave, pe_repo points at the pool.

Runs on the primary as root, fed on standard input by the components
(``python3 - ACTION ...``). Python 3.6 and the standard library only: RHEL 7/8 and
SLES 15 primaries have nothing newer (found as python3 or /usr/libexec/platform-python).

  read                 print the PE CA bundle and the global hiera.yaml (JSON) for the
                       compile masters' user data
  join CERTNAME        verify and sign the compile master's request, pin it to PE
                       Infrastructure Agent, allow it into PE-PostgreSQL, wait for its first
                       Puppet run, run Puppet on the primary, wait until it serves
  leave CERTNAME       wait out the load balancer's deregistration delay, purge the node,
                       unpin it, drop it from PE-PostgreSQL, run Puppet on the primary
  pe-repo-set ADDRESS  pe_repo::compile_master_pool_address = ADDRESS in PE Master, then
                       wait until each compile master's install script names it (their
                       own runs), then Puppet on the primary: PE's order, checked
  pe-repo-unset ADDRESS  remove it, only while it still is ADDRESS
  agent-set ADDRESS    PE Agent's server_list, primary_uris (8140) and pcp_broker_list (8142)
                       at the pool, then Puppet on the primary; values set by others stay
  agent-unset ADDRESS  remove exactly pe-lb's values for ADDRESS

Every action is idempotent: run again, it finds its work done and says so.
Exit 0 on success, 1 with a one-line reason on failure.
"""

import argparse
import base64
import calendar
import fcntl
import glob
import json
import os
import platform
import re
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, List, Optional, Tuple

PUPPET = "/opt/puppetlabs/bin/puppet"
PUPPETSERVER_PORT = 8140
PCP_BROKER_PORT = 8142
CLASSIFIER_PORT = 4433
PUPPETDB_PORT = 8081
PE_MASTER_GROUP = "PE Master"
PE_INFRASTRUCTURE_AGENT_GROUP = "PE Infrastructure Agent"
PE_AGENT_GROUP = "PE Agent"
PE_REPO_CLASS = "pe_repo"
PE_REPO_PARAMETER = "compile_master_pool_address"
COMPILER_AUTH_ROLE = "pe_compiler"

OID_COMMON_NAME = "2.5.4.3"
OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14"
OID_SUBJECT_ALT_NAME = "2.5.29.17"
OID_PP_AUTH_ROLE = "1.3.6.1.4.1.34380.1.3.13"
OID_PLATFORM = "1.3.6.1.4.1.34380.1.2.6099.1"
"""pe-lb's private extension (Puppet's ppPrivCertExt arc): the compile master's platform."""

POSTGRESQL_MAPS = (
    ("pe-puppetdb-pe-puppetdb-map", "pe-puppetdb"),
    ("pe-puppetdb-pe-puppetdb-migrator-map", "pe-puppetdb-migrator"),
    ("pe-puppetdb-pe-puppetdb-read-map", "pe-puppetdb-read"),
)
"""The pg_ident.conf lines peadm's add_compilers writes for each compiler's PuppetDB."""

PUPPET_RUN_OK = (0, 2)
"""puppet agent --detailed-exitcodes: 0 nothing changed, 2 changes applied."""


class StepError(Exception):
    """A failure reported to the user in one line, without a traceback."""


def say(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------- the primary's own settings


class Settings:
    """Paths and names from `puppet config print`, never rebuilt from a host name."""

    KEYS = (
        "certname",
        "hostcert",
        "hostprivkey",
        "localcacert",
        "agent_catalog_run_lockfile",
        "agent_disabled_lockfile",
    )

    def __init__(self, puppet: str) -> None:
        output = run_checked([puppet, "config", "print", *self.KEYS, "--section", "agent"])
        values = {}  # type: Dict[str, str]
        for line in output.splitlines():
            key, sep, value = line.partition(" = ")
            if sep:
                values[key.strip()] = value.strip()
        missing = [key for key in self.KEYS if not values.get(key)]
        if missing:
            raise StepError("puppet config print did not answer " + ", ".join(missing))
        self.certname = values["certname"]
        self.hostcert = values["hostcert"]
        self.hostprivkey = values["hostprivkey"]
        self.localcacert = values["localcacert"]
        self.run_lockfile = values["agent_catalog_run_lockfile"]
        self.disabled_lockfile = values["agent_disabled_lockfile"]


def run_checked(argv: List[str]) -> str:
    try:
        result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    except OSError as error:
        raise StepError(f"cannot run {argv[0]}: {error}") from None
    if result.returncode != 0:
        raise StepError(
            "{} exited {}: {}".format(" ".join(argv[:3]), result.returncode, result.stderr.strip()[-500:])
        )
    return result.stdout


# ---------------------------------------------------------------- HTTPS to PE's services


class Api:
    """One PE service, authenticated with the primary's own certificate, verified by the PE CA."""

    def __init__(self, base_url: str, settings: Settings) -> None:
        self.base_url = base_url.rstrip("/")
        try:
            context = ssl.create_default_context(cafile=settings.localcacert)
            context.load_cert_chain(settings.hostcert, settings.hostprivkey)
        except (OSError, ssl.SSLError) as error:
            raise StepError(f"cannot load the certificates of {settings.certname!r}: {error}") from None
        self.context = context

    def request(self, method: str, path: str, body: Any = None, accept: str = "application/json") -> Any:
        """The decoded JSON answer (text for non-JSON), or None for 404."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Accept": accept},
        )
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=60) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            detail = error.read().decode(errors="replace").strip()
            raise StepError(f"{method} {path} answered HTTP {error.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise StepError(f"{method} {self.base_url}{path} failed: {reason}") from None
        if accept != "application/json":
            return text
        return json.loads(text) if text.strip() else {}


class Classifier:
    def __init__(self, api: Api) -> None:
        self.api = api

    def group(self, name: str) -> Dict[str, Any]:
        for group in self.api.request("GET", "/v1/groups") or []:
            if group.get("name") == name:
                return dict(group)
        raise StepError(f"no node group named {name!r} in the classifier")

    def update(self, group_id: str, delta: Dict[str, Any]) -> None:
        # The classifier merges a group delta; a null value removes the key.
        self.api.request("POST", "/v1/groups/" + urllib.parse.quote(group_id), delta)

    def pin(self, group_name: str, certname: str, pinned: bool) -> None:
        group = self.group(group_name)
        action = "pin" if pinned else "unpin"
        self.api.request(
            "POST", "/v1/groups/{}/{}".format(urllib.parse.quote(group["id"]), action), {"nodes": [certname]}
        )
        say(
            "{} {} {} {!r}".format(
                action + "ned" if pinned else "unpinned", certname, "to" if pinned else "from", group_name
            )
        )


# ---------------------------------------------------------------- certificates (DER, no libraries)


class Der:
    """Just enough DER to read a CSR or certificate: subject, alt names, extensions, public key."""

    def __init__(self, pem: str) -> None:
        match = re.search(r"-----BEGIN [A-Z ]+-----(.*?)-----END [A-Z ]+-----", pem, re.S)
        if not match:
            raise StepError("not a PEM block")
        self.der = base64.b64decode("".join(match.group(1).split()))

    @staticmethod
    def read(data: bytes, pos: int = 0) -> Tuple[int, bytes, int, int]:
        """(tag, value, start of the whole element, end of it)."""
        start = pos
        tag = data[pos]
        length = data[pos + 1]
        pos += 2
        if length & 0x80:
            size = length & 0x7F
            length = int.from_bytes(data[pos : pos + size], "big")
            pos += size
        return tag, data[pos : pos + length], start, pos + length

    @classmethod
    def children(cls, data: bytes) -> List[Tuple[int, bytes, bytes]]:
        """(tag, value, whole encoding) of each element in ``data``."""
        out = []
        pos = 0
        while pos < len(data):
            tag, value, start, pos = cls.read(data, pos)
            out.append((tag, value, data[start:pos]))
        return out

    @staticmethod
    def oid(value: bytes) -> str:
        parts = [value[0] // 40, value[0] % 40] if value[0] < 80 else [2, value[0] - 80]
        number = 0
        for byte in value[1:]:
            number = (number << 7) | (byte & 0x7F)
            if not byte & 0x80:
                parts.append(number)
                number = 0
        return ".".join(str(part) for part in parts)


class CertificateData:
    """What pe-lb checks in a compile master's request, and again in the certificate signed for it."""

    def __init__(self, pem: str) -> None:
        try:
            top = Der.children(Der(pem).der)[0][1]
            body = Der.children(Der.children(top)[0][1])
            if body[0][0] == 0xA0:  # a certificate: [0] version first
                body = body[1:]
                subject, public_key = body[4], body[5]
                extensions = [value for tag, value, _ in body[6:] if tag == 0xA3]
                raw_extensions = Der.children(extensions[0])[0][1] if extensions else b""
            else:  # a request: version, subject, key, [0] attributes
                subject, public_key = body[1], body[2]
                raw_extensions = b""
                for tag, value, _ in body[3:]:
                    if tag != 0xA0:
                        continue
                    for _, attribute, _ in Der.children(value):
                        oid, values = Der.children(attribute)[:2]
                        if Der.oid(oid[1]) == OID_EXTENSION_REQUEST:
                            raw_extensions = Der.children(values[1])[0][1]
            self.public_key = public_key[2]
            self.common_name = self._common_name(subject[1])
            self.extensions = {}  # type: Dict[str, bytes]
            for _, extension, _ in Der.children(raw_extensions):
                parts = Der.children(extension)
                self.extensions[Der.oid(parts[0][1])] = parts[-1][1]
            self.dns_names, self.other_names = self._alt_names(self.extensions.get(OID_SUBJECT_ALT_NAME, b""))
        except (IndexError, ValueError) as error:
            raise StepError(f"cannot read the certificate data: {error}") from None

    @staticmethod
    def _common_name(subject: bytes) -> str:
        for _, rdn, _ in Der.children(subject):
            for _, pair, _ in Der.children(rdn):
                oid, value = Der.children(pair)[:2]
                if Der.oid(oid[1]) == OID_COMMON_NAME:
                    return value[1].decode()
        return ""

    @staticmethod
    def _alt_names(value: bytes) -> Tuple[List[str], List[str]]:
        dns = []  # type: List[str]
        other = []  # type: List[str]
        if value:
            for tag, name, _ in Der.children(Der.children(value)[0][1]):
                if tag == 0x82:  # [2] dNSName
                    dns.append(name.decode(errors="replace"))
                else:  # an IP address, URI, e-mail...: never allowed on a compiler
                    other.append(repr(name))
        return dns, other

    def text(self, oid: str) -> Optional[str]:
        """A Puppet extension's value (a DER UTF8String inside the extension)."""
        value = self.extensions.get(oid)
        if value is None:
            return None
        try:
            tag, inner, _, end = Der.read(value)
            if tag in (0x0C, 0x13, 0x16) and end == len(value):
                return inner.decode()
        except IndexError:
            pass
        return value.decode(errors="replace")

    def problems(self, certname: str, pool_address: str, platform_tag: str) -> List[str]:
        """Why this must not become a pe_compiler certificate for ``certname`` (empty: it may)."""
        found = []
        if self.common_name.lower() != certname:
            found.append(f"its subject is {self.common_name!r}, not {certname!r}")
        expected = {certname, "puppet", pool_address}
        names = {name.lower() for name in self.dns_names}
        if names - {certname} != {"puppet", pool_address} or self.other_names:
            found.append(
                "its alt names are {} (allowed: exactly {})".format(
                    sorted(names) + self.other_names, ", ".join(sorted(expected))
                )
            )
        role = self.text(OID_PP_AUTH_ROLE)
        if role != COMPILER_AUTH_ROLE:
            found.append(f"its pp_auth_role is {role!r}, not {COMPILER_AUTH_ROLE!r}")
        node_platform = self.text(OID_PLATFORM)
        if node_platform != platform_tag:
            found.append(
                "it runs {} but the primary runs {} (PE: compilers run the primary's OS, major release "
                "and architecture)".format(node_platform or "an undeclared platform", platform_tag)
            )
        return found


def platform_tag(os_release: str, machine: str) -> str:
    """OS family, major release and architecture, e.g. el-9-x86_64 (the bootstrap computes the same)."""
    fields = {}
    for line in os_release.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip("\"'")
    os_id = fields.get("ID", "")
    family_ids = (" " + os_id + " " + fields.get("ID_LIKE", "") + " ").lower()
    if os_id == "amzn":
        family = "amazon"
    elif os_id in ("ubuntu", "debian", "sles"):
        family = os_id
    elif any(f" {name} " in family_ids for name in ("rhel", "fedora", "centos")):
        family = "el"
    elif any(f" {name} " in family_ids for name in ("suse", "sles")):
        family = "sles"
    else:
        family = os_id
    version = fields.get("VERSION_ID", "")
    major = version if family == "ubuntu" else version.split(".")[0]
    return f"{family}-{major}-{machine}"


# ---------------------------------------------------------------- Puppet runs


class Puppet:
    """Runs Puppet on the primary as PE's own tooling does: no splay, waiting for a held lock."""

    def __init__(self, executable: str, settings: Settings, lock_timeout: float, poll: float) -> None:
        self.executable = executable
        self.settings = settings
        self.lock_timeout = lock_timeout
        self.poll = poll

    def run(self, why: str) -> None:
        self._refuse_if_disabled()
        deadline = time.monotonic() + self.lock_timeout
        waited = False
        while os.path.exists(self.settings.run_lockfile):
            if time.monotonic() > deadline:
                raise StepError(
                    f"another Puppet run on the primary held {self.settings.run_lockfile} "
                    f"for over {self.lock_timeout:.0f} s"
                )
            if not waited:
                say("waiting for the Puppet run in progress on the primary to finish")
                waited = True
            time.sleep(self.poll)
        self._refuse_if_disabled()
        say(f"running Puppet on the primary ({why})")
        argv = [
            self.executable,
            "agent",
            "--onetime",
            "--no-daemonize",
            "--no-splay",
            "--no-usecacheonfailure",
            "--detailed-exitcodes",
            "--verbose",
            "--color",
            "false",
        ]
        result = subprocess.run(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True
        )
        if result.returncode == 1 and os.path.exists(self.settings.run_lockfile):
            # Another run took the lock between the check and the start: wait for it, then run.
            return self.run(why)
        if result.returncode not in PUPPET_RUN_OK:
            raise StepError(
                f"the Puppet run on the primary failed (exit {result.returncode}): "
                + result.stdout.strip()[-400:]
            )
        return None

    def _refuse_if_disabled(self) -> None:
        path = self.settings.disabled_lockfile
        if not os.path.exists(path):
            return
        try:
            with open(path) as lock:
                reason = json.load(lock).get("disabled_message", "")
        except (OSError, ValueError):
            reason = ""
        raise StepError(
            "Puppet is disabled on the primary ({}); enable it with `puppet agent --enable` "
            "and run pe-lb again".format(reason or "no reason given")
        )


class CoalescedPrimaryRuns:
    """At most one primary Puppet run at a time, and none for a need an earlier-started run covers.

    Many compile masters joining at once each need the primary to run Puppet after their own
    first run. A run that *started* after a join's need arose covers that join, so joins that
    waited for the lock while it ran skip theirs: N joins cost one or two runs, not N.
    """

    def __init__(self, puppet: Puppet, state_dir: str) -> None:
        self.puppet = puppet
        os.makedirs(state_dir, exist_ok=True)
        self.lock_path = os.path.join(state_dir, "primary-run.lock")
        self.state_path = os.path.join(state_dir, "primary-run.json")

    def ensure_run_after(self, needed_since: float, why: str) -> bool:
        """Run Puppet unless a run started after ``needed_since`` (epoch seconds); True if it ran."""
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                last_start = self._last_start()
                if last_start > needed_since:
                    say(
                        "the primary's Puppet run started at {} covers {}: not running again".format(
                            time.strftime("%H:%M:%S", time.localtime(last_start)), why
                        )
                    )
                    return False
                started = time.time()
                self.puppet.run(why)
                self._save(started)
                return True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _last_start(self) -> float:
        try:
            with open(self.state_path) as state:
                return float(json.load(state)["last_start"])
        except (OSError, ValueError, KeyError):
            return 0.0

    def _save(self, started: float) -> None:
        temporary = self.state_path + ".tmp"
        with open(temporary, "w") as state:
            json.dump({"last_start": started}, state)
        os.replace(temporary, self.state_path)


# ---------------------------------------------------------------- PE-PostgreSQL allowlist


class PostgresAllowlist:
    """The pg_ident.conf maps that let a compiler's PuppetDB reach PE-PostgreSQL, as peadm writes them."""

    def __init__(self, data_glob: str, systemctl: str) -> None:
        found = sorted(glob.glob(data_glob), key=_version_key)
        self.path = found[-1] if found else None
        self.systemctl = systemctl

    def set(self, certname: str, allowed: bool) -> bool:
        """True if pg_ident.conf changed."""
        if self.path is None:
            say(
                f"PE-PostgreSQL is not on this primary: allow {certname} on your database host as PE's "
                "provision plan does (its next Puppet run there does it too)"
            )
            return False
        wanted = [f"{name} {certname} {user}" for name, user in POSTGRESQL_MAPS]
        with open(self.path) as ident:
            lines = ident.read().splitlines()
        if allowed:
            updated = lines + [line for line in wanted if line not in lines]
        else:
            updated = [line for line in lines if line not in wanted]
        if updated == lines:
            say("PE-PostgreSQL already {} {}".format("allows" if allowed else "does not allow", certname))
            return False
        with open(self.path, "w") as ident:
            ident.write("\n".join(updated) + "\n")
        run_checked([self.systemctl, "reload", "pe-postgresql.service"])
        say(
            "PE-PostgreSQL {} {} (pg_ident.conf, reloaded)".format(
                "allows" if allowed else "no longer allows", certname
            )
        )
        return True


def _version_key(path: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path))


# ---------------------------------------------------------------- waiting


def wait_for(what: str, check: Callable[[], Any], timeout: float, poll: float, on_timeout: str) -> Any:
    """Poll ``check`` until it returns something truthy; StepError ``on_timeout`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    announced = False
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise StepError(on_timeout)
        if not announced:
            say(f"waiting for {what} (up to {timeout:.0f} s)")
            announced = True
        time.sleep(poll)


# ---------------------------------------------------------------- actions


class Primary:
    """The services of the primary this script runs on."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.settings = Settings(args.puppet)
        host = self.settings.certname
        self.ca = Api(args.ca_url or f"https://{host}:{PUPPETSERVER_PORT}/puppet-ca/v1", self.settings)
        self.classifier = Classifier(
            Api(
                args.classifier_url or f"https://{host}:{CLASSIFIER_PORT}/classifier-api",
                self.settings,
            )
        )
        self.puppetdb = Api(
            args.puppetdb_url or f"https://{host}:{PUPPETDB_PORT}/pdb/query/v4", self.settings
        )
        self.puppet_runs = CoalescedPrimaryRuns(
            Puppet(args.puppet, self.settings, args.lock_timeout, args.poll_seconds), args.state_dir
        )
        self.postgres = PostgresAllowlist(args.postgresql_data_glob, args.systemctl)

    def platform(self) -> str:
        with open(self.args.os_release) as os_release:
            return platform_tag(os_release.read(), self.args.machine or platform.machine())


def read(primary: Primary) -> None:
    with open(primary.settings.localcacert) as ca:
        ca_bundle = ca.read()
    hiera = ""
    if os.path.exists(primary.args.hiera_yaml):
        with open(primary.args.hiera_yaml) as global_hiera:
            hiera = global_hiera.read()
    json.dump({"caCertificate": ca_bundle, "hieraYaml": hiera, "platform": primary.platform()}, sys.stdout)
    print()


def join(primary: Primary, certname: str) -> None:
    args = primary.args
    certname = certname.lower()
    pool_address = args.pool_address.lower()
    status = wait_for(
        f"the certificate request of {certname}",
        lambda: primary.ca.request("GET", "/certificate_status/" + certname),
        args.csr_timeout,
        args.poll_seconds,
        f"no certificate request from instance {args.instance_id} (certname {certname}) "
        f"within {args.csr_timeout:.0f} s; look at "
        "/var/log/cloud-init-output.log on the instance (pe-lb bootstrap)",
    )
    expected_platform = primary.platform()
    state = status.get("state")
    if state == "revoked":
        raise StepError(
            f"{certname} has a revoked certificate on the CA; purge it (puppet node purge {certname}) first"
        )
    if state == "requested":
        request = CertificateData(
            primary.ca.request("GET", "/certificate_request/" + certname, accept="text/plain")
        )
        problems = request.problems(certname, pool_address, expected_platform)
        if problems:
            raise StepError(
                "the certificate request of {} was not signed: {}".format(certname, "; ".join(problems))
            )
        say(
            "certificate request of {} verified: {}, alt names {}, pp_auth_role {}".format(
                certname, expected_platform, ", ".join(sorted(request.dns_names)), COMPILER_AUTH_ROLE
            )
        )
        # Before its PuppetDB first starts, as PE's provision plan and peadm do.
        primary.postgres.set(certname, True)
        # Before it is signed: its first Puppet run starts as soon as it is, and must already get
        # PE Infrastructure Agent's settings (the primary), never PE Agent's (the pool).
        primary.classifier.pin(PE_INFRASTRUCTURE_AGENT_GROUP, certname, True)
        primary.ca.request("PUT", "/certificate_status/" + certname, {"desired_state": "signed"})
        signed = CertificateData(primary.ca.request("GET", "/certificate/" + certname, accept="text/plain"))
        if signed.public_key != request.public_key or signed.problems(
            certname, pool_address, expected_platform
        ):
            # The request changed between the check and the signing: take the certificate back.
            primary.ca.request("PUT", "/certificate_status/" + certname, {"desired_state": "revoked"})
            raise StepError(f"the certificate signed for {certname} is not the request verified; revoked it")
        say(f"signed {certname}")
    else:
        signed = CertificateData(primary.ca.request("GET", "/certificate/" + certname, accept="text/plain"))
        problems = signed.problems(certname, pool_address, expected_platform)
        if problems:
            raise StepError(
                "{} already has a certificate pe-lb did not sign: {}".format(certname, "; ".join(problems))
            )
        say(f"{certname} is already signed and verified")
        primary.postgres.set(certname, True)
        primary.classifier.pin(PE_INFRASTRUCTURE_AGENT_GROUP, certname, True)

    first_run = wait_for(
        f"the first Puppet run of {certname} (it starts once its certificate is signed)",
        lambda: (primary.puppetdb.request("GET", "/nodes/" + certname) or {}).get("report_timestamp"),
        args.run_timeout,
        args.poll_seconds,
        f"{certname} (instance {args.instance_id}) reported no Puppet run "
        f"within {args.run_timeout:.0f} s; look at "
        "/var/log/cloud-init-output.log on the instance",
    )
    say(f"{certname} ran Puppet ({first_run})")
    # PE's order: the compiler, then the primary (its PuppetDB and PostgreSQL allowlists, services).
    primary.puppet_runs.ensure_run_after(_epoch(first_run), f"compile master {certname} joined")

    status_url = args.status_url.format(certname=certname, port=PUPPETSERVER_PORT)
    wait_for(
        f"{certname} to answer {status_url}",
        lambda: _status_ok(status_url, primary.settings.localcacert),
        args.status_timeout,
        args.poll_seconds,
        f"{certname} never answered 200 on {status_url} within {args.status_timeout:.0f} s; "
        "check puppetserver on it and that the primary "
        f"may reach it on {PUPPETSERVER_PORT} (primaryCidrs)",
    )
    say(f"{certname} joined the pool: {status_url} answers 200")


def _epoch(timestamp: str) -> float:
    """PuppetDB's ISO 8601 UTC timestamp (2026-11-25T08:40:47.123Z) as epoch seconds."""
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?", timestamp)
    if not match:
        return time.time()
    return calendar.timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")) + float(match.group(2) or 0)


def _status_ok(url: str, cafile: str) -> bool:
    try:
        context = ssl.create_default_context(cafile=cafile)
        with urllib.request.urlopen(url, context=context, timeout=10) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def leave(primary: Primary, certname: str) -> None:
    args = primary.args
    certname = certname.lower()
    if args.drain_seconds > 0:
        # The load balancer lets connections to a deregistered target run this long.
        say(f"waiting {args.drain_seconds:.0f} s for connections to {certname} to drain")
        time.sleep(args.drain_seconds)
    changed = False
    if primary.ca.request("GET", "/certificate_status/" + certname) is None:
        say(f"{certname} has no certificate on the CA: already purged")
    else:
        run_checked([args.puppet, "node", "purge", certname])
        say(f"purged {certname} (certificate revoked and cleaned, node deactivated in PuppetDB)")
        changed = True
    primary.classifier.pin(PE_INFRASTRUCTURE_AGENT_GROUP, certname, False)
    changed = primary.postgres.set(certname, False) or changed
    if changed:
        primary.puppet_runs.ensure_run_after(time.time(), f"compile master {certname} left")
    say(
        "the other compile masters fetch the new CRL on their next Puppet run (PE's runinterval, "
        f"30 min by default); {certname}'s key ends with its instance"
    )


def names_address(text: str, address: str) -> bool:
    """Whether an install.bash names ``address`` as its server (not as part of a longer name)."""
    return re.search(r"(?<![\w.-])" + re.escape(address) + r"(?![\w.-])", text, re.IGNORECASE) is not None


def installer_names(primary: Primary, host: str, address: str) -> bool:
    """Whether ``host`` serves an agent install script that names ``address``."""
    url = primary.args.package_url.format(host=host, port=PUPPETSERVER_PORT)
    try:
        context = ssl.create_default_context(cafile=primary.settings.localcacert)
        with urllib.request.urlopen(url, context=context, timeout=30) as response:
            return names_address(response.read().decode(errors="replace"), address)
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def pe_repo(primary: Primary, address: str, wanted: bool) -> None:
    """pe_repo::compile_master_pool_address in PE Master, then Puppet in PE's order, checked.

    PE: "Run Puppet on the compiler, and then on the primary server." A compiler's
    install.bash names the pool only after its own run with the new value; the primary's
    run then updates the console's install command. The script cannot start runs on the
    compile masters: it waits until each one's install script names the pool (their next
    scheduled run), then runs Puppet on the primary unless its own install script already
    names the pool.
    """
    classifier = primary.classifier
    group = classifier.group(PE_MASTER_GROUP)
    class_parameter = group.get("classes", {}).get(PE_REPO_CLASS, {}).get(PE_REPO_PARAMETER)
    current = group.get("config_data", {}).get(PE_REPO_CLASS, {}).get(PE_REPO_PARAMETER)
    if not wanted:
        if current != address:
            say(f"{PE_REPO_PARAMETER} is {current!r}, not {address!r}: left alone")
            return
        classifier.update(group["id"], {"config_data": {PE_REPO_CLASS: {PE_REPO_PARAMETER: None}}})
        say(f"{PE_REPO_PARAMETER} ({address}) removed from {PE_MASTER_GROUP!r}")
        primary.puppet_runs.ensure_run_after(time.time(), "pe_repo pool address removed")
        return
    if class_parameter is not None:
        raise StepError(
            f"{PE_MASTER_GROUP!r} sets the {PE_REPO_CLASS} class parameter {PE_REPO_PARAMETER} = "
            f"{class_parameter!r}, which overrides the configuration data pe-lb sets; remove it "
            f"(console: {PE_MASTER_GROUP} > Classes > {PE_REPO_CLASS}) and run pulumi up again"
        )
    if current == address:
        say(f"{PE_REPO_PARAMETER} is already {address} in {PE_MASTER_GROUP!r}: unchanged")
    else:
        classifier.update(group["id"], {"config_data": {PE_REPO_CLASS: {PE_REPO_PARAMETER: address}}})
        say(f"{PE_REPO_PARAMETER} changed from {current!r} to {address!r} in {PE_MASTER_GROUP!r}")
    args = primary.args
    for certname in args.compile_masters:
        wait_for(
            f"{certname}'s next Puppet run to serve an install script naming {address}",
            lambda certname=certname: installer_names(primary, certname, address),  # type: ignore[misc]
            args.run_timeout,
            args.poll_seconds,
            f"{certname} still serves an install script that does not name {address} after "
            f"{args.run_timeout:.0f} s; run Puppet on it (puppet agent -t, or Run Puppet in the console) "
            "and run pulumi up again",
        )
    if installer_names(primary, primary.settings.certname, address):
        say(f"every compile master and the primary hand out install scripts naming {address}")
        return
    primary.puppet_runs.ensure_run_after(time.time(), "pe_repo pool address")


AGENT_PROFILE = "puppet_enterprise::profile::agent"


def agent_settings(address: str) -> Dict[str, List[str]]:
    """PE Agent's settings that send agents (8140) and PXP agents (8142) to the pool."""
    return {
        "server_list": [f"{address}:{PUPPETSERVER_PORT}"],
        "primary_uris": [f"https://{address}:{PUPPETSERVER_PORT}"],
        "pcp_broker_list": [f"{address}:{PCP_BROKER_PORT}"],
    }


def agent(primary: Primary, address: str, wanted: bool) -> None:
    """Point PE Agent's puppet_enterprise::profile::agent at the pool, or take back exactly pe-lb's values.

    pe-lb remembers on the primary which values it set, so a new pool address replaces
    pe-lb's old one while a value someone else set is left alone, and said so.
    """
    classifier = primary.classifier
    group = classifier.group(PE_AGENT_GROUP)
    current = group.get("classes", {}).get(AGENT_PROFILE)
    if current is None:
        raise StepError(f"{PE_AGENT_GROUP!r} has no {AGENT_PROFILE} class; PE's default groups are needed")
    record_path = os.path.join(primary.args.state_dir, "pe-agent.json")
    ours = _load_json(record_path)
    delta = {}  # type: Dict[str, Any]
    for parameter, value in agent_settings(address).items():
        present = current.get(parameter)
        if wanted:
            if present == value:
                say(f"{parameter} is already {value} in {PE_AGENT_GROUP!r}")
            elif present in (None, []) or present == ours.get(parameter):
                delta[parameter] = value
                ours[parameter] = value
                say(f"{parameter}: {present!r} -> {value} in {PE_AGENT_GROUP!r}")
            else:
                say(f"{parameter} is {present!r}, set by someone else: left alone (agents keep using it)")
        elif present == value:
            delta[parameter] = None
            ours.pop(parameter, None)
            say(f"{parameter} {value} removed from {PE_AGENT_GROUP!r}")
        else:
            say(f"{parameter} is {present!r}, not pe-lb's {value}: left alone")
    if wanted:
        _warn_unless_infrastructure_pinned_to_primary(classifier)
    if not delta:
        return
    classifier.update(group["id"], {"classes": {AGENT_PROFILE: delta}})
    _save_json(record_path, ours)
    # PE: then Puppet on the primary, then on agents (their next runs pick it up).
    primary.puppet_runs.ensure_run_after(time.time(), "PE Agent pool settings")


def _warn_unless_infrastructure_pinned_to_primary(classifier: Classifier) -> None:
    infrastructure = (
        classifier.group(PE_INFRASTRUCTURE_AGENT_GROUP).get("classes", {}).get(AGENT_PROFILE) or {}
    )
    missing = [name for name in ("server_list", "pcp_broker_list") if not infrastructure.get(name)]
    if missing:
        say(
            f"warning: {PE_INFRASTRUCTURE_AGENT_GROUP!r} sets no {', '.join(missing)}: infrastructure nodes "
            f"(compile masters included) inherit PE Agent's pool settings and would connect through the "
            "pool to themselves; set them to the primary there"
        )


def _load_json(path: str) -> Dict[str, Any]:
    try:
        with open(path) as source:
            return dict(json.load(source))
    except (OSError, ValueError):
        return {}


def _save_json(path: str, data: Dict[str, Any]) -> None:
    temporary = path + ".tmp"
    with open(temporary, "w") as target:
        json.dump(data, target)
    os.replace(temporary, path)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument(
        "action",
        choices=("read", "join", "leave", "pe-repo-set", "pe-repo-unset", "agent-set", "agent-unset"),
    )
    parser.add_argument(
        "name", nargs="?", default="", help="certname (join, leave) or pool address (pe-repo-*)"
    )
    parser.add_argument("--pool-address", default="", help="join: the pool's DNS name, in the certificate")
    parser.add_argument(
        "--compile-masters",
        type=lambda value: [name for name in value.split(",") if name],
        default=[],
        help="pe-repo-set: certnames whose install scripts must name the pool (comma-separated)",
    )
    parser.add_argument("--package-url", default="https://{host}:{port}/packages/current/install.bash")
    parser.add_argument("--instance-id", default="", help="join: the EC2 instance, for messages")
    parser.add_argument(
        "--drain-seconds", type=float, default=0.0, help="leave: deregistration delay to wait out"
    )
    parser.add_argument("--csr-timeout", type=float, default=1800.0)
    parser.add_argument("--run-timeout", type=float, default=1800.0)
    parser.add_argument("--status-timeout", type=float, default=900.0)
    parser.add_argument("--lock-timeout", type=float, default=1800.0)
    parser.add_argument("--poll-seconds", type=float, default=10.0)
    parser.add_argument("--puppet", default=PUPPET)
    parser.add_argument("--systemctl", default="systemctl")
    parser.add_argument("--state-dir", default="/opt/puppetlabs/pe-lb")
    parser.add_argument(
        "--postgresql-data-glob", default="/opt/puppetlabs/server/data/postgresql/*/data/pg_ident.conf"
    )
    parser.add_argument("--hiera-yaml", default="/etc/puppetlabs/puppet/hiera.yaml")
    parser.add_argument("--os-release", default="/etc/os-release")
    parser.add_argument("--machine", default="", help="architecture; default: this host's")
    parser.add_argument("--status-url", default="https://{certname}:{port}/status/v1/simple")
    parser.add_argument("--ca-url", default="")
    parser.add_argument("--classifier-url", default="")
    parser.add_argument("--puppetdb-url", default="")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    if args.action != "read" and not args.name:
        print(
            "pe-lb: {} needs a {}".format(
                args.action, "certname" if args.action in ("join", "leave") else "pool address"
            ),
            file=sys.stderr,
        )
        return 2
    if args.action == "join" and not args.pool_address:
        print("pe-lb: join needs --pool-address", file=sys.stderr)
        return 2
    try:
        primary = Primary(args)
        if args.action == "read":
            read(primary)
        elif args.action == "join":
            join(primary, args.name)
        elif args.action == "leave":
            leave(primary, args.name)
        elif args.action.startswith("pe-repo-"):
            pe_repo(primary, args.name, args.action == "pe-repo-set")
        else:
            agent(primary, args.name, args.action == "agent-set")
    except StepError as failure:
        print(f"pe-lb {args.action}: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
