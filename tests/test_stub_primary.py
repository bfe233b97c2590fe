"""The stub primary (tests/stub_primary.py) answers as a real Puppet 7 server does.

The expectations come from /work/shared/reference/real-puppet.md (measured) and puppetserver
7.9.5's source. They are data checked over HTTPS by one function (`check`) through a `Tier`: a
server's address, its CA certificate, a client certificate carrying pp_cli_auth (the CA host's own)
and one without (an agent's). Built from a real server instead of the stub, the same tables and
HTTP-only tests run against the real tier; the tests that take `primary` arrange what only the stub
can (ca.conf with a restart, the puppet CLI, PuppetDB).
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from tests.certs import (
    PP_CLI_AUTH_OID,
    Extension,
    der_text,
    der_utf8,
    fingerprint,
    parse_request,
    puppet_request,
)
from tests.stub_primary import (
    PLATFORM,
    PLATFORM_OID,
    POOL,
    PP_AUTH_ROLE_OID,
    RequestRefusedError,
    StubPrimary,
    has_cli_auth,
    read_ca_conf,
    stub_primary,
)

CA = "/puppet-ca/v1"
JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain"
PP_UUID_OID = "1.3.6.1.4.1.34380.1.1.1"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


# ---- a tier: where the server is and who calls it


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Expect:
    status: int
    content_type: str | None = None
    """A prefix of the Content-Type, compared without case."""
    body: str | None = None
    """The whole body (stripped)."""
    contains: str | None = None


def check(answer: Answer, expected: Expect, what: str = "") -> None:
    """The one comparison every table goes through."""
    shown = f"{what}: {answer}"
    assert answer.status == expected.status, shown
    if expected.content_type is not None:
        assert answer.content_type.lower().startswith(expected.content_type.lower()), shown
    if expected.body is not None:
        assert answer.body.strip() == expected.body, shown
    if expected.contains is not None:
        assert expected.contains in answer.body, shown


@dataclass
class Tier:
    host: str
    port: int
    cacert: Path
    cli_auth: tuple[Path, Path]
    """A certificate and key with pp_cli_auth: the CA host's own."""
    agent: tuple[Path, Path]
    """A certificate and key the CA signed without pp_cli_auth."""

    def call(
        self,
        method: str,
        path: str,
        body: bytes | str | dict[str, Any] | None = None,
        *,
        client: str | None = "cli_auth",
        content_type: str | None = "auto",
        accept: str | None = None,
    ) -> Answer:
        """One HTTPS request as http.client sends it (no header added unless given)."""
        context = ssl.create_default_context(cafile=str(self.cacert))
        if client is not None:
            cert, key = getattr(self, client)
            context.load_cert_chain(cert, key)
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        data = data.encode() if isinstance(data, str) else data
        headers = {}
        if content_type == "auto":
            content_type = JSON_TYPE if isinstance(body, dict) else None
        if content_type is not None:
            headers["Content-Type"] = content_type
        if accept is not None:
            headers["Accept"] = accept
        connection = http.client.HTTPSConnection(self.host, self.port, context=context, timeout=30)
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            return Answer(
                response.status,
                response.getheader("Content-Type") or "",
                response.read().decode(errors="replace"),
            )
        finally:
            connection.close()

    # what an agent and an operator do, over the API

    def submit(self, certname: str, pem: bytes) -> Answer:
        """`puppet ssl submit_request`: anonymous, text/plain."""
        path = f"{CA}/certificate_request/{certname}"
        return self.call("PUT", path, pem, client=None, content_type=TEXT_TYPE)

    def set_state(self, certname: str, state: str) -> Answer:
        return self.call("PUT", f"{CA}/certificate_status/{certname}", {"desired_state": state})

    def status(self, certname: str) -> Answer:
        return self.call("GET", f"{CA}/certificate_status/{certname}")

    def certificate(self, certname: str) -> x509.Certificate:
        answer = self.call("GET", f"{CA}/certificate/{certname}", client=None)
        check(answer, Expect(200, TEXT_TYPE), "certificate")
        return x509.load_pem_x509_certificate(answer.body.encode())


