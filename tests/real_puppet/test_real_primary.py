"""The primary script against a real Puppet primary: what a real CA, PuppetDB and PostgreSQL do with it.

The primary is tests/real_puppet/primary.py's (open-source Puppet 7 from Debian 12 on 127.0.0.1).
Where a test relies on a STAND-IN for a PE-only piece, its name says so: `leave` purges through
the `puppet node purge` stand-in (deactivate + ca clean), the compile master is installed through
the install.bash stand-in, and its status is the primary puppetserver's. Every test ends on the
state of the CA, PuppetDB, PostgreSQL's pg_ident.conf and the classifier's pins.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import ssl
import subprocess
import sys
import urllib.request
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from components.pe import COMPILER_AUTH_ROLE, INSTANCE_IDENTITY_OID, PLATFORM_EXTENSION_OID
from tests.aws_identity import FakeAws
from tests.certs import (
    ECDSA_SHA256_OID,
    PP_CLI_AUTH_OID,
    der,
    der_items,
    der_oid,
    der_read,
    der_sequence,
    parse_request,
    puppet_request,
)
from tests.real_puppet.primary import (
    DEBIAN_PUPPETSERVER_CONF,
    POOL_ADDRESS,
    PRIMARY_CERTNAME,
    PUPPETSERVER_PORT,
    CompileMaster,
    Instance,
    RealPrimary,
    bootstrap_platform,
)
from tests.stub_primary import PP_AUTH_ROLE_OID

COMPILE_MASTER = Instance("i-0123456789abcdef0")


def compile_master_maps(certname: str) -> list[str]:
    """The pg_ident.conf maps peadm writes for a compiler's PuppetDB, as PostgreSQL parses them."""
    return [
        f"pe-puppetdb-pe-puppetdb-map {certname} pe-puppetdb",
        f"pe-puppetdb-pe-puppetdb-migrator-map {certname} pe-puppetdb-migrator",
        f"pe-puppetdb-pe-puppetdb-read-map {certname} pe-puppetdb-read",
    ]


def output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


# ---------------------------------------------------------------- join and leave, end to end


@dataclass
class Joined:
    compile_master: CompileMaster
    result: subprocess.CompletedProcess[str]
    first_run_exit: int
    reloads_before: int


@pytest.fixture(scope="module")
def joined(real_primary: RealPrimary, fake_aws: FakeAws) -> Joined:
    """A compile master bootstrapped (install.bash stand-in), its request out, its first run waiting; join."""
    compile_master = CompileMaster(real_primary, COMPILE_MASTER)
    instance = compile_master.instance
    compile_master.install(fake_aws.pkcs7(instance.instance_id, instance.region, instance.account_id))
    compile_master.submit_request()
    first_run = compile_master.start_first_run()
    reloads_before = real_primary.pg_reloads()
    result = real_primary.join(instance, fake_aws.certificate_path)
    try:
        first_run_exit = first_run.process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        first_run_exit = -1
    return Joined(compile_master, result, first_run_exit, reloads_before)


@pytest.fixture(scope="module")
def rejoined(
    real_primary: RealPrimary, fake_aws: FakeAws, joined: Joined
) -> subprocess.CompletedProcess[str]:
    return real_primary.join(joined.compile_master.instance, fake_aws.certificate_path)


@dataclass
class Left:
    result: subprocess.CompletedProcess[str]
    serials: list[int]
    reloads_before: int


@pytest.fixture(scope="module")
def left(real_primary: RealPrimary, rejoined: subprocess.CompletedProcess[str]) -> Left:
    certname = COMPILE_MASTER.certname
    serials = real_primary.signed_serials(certname)
    reloads_before = real_primary.pg_reloads()
    result = real_primary.run_script("leave", certname, options={"--drain-seconds": "0"})
    return Left(result, serials, reloads_before)