def fresh(prefix: str = "node") -> str:
    """A certname no earlier run used (a real CA keeps them)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}.example.com"


def compiler_request(certname: str, **shape: Any) -> bytes:
    """A compile master's CSR: alt names certname, puppet, the pool; pp_auth_role; platform."""
    extensions = shape.pop("extensions", {PP_AUTH_ROLE_OID: "pe_compiler", PLATFORM_OID: PLATFORM})
    names = shape.pop("dns_names", [certname, "puppet", POOL])
    return puppet_request(certname, names, extensions, **shape)


@pytest.fixture
def primary(tmp_path: Path) -> Iterator[StubPrimary]:
    with stub_primary(tmp_path / "primary") as stub:
        yield stub


@pytest.fixture
def tier(primary: StubPrimary, tmp_path: Path) -> Tier:
    agent = primary.ca.issue("agent.example.com", ["agent.example.com"])
    agent.write(tmp_path / "agent.pem", tmp_path / "agent.key")
    return Tier(
        host="127.0.0.1",
        port=primary.port,
        cacert=primary.root / "ssl" / "certs" / "ca.pem",
        cli_auth=(primary.hostcert, primary.hostprivkey),
        agent=(tmp_path / "agent.pem", tmp_path / "agent.key"),
    )


# ---- certificate_status wants pp_cli_auth; certificate and certificate_request do not

AUTHORIZATION = [
    # (client, method, path, body, expected)
    ("cli_auth", "GET", "certificate_status/{pending}", None, Expect(200, JSON_TYPE)),
    ("agent", "GET", "certificate_status/{pending}", None, Expect(403)),
    (None, "GET", "certificate_status/{pending}", None, Expect(403)),
    ("agent", "PUT", "certificate_status/{pending}", {"desired_state": "signed"}, Expect(403)),
    (None, "PUT", "certificate_status/{pending}", {"desired_state": "signed"}, Expect(403)),
    ("agent", "GET", "certificate_statuses/all", None, Expect(403)),
    ("cli_auth", "GET", "certificate_statuses/all", None, Expect(200, JSON_TYPE)),
    (None, "GET", "certificate_request/{pending}", None, Expect(200, TEXT_TYPE, contains="REQUEST-----")),
    ("agent", "GET", "certificate_request/{pending}", None, Expect(200, TEXT_TYPE)),
    (None, "GET", "certificate/{signed}", None, Expect(200, TEXT_TYPE, contains="BEGIN CERTIFICATE")),
    ("agent", "GET", "certificate/{signed}", None, Expect(200, TEXT_TYPE)),
]


def test_certificate_status_wants_a_client_certificate_with_pp_cli_auth(tier: Tier) -> None:
    pending, signed = fresh("pending"), fresh("signed")
    for name in (pending, signed):
        check(tier.submit(name, compiler_request(name)), Expect(200), "submit")
    check(tier.set_state(signed, "signed"), Expect(204), "sign")
    for client, method, path, body, expected in AUTHORIZATION:
        url = f"{CA}/" + path.format(pending=pending, signed=signed)
        answer = tier.call(method, url, body, client=client)
        check(answer, expected, f"{client} {method} {path}")
    check(tier.status(pending), Expect(200, JSON_TYPE), "the 403s changed nothing")
    assert tier.status(pending).json()["state"] == "requested"


def test_the_ca_hosts_certificate_carries_pp_cli_auth_and_an_agents_does_not(
    primary: StubPrimary, tier: Tier
) -> None:
    host = x509.load_pem_x509_certificate(primary.hostcert.read_bytes())
    extension = host.extensions.get_extension_for_oid(x509.ObjectIdentifier(PP_CLI_AUTH_OID))
    assert isinstance(extension.value, x509.UnrecognizedExtension)
    assert der_text(extension.value.value) == "true"
    assert has_cli_auth(host.public_bytes(serialization.Encoding.DER))
    agent = x509.load_pem_x509_certificate(tier.agent[0].read_bytes())
    assert not has_cli_auth(agent.public_bytes(serialization.Encoding.DER))


# ---- PUT certificate_status: its content type

PUT_CONTENT_TYPES = [
    ("text/plain", Expect(415)),
    ("application/x-www-form-urlencoded", Expect(415)),  # what urllib and curl -d send by default
    ("application/json", Expect(204, TEXT_TYPE, body="")),
    ("application/json; charset=utf-8", Expect(204, TEXT_TYPE, body="")),
    # puppetserver's content-type-valid? takes a request with no Content-Type at all
    (None, Expect(204, TEXT_TYPE, body="")),
]


@pytest.mark.parametrize(("content_type", "expected"), PUT_CONTENT_TYPES)
def test_a_put_to_certificate_status_wants_json(
    tier: Tier, content_type: str | None, expected: Expect
) -> None:
    name = fresh()
    check(tier.submit(name, compiler_request(name)), Expect(200), "submit")
    body = json.dumps({"desired_state": "signed"})
    answer = tier.call("PUT", f"{CA}/certificate_status/{name}", body, content_type=content_type)
    check(answer, expected, f"PUT as {content_type}")
    assert tier.status(name).json()["state"] == ("signed" if expected.status == 204 else "requested")


# ---- a certname's life on the CA: status codes, content types, messages

NO_CERTIFICATE = "Cannot revoke certificate for host {name} without a signed certificate"
NO_REQUEST = "Cannot sign certificate for host {name} without a certificate request"
LIFECYCLE = [
    # (step, expected); "submit" PUTs a compile master's CSR, anonymously
    ("GET status", Expect(404, JSON_TYPE, body="Resource not found.")),
    ("GET request", Expect(404, TEXT_TYPE)),
    ("PUT signed", Expect(404, TEXT_TYPE)),
    ("submit", Expect(200)),
    ("submit", Expect(400, body="{name} already has a requested certificate; ignoring certificate request")),
    ("GET status", Expect(200, JSON_TYPE, contains='"state": "requested"')),
    ("PUT revoked", Expect(409, body=NO_CERTIFICATE)),
    ("PUT signed", Expect(204, TEXT_TYPE, body="")),
    ("PUT signed", Expect(409, body=NO_REQUEST)),
    ("submit", Expect(400, body="{name} already has a signed certificate; ignoring certificate request")),
    ("GET status", Expect(200, JSON_TYPE, contains='"state": "signed"')),
    ("PUT revoked", Expect(204, TEXT_TYPE, body="")),
    ("PUT revoked", Expect(204, TEXT_TYPE, body="")),
    ("GET status", Expect(200, JSON_TYPE, contains='"state": "revoked"')),
    ("PUT signed", Expect(409, body=NO_REQUEST)),
]


def test_a_certnames_life_on_the_ca(tier: Tier) -> None:
    name = fresh()
    pem = compiler_request(name)
    for index, (step, expected) in enumerate(LIFECYCLE):
        if step == "submit":
            answer = tier.submit(name, pem)
        elif step == "GET status":
            answer = tier.status(name)
        elif step == "GET request":
            answer = tier.call("GET", f"{CA}/certificate_request/{name}", client=None)
        else:
            answer = tier.set_state(name, step.removeprefix("PUT "))
        formatted = Expect(
            expected.status,
            expected.content_type,
            None if expected.body is None else expected.body.format(name=name),
            expected.contains,
        )
        check(answer, formatted, f"step {index} {step}")


STATUS_KEYS = {
    "name",
    "state",
    "subject_alt_names",
    "authorization_extensions",
    "dns_alt_names",
    "fingerprint",
}


def test_a_status_carries_alt_names_authorization_extensions_and_fingerprint(tier: Tier) -> None:
    name = fresh()
    check(tier.submit(name, compiler_request(name, ip_addresses=["10.0.0.7"])), Expect(200), "submit")
    requested = tier.status(name).json()
    assert set(requested) >= STATUS_KEYS
    assert requested["name"] == name and requested["state"] == "requested"
    assert requested["subject_alt_names"][0] == "IP:10.0.0.7", "IP names first"
    assert {f"DNS:{name}", "DNS:puppet", f"DNS:{POOL}"} <= set(requested["subject_alt_names"])
    assert set(requested["dns_alt_names"]) == {f"DNS:{name}", "DNS:puppet", f"DNS:{POOL}"}
    assert requested["authorization_extensions"] == {"pp_auth_role": "pe_compiler"}
    assert re.fullmatch(r"([0-9A-F]{2}:){31}[0-9A-F]{2}", requested["fingerprint"])
    check(tier.set_state(name, "signed"), Expect(204), "sign")
    signed = tier.status(name).json()
    assert set(signed) >= STATUS_KEYS and signed["state"] == "signed"
    assert signed["authorization_extensions"] == {"pp_auth_role": "pe_compiler"}
    certificate = tier.certificate(name)
    assert signed["fingerprint"] == fingerprint(certificate.public_bytes(serialization.Encoding.DER))
    assert signed["serial_number"] == certificate.serial_number