def test_join_with_the_install_bash_stand_in_signs_the_real_request_then_first_report_and_primary_run(
    real_primary: RealPrimary, joined: Joined
) -> None:
    certname = joined.compile_master.certname
    assert joined.result.returncode == 0, output(joined.result)
    assert f"certificate request of {certname} verified" in joined.result.stdout
    assert f"signed {certname}" in joined.result.stdout
    assert "running Puppet on the primary" in joined.result.stdout
    assert "answers 200" in joined.result.stdout
    # What the bootstrap asked install.bash for is what the CA signed.
    assert joined.compile_master.settings[0] == f"main:certname={certname}"
    status, answer = real_primary.ca_status(certname)
    assert status == 200, answer
    assert answer["state"] == "signed"
    assert sorted(answer["subject_alt_names"]) == sorted(
        f"DNS:{name}" for name in (certname, "puppet", POOL_ADDRESS)
    )
    assert answer["authorization_extensions"] == {"pp_auth_role": COMPILER_AUTH_ROLE}
    assert len(real_primary.signed_serials(certname)) == 1
    # The agent got that certificate and its first run reported to PuppetDB, before the primary's run.
    agent_certificate = joined.compile_master.confdir / "ssl" / "certs" / f"{certname}.pem"
    assert agent_certificate.read_text().strip() == (real_primary.ca_certificate(certname) or "").strip()
    assert joined.first_run_exit in (0, 2)
    node = real_primary.puppetdb_node(certname)
    assert node is not None and node["report_timestamp"] and node["deactivated"] is None
    primary_node = real_primary.puppetdb_node(PRIMARY_CERTNAME)
    assert primary_node is not None and primary_node["report_timestamp"] > node["report_timestamp"]
    # PostgreSQL reloaded and parses the maps the script wrote; the classifier pins the node.
    assert real_primary.pg_ident_maps(certname) == compile_master_maps(certname)
    assert real_primary.pg_ident_errors() == []
    assert real_primary.pg_reloads() > joined.reloads_before
    assert certname in real_primary.pinned()


def test_join_run_again_changes_nothing(
    real_primary: RealPrimary, joined: Joined, rejoined: subprocess.CompletedProcess[str]
) -> None:
    certname = joined.compile_master.certname
    reloads = real_primary.pg_reloads()
    assert rejoined.returncode == 0, output(rejoined)
    assert f"{certname} is already signed and verified" in rejoined.stdout
    assert f"PE-PostgreSQL already allows {certname}" in rejoined.stdout
    assert "running Puppet on the primary" not in rejoined.stdout
    assert len(real_primary.signed_serials(certname)) == 1
    assert real_primary.ca_status(certname)[1]["state"] == "signed"
    assert real_primary.pg_ident_maps(certname) == compile_master_maps(certname)
    assert real_primary.pg_ident_errors() == []
    assert real_primary.pg_reloads() == reloads
    assert real_primary.pinned().count(certname) == 1


def test_leave_with_the_purge_stand_in_cleans_the_certificate_deactivates_and_drops_the_node(
    real_primary: RealPrimary, left: Left
) -> None:
    certname = COMPILE_MASTER.certname
    assert left.result.returncode == 0, output(left.result)
    assert f"purged {certname}" in left.result.stdout
    assert real_primary.ca_status(certname)[0] == 404
    assert real_primary.ca_certificate(certname) is None
    assert len(left.serials) == 1 and left.serials[0] in real_primary.revoked_serials()
    node = real_primary.wait_for(
        f"PuppetDB deactivating {certname}",
        lambda: (real_primary.puppetdb_node(certname) or {}).get("deactivated"),
    )
    assert node
    assert real_primary.pg_ident_maps(certname) == []
    assert real_primary.pg_ident_errors() == []
    assert real_primary.pg_reloads() > left.reloads_before
    assert certname not in real_primary.pinned()


def test_leave_run_again_changes_nothing(real_primary: RealPrimary, left: Left) -> None:
    certname = COMPILE_MASTER.certname
    revoked = real_primary.revoked_serials()
    reloads = real_primary.pg_reloads()
    again = real_primary.run_script("leave", certname, options={"--drain-seconds": "0"})
    assert again.returncode == 0, output(again)
    assert f"{certname} has no certificate on the CA: already purged" in again.stdout
    assert f"PE-PostgreSQL already does not allow {certname}" in again.stdout
    assert "running Puppet on the primary" not in again.stdout
    assert real_primary.ca_status(certname)[0] == 404
    assert real_primary.revoked_serials() == revoked
    assert real_primary.pg_ident_maps(certname) == []
    assert real_primary.pg_ident_errors() == []
    assert real_primary.pg_reloads() == reloads
    assert certname not in real_primary.pinned()


# ---------------------------------------------------------------- read