# ---- what the CA signs: its own subject and alt name, the FIRST extension request


def test_the_ca_signs_its_subject_and_the_first_extension_request(tier: Tier) -> None:
    name = fresh()
    pem = compiler_request(
        name,
        dns_names=["puppet", POOL],  # no certname: the CA adds it
        subject_extra=[("2.5.4.10", "Someone Else")],  # O=: the CA keeps the certname alone
        second_extension_request={PP_AUTH_ROLE_OID: "pe_postgres"},
    )
    check(tier.submit(name, pem), Expect(200), "submit")
    assert tier.status(name).json()["authorization_extensions"] == {"pp_auth_role": "pe_compiler"}
    stored = parse_request(tier.call("GET", f"{CA}/certificate_request/{name}", client=None).body.encode())
    assert stored.public_key_der == parse_request(pem).public_key_der, "re-encoded, but the same key"
    check(tier.set_state(name, "signed"), Expect(204), "sign")
    certificate = tier.certificate(name)
    assert certificate.subject.rfc4514_string() == f"CN={name}"
    alt_names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(alt_names.get_values_for_type(x509.DNSName)) == {name, "puppet", POOL}
    role = certificate.extensions.get_extension_for_oid(x509.ObjectIdentifier(PP_AUTH_ROLE_OID)).value
    assert isinstance(role, x509.UnrecognizedExtension) and der_text(role.value) == "pe_compiler"
    assert (
        certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == parse_request(pem).public_key_der
    )


def test_a_repeated_extension_is_stored_then_breaks_certificate_status(tier: Tier) -> None:
    name = fresh()
    pem = compiler_request(name, duplicate_extension=(PP_AUTH_ROLE_OID, "pe_compiler"))
    check(tier.submit(name, pem), Expect(200), "submit: accepted")
    stored = tier.call("GET", f"{CA}/certificate_request/{name}", client=None)
    check(stored, Expect(200, TEXT_TYPE), "certificate_request")
    check(tier.status(name), Expect(500), "GET certificate_status")
    check(tier.set_state(name, "signed"), Expect(500), "PUT certificate_status")
    check(tier.call("GET", f"{CA}/certificate_statuses/all"), Expect(500), "ca list --all")


# ---- ca.conf and the permitted extensions (stub: a restart is write_ca_conf)

SAN_MESSAGE = (
    "CSR '{name}' contains extra subject alternative names (DNS:puppet, DNS:pool.example.com), which are "
    "disallowed. To allow subject alternative names, set allow-subject-alt-names to true in your ca.conf "
    "file. Then restart the puppetserver and try signing this certificate again."
)
AUTH_MESSAGE = (
    "CSR '{name}' contains an authorization extension, which is disallowed. To allow authorization "
    "extensions, set allow-authorization-extensions to true in your ca.conf file. Then restart the "
    "puppetserver and try signing this certificate again."
)
COMPILER = {PP_AUTH_ROLE_OID: "pe_compiler", PLATFORM_OID: PLATFORM}
SIGNING = [
    # (ca.conf settings, CSR shape, expected answer to PUT signed)
    ({"allow_subject_alt_names": None}, {}, Expect(409, body=SAN_MESSAGE)),
    ({"allow_subject_alt_names": False}, {}, Expect(409, body=SAN_MESSAGE)),
    ({"allow_authorization_extensions": None}, {}, Expect(409, body=AUTH_MESSAGE)),
    ({"allow_authorization_extensions": False}, {}, Expect(409, body=AUTH_MESSAGE)),
    (
        {},
        {"extensions": {**COMPILER, PP_CLI_AUTH_OID: "true"}},
        Expect(409, body=f"Found extensions that are not permitted: {PP_CLI_AUTH_OID}"),
    ),
    (
        {},
        {"raw_extensions": [Extension("1.2.3.4", der_utf8("x")), Extension("2.5.29.19", b"\x30\x00")]},
        Expect(409, body="Found extensions that are not permitted: 1.2.3.4, 2.5.29.19"),
    ),
    # the authorization extension check comes before the permitted extensions
    (
        {"allow_authorization_extensions": None},
        {"extensions": {PP_CLI_AUTH_OID: "true"}},
        Expect(409, body=AUTH_MESSAGE),
    ),
    # allowed: an alt name equal to the subject alone; Puppet's registered and private arcs
    (
        {"allow_subject_alt_names": None, "allow_authorization_extensions": None},
        {"dns_names": ["{name}"], "extensions": {PLATFORM_OID: PLATFORM, PP_UUID_OID: "x"}},
        Expect(204),
    ),
    ({}, {}, Expect(204)),
]


@pytest.mark.parametrize(("settings", "shape", "expected"), SIGNING)
def test_ca_conf_and_the_permitted_extensions_decide_signing(
    primary: StubPrimary, tier: Tier, settings: dict[str, Any], shape: dict[str, Any], expected: Expect
) -> None:
    primary.write_ca_conf(**settings)
    name = fresh()
    if "dns_names" in shape:
        shape = {**shape, "dns_names": [alt.format(name=name) for alt in shape["dns_names"]]}
    check(tier.submit(name, compiler_request(name, **shape)), Expect(200), "submit")
    body = None if expected.body is None else expected.body.format(name=name)
    formatted = Expect(expected.status, body=body)
    check(tier.set_state(name, "signed"), formatted, "sign")
    if expected.status == 409:
        assert tier.status(name).json()["state"] == "requested", "a refused request stays pending"


def test_the_default_ca_conf_allows_alt_names_and_authorization_extensions(primary: StubPrimary) -> None:
    text = primary.ca_conf.read_text()
    assert "certificate-authority: {" in text
    assert re.search(r"^\s*allow-subject-alt-names: true$", text, re.M)
    assert re.search(r"^\s*allow-authorization-extensions: true$", text, re.M)
    assert read_ca_conf(text) == {"allow-subject-alt-names": True, "allow-authorization-extensions": True}
    assert read_ca_conf("certificate-authority.allow-subject-alt-names = true\n") == {
        "allow-subject-alt-names": True
    }
    assert read_ca_conf("# allow-subject-alt-names: true\ncertificate-authority: {}\n") == {}


def test_ca_conf_takes_effect_on_a_restart(primary: StubPrimary, tier: Tier) -> None:
    primary.write_ca_conf(allow_subject_alt_names=False, restart=False)
    name = fresh()
    check(tier.submit(name, compiler_request(name)), Expect(200), "submit")
    check(tier.set_state(name, "signed"), Expect(204), "the running CA read the old file")
    primary.restart_ca()
    other = fresh()
    check(tier.submit(other, compiler_request(other)), Expect(200), "submit")
    check(tier.set_state(other, "signed"), Expect(409), "after the restart")


def test_request_certificate_submits_the_shapes_a_test_asks_for(primary: StubPrimary, tier: Tier) -> None:
    name = fresh()
    pem = primary.request_certificate(
        name,
        ip_alt_name="10.1.2.3",
        extra_extensions={PP_UUID_OID: "u"},
        second_extension_request={PP_AUTH_ROLE_OID: "pe_postgres"},
        custom_attributes={"1.3.6.1.4.1.34380.1.2.6099.2": "abc+/="},
    )
    parsed = parse_request(pem)
    assert parsed.signature_valid and parsed.subject_cn == name
    assert parsed.attributes[0] == ("1.3.6.1.4.1.34380.1.2.6099.2", [b"\x13\x06abc+/="])
    assert len(parsed.extension_requests) == 2
    assert tier.status(name).json()["subject_alt_names"][0] == "IP:10.1.2.3"
    with pytest.raises(RequestRefusedError, match="already has a requested certificate"):
        primary.request_certificate(name)
    with pytest.raises(RequestRefusedError, match=r'Instance name "other\.example\.com" does not match'):
        primary.request_certificate(fresh(), common_name="other.example.com")
    duplicate = fresh()
    primary.request_certificate(duplicate, duplicate_extension=True)
    check(tier.status(duplicate), Expect(500), "repeated pp_auth_role")


# ---- PuppetDB, status, the puppet CLI