def python_3_6() -> str | None:
    """A Python 3.6 (the oldest a primary may have), on PATH or in pyenv."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [shutil.which("python3.6"), *map(str, sorted(pyenv.glob("versions/3.6*/bin/python3.6")))]
    for candidate in candidates:
        if (
            candidate
            and subprocess.run([candidate, "--version"], capture_output=True, check=False).returncode == 0
        ):
            return candidate
    return None


LOCALE_VARIABLES = ("LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "PYTHONIOENCODING", "PYTHONUTF8")


def test_read_under_python_3_6_without_a_locale_prints_the_real_ca_and_a_non_ascii_hiera_yaml(
    real_primary: RealPrimary,
) -> None:
    python = python_3_6()
    if python is None:
        warnings.warn("no Python 3.6 found (PATH, pyenv): read ran under this Python instead", stacklevel=1)
        python = sys.executable
    hiera = "---\nversion: 5\n# Hiérarchie de Zürich: données communes\nhierarchy:\n  - name: common\n"
    real_primary.hiera_yaml.write_text(hiera, encoding="utf-8")
    environment = {name: value for name, value in os.environ.items() if name not in LOCALE_VARIABLES}
    result = real_primary.run_script("read", python=python, env=environment)
    assert result.returncode == 0, output(result)
    answer = json.loads(result.stdout)
    assert answer["hieraYaml"] == hiera
    assert answer["caCertificate"] == real_primary.localcacert.read_text()
    assert answer["platform"] == bootstrap_platform()
    # The CA it printed is the one that verifies the primary's puppetserver.
    context = ssl.create_default_context(cadata=answer["caCertificate"])
    with urllib.request.urlopen(
        f"https://127.0.0.1:{PUPPETSERVER_PORT}/status/v1/simple", context=context, timeout=30
    ) as response:
        assert response.status == 200


# ---------------------------------------------------------------- hostile requests


_instance_numbers = itertools.count(1)


@pytest.fixture
def hostile(real_primary: RealPrimary) -> Iterator[Instance]:
    """An instance of its own for one hostile request; its pending request is taken away afterwards."""
    instance = Instance(f"i-0badc0de{next(_instance_numbers):09x}")
    yield instance
    real_primary.discard_request(instance.certname)


def compile_master_request(
    instance: Instance,
    identity: str | None,
    *,
    extensions: Mapping[str, str] | None = None,
    alt_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    duplicate_extension: tuple[str, str] | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    """A compile master's request as the bootstrap makes it, changed as a test says."""
    return puppet_request(
        instance.certname,
        [instance.certname, "puppet", POOL_ADDRESS, *alt_names],
        {
            PP_AUTH_ROLE_OID: COMPILER_AUTH_ROLE,
            PLATFORM_EXTENSION_OID: bootstrap_platform(),
            **(extensions or {}),
        },
        ip_addresses=ip_addresses,
        duplicate_extension=duplicate_extension,
        custom_attributes=None if identity is None else {INSTANCE_IDENTITY_OID: identity},
        key=key,
    )


def _request_info(pem: bytes) -> list[tuple[int, bytes, bytes]]:
    """The parts of a CSR's certificationRequestInfo: version, subject, key, [0] attributes."""
    data = base64.b64decode(b"".join(line for line in pem.splitlines() if not line.startswith(b"-----")))
    _, request, _ = der_read(data)
    _, info, _ = der_read(der_items(request)[0][2])
    return der_items(info)


def with_second_extension_request(instance: Instance, identity: str) -> bytes:
    """A valid request plus a second extReq attribute that names an extra DNS alt name."""
    key = ec.generate_private_key(ec.SECP256R1())
    version, subject, public_key, attributes = _request_info(
        compile_master_request(instance, identity, key=key)
    )
    extra = puppet_request(
        instance.certname, [instance.certname, "puppet", POOL_ADDRESS, "evil.example.com"], {}
    )
    second = _request_info(extra)[3][1]  # its only attribute: the extension request
    info = der_sequence(version[2], subject[2], public_key[2], der(0xA0, attributes[1] + second))
    signature = key.sign(info, ec.ECDSA(hashes.SHA256()))
    request = der_sequence(info, der_sequence(der_oid(ECDSA_SHA256_OID)), der(0x03, b"\x00" + signature))
    text = base64.b64encode(request).decode()
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    pem = "\n".join(["-----BEGIN CERTIFICATE REQUEST-----", *lines, "-----END CERTIFICATE REQUEST-----", ""])
    assert len(parse_request(pem.encode()).extension_requests) == 2
    return pem.encode()


HostileRequest = Callable[[Instance, FakeAws], bytes]


def _identity(instance: Instance, aws: FakeAws) -> str:
    return aws.pkcs7(instance.instance_id, instance.region, instance.account_id)