def test_a_purged_node_still_answers_in_puppetdb_deactivated(primary: StubPrimary, tier: Tier) -> None:
    name = fresh()
    primary.request_certificate(name)
    check(tier.set_state(name, "signed"), Expect(204), "sign")
    before = tier.call("GET", f"/pdb/query/v4/nodes/{name}")
    check(before, Expect(200, JSON_TYPE), "PuppetDB before")
    assert before.json()["deactivated"] is None and before.json()["report_timestamp"]
    purge = subprocess.run(
        [str(primary.root / "bin" / "puppet"), "node", "purge", name], capture_output=True, text=True
    )
    assert purge.returncode == 0, purge.stderr
    after = tier.call("GET", f"/pdb/query/v4/nodes/{name}")
    check(after, Expect(200, JSON_TYPE), "PuppetDB after the purge")
    assert after.json()["report_timestamp"] == before.json()["report_timestamp"]
    assert after.json()["deactivated"]
    check(tier.status(name), Expect(404, JSON_TYPE, body="Resource not found."), "the CA after the purge")
    assert primary.signed == set()
    # Signed again, the node keeps its deactivated record (and old report) until it reports anew.
    primary.report_delay = 3600
    primary.request_certificate(name)
    check(tier.set_state(name, "signed"), Expect(204), "sign again")
    again = tier.call("GET", f"/pdb/query/v4/nodes/{name}").json()
    assert again["report_timestamp"] == before.json()["report_timestamp"] and again["deactivated"]


STATUS = [
    # (PE's PCP broker, path, expected): anonymous, as the load balancer's health check asks
    (True, "/status/v1/simple", Expect(200, "text/plain;charset=utf-8", body="running")),
    (True, "/status/v1/simple/server", Expect(200, "text/plain;charset=utf-8", body="running")),
    (True, "/status/v1/simple/master", Expect(200, "text/plain;charset=utf-8", body="running")),
    (True, "/status/v1/simple/ca", Expect(200, "text/plain;charset=utf-8", body="running")),
    (True, "/status/v1/simple/broker-service", Expect(200, body="running")),
    (False, "/status/v1/simple", Expect(200, "text/plain;charset=utf-8", body="running")),
    (False, "/status/v1/simple/broker-service", Expect(404, body="not found: broker-service")),
    (False, "/status/v1/simple/no-such-service", Expect(404, body="not found: no-such-service")),
]


@pytest.mark.parametrize(("broker", "path", "expected"), STATUS)
def test_status(tier: Tier, primary: StubPrimary, broker: bool, path: str, expected: Expect) -> None:
    primary.pe_broker = broker
    check(tier.call("GET", path, client=None), expected, path)


@pytest.mark.parametrize(
    ("flags", "coloured"),
    [((), True), (("--color=false",), False), (("--color", "false"), False), (("--color=ansi",), True)],
)
def test_puppet_colours_its_errors_unless_told_not_to(
    primary: StubPrimary, flags: tuple[str, ...], coloured: bool
) -> None:
    puppet = str(primary.root / "bin" / "puppet")
    primary.fail_purge("Could not find a node named nowhere")
    failed = subprocess.run([puppet, "node", "purge", "nowhere", *flags], capture_output=True, text=True)
    assert failed.returncode == 1
    assert bool(ANSI.search(failed.stderr)) is coloured, repr(failed.stderr)
    assert ANSI.sub("", failed.stderr).strip() == "Error: Could not find a node named nowhere"
    primary.set_puppet(exit_code=6)
    run = subprocess.run([puppet, "agent", "--onetime", "--no-splay", *flags], capture_output=True, text=True)
    assert run.returncode == 6
    assert bool(ANSI.search(run.stderr)) is coloured and "Error: " in run.stderr


def test_the_stubs_signature_algorithms_are_what_a_client_verifies(tier: Tier) -> None:
    """The signed certificate verifies against the CA certificate the tier serves."""
    name = fresh()
    check(tier.submit(name, compiler_request(name)), Expect(200), "submit")
    check(tier.set_state(name, "signed"), Expect(204), "sign")
    certificate = tier.certificate(name)
    ca = x509.load_pem_x509_certificate(tier.cacert.read_bytes())
    certificate.verify_directly_issued_by(ca)
    assert certificate.signature_hash_algorithm is not None
    assert isinstance(certificate.signature_hash_algorithm, hashes.SHA256)