HOSTILE_REQUESTS: dict[str, HostileRequest] = {
    "pp_cli_auth": lambda instance, aws: compile_master_request(
        instance, _identity(instance, aws), extensions={PP_CLI_AUTH_OID: "true"}
    ),
    "two extension requests, the second with an extra alt name": lambda instance, aws: (
        with_second_extension_request(instance, _identity(instance, aws))
    ),
    "a duplicate extension": lambda instance, aws: compile_master_request(
        instance, _identity(instance, aws), duplicate_extension=(PP_AUTH_ROLE_OID, COMPILER_AUTH_ROLE)
    ),
    "an IP alt name": lambda instance, aws: compile_master_request(
        instance, _identity(instance, aws), ip_addresses=["10.0.1.23"]
    ),
    "no identity attribute": lambda instance, aws: compile_master_request(instance, None),
    "another instance's identity document": lambda instance, aws: compile_master_request(
        instance, aws.pkcs7("i-0fedcba9876543210", instance.region, instance.account_id)
    ),
}


REFUSED_BECAUSE = {
    "pp_cli_auth": "it asks for the extension pp_cli_auth, which a compile master never needs",
    "two extension requests, the second with an extra alt name": "it has 2 extension requests",
    "a duplicate extension": "it asks for the extension pp_auth_role more than once",
    "an IP alt name": "it asks for alt names that are not DNS names: IP address 10.0.1.23",
    "no identity attribute": "it carries no instance identity document",
    "another instance's identity document": "its identity document names instanceId 'i-0fedcba9876543210'",
}
"""What the script names as the reason for each hostile request: found in the real CA's answers."""


def assert_nothing_done(
    primary: RealPrimary, certname: str, revoked_before: set[int], reloads_before: int
) -> None:
    """Nothing signed (not even signed then revoked), no pin, no pg_ident.conf line, no PuppetDB node."""
    assert primary.ca_certificate(certname) is None
    assert primary.signed_serials(certname) == []
    assert primary.revoked_serials() == revoked_before
    assert certname not in primary.pinned()
    assert primary.pg_ident_maps(certname) == []
    assert primary.pg_ident_errors() == []
    assert primary.pg_reloads() == reloads_before
    assert primary.puppetdb_node(certname) is None


@pytest.mark.parametrize("shape", list(HOSTILE_REQUESTS))
def test_a_hostile_request_the_real_ca_holds_is_refused_before_anything_changes(
    real_primary: RealPrimary, fake_aws: FakeAws, hostile: Instance, shape: str
) -> None:
    revoked_before = real_primary.revoked_serials()
    reloads_before = real_primary.pg_reloads()
    submitted = real_primary.submit_request(hostile.certname, HOSTILE_REQUESTS[shape](hostile, fake_aws))
    assert submitted[0] == 200, (
        f"the CA did not take the request, so the script is not what refuses it: {submitted}"
    )
    result = real_primary.join(hostile, fake_aws.certificate_path, **{"--csr-timeout": "10"})
    assert result.returncode == 1, output(result)
    assert len(result.stderr.strip().splitlines()) == 1, output(result)
    assert f"the certificate request of {hostile.certname} was refused, nothing was changed" in result.stderr
    assert REFUSED_BECAUSE[shape] in result.stderr, output(result)
    assert_nothing_done(real_primary, hostile.certname, revoked_before, reloads_before)
    # The join command's delete (the instance replaced or gone): nothing was signed, so the leave
    # removes the unsigned request through the real CA's API, where `ca clean` would refuse it.
    left = real_primary.run_script("leave", hostile.certname)
    assert left.returncode == 0, output(left)
    assert f"{hostile.certname} had only an unsigned request" in left.stdout, output(left)
    assert real_primary.ca_status(hostile.certname)[0] == 404
    assert_nothing_done(real_primary, hostile.certname, revoked_before, reloads_before)


def test_a_ca_conf_without_the_compiler_settings_refuses_before_anything_changes(
    real_primary: RealPrimary, fake_aws: FakeAws, hostile: Instance, tmp_path: Path
) -> None:
    """Debian's own ca.conf (what a CA has by default), given as --ca-conf: no second puppetserver start."""
    default_ca_conf = tmp_path / "ca.conf"
    shutil.copy(DEBIAN_PUPPETSERVER_CONF / "conf.d" / "ca.conf", default_ca_conf)
    revoked_before = real_primary.revoked_serials()
    reloads_before = real_primary.pg_reloads()
    submitted = real_primary.submit_request(
        hostile.certname, compile_master_request(hostile, _identity(hostile, fake_aws))
    )
    assert submitted[0] == 200, submitted
    result = real_primary.join(hostile, fake_aws.certificate_path, **{"--ca-conf": str(default_ca_conf)})
    assert result.returncode == 1, output(result)
    assert "allow-subject-alt-names" in result.stderr and "allow-authorization-extensions" in result.stderr
    assert real_primary.ca_status(hostile.certname)[1]["state"] == "requested"
    assert_nothing_done(real_primary, hostile.certname, revoked_before, reloads_before)
