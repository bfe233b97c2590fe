"""HTTPS GETs through the pool: the status endpoint, whether agents would trust the answer, and
whether the install script it hands out names the pool."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass, field

from cryptography import x509

from .. import pe


@dataclass
class ProbeResult:
    url: str
    status: int | None = None
    body: str = ""
    certificate_names: list[str] = field(default_factory=list)
    name_valid: bool = False
    chain_verified: bool = False
    installer_url: str = ""
    installer_status: int | None = None
    installer_names_pool: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.name_valid and self.installer_names_pool and not self.problems


def probe(
    address: str,
    *,
    cacert: str | None = None,
    connect_to: str | None = None,
    port: int = pe.PUPPETSERVER_PORT,
    path: str = pe.STATUS_PATH,
    timeout: float = 10.0,
) -> ProbeResult:
    """GET the status and the agent install script from https://address:port, connecting to
    ``connect_to`` if given (like curl --connect-to); check what agents would check."""
    result = ProbeResult(
        url=f"https://{address}:{port}{path}",
        installer_url=f"https://{address}:{port}{pe.INSTALL_SCRIPT_PATH}",
    )
    context = ssl.create_default_context(cafile=cacert) if cacert else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # The name is checked below, against the certificate's alt names, to say exactly what is wrong.
    context.check_hostname = False
    if not cacert:
        context.verify_mode = ssl.CERT_NONE
    target = (connect_to or address, port)
    try:
        der, result.status, body = _get(context, target, address, path, timeout)
        result.body = body[:4096].strip()
        result.chain_verified = bool(cacert)
        if der:
            result.certificate_names = certificate_names(der)
            result.name_valid = any(name_matches(address, name) for name in result.certificate_names)
        _, result.installer_status, installer = _get(
            context, target, address, pe.INSTALL_SCRIPT_PATH, timeout
        )
    except ssl.SSLCertVerificationError as error:
        result.problems.append(f"certificate not trusted by {cacert}: {error.verify_message}")
        return result
    except (OSError, http.client.HTTPException) as error:
        result.problems.append(f"no answer from {connect_to or address}:{port}: {error}")
        return result
    if not result.name_valid:
        result.problems.append(
            f"the certificate presented does not name {address} (it names: "
            f"{', '.join(result.certificate_names) or 'nothing'}); agents will refuse the pool. "
            "Add the pool address to the compile masters' dns_alt_names and reissue their certificates"
        )
    if result.status != 200:
        result.problems.append(f"{path} answered HTTP {result.status}: {result.body[:200]}")
    result.installer_names_pool = result.installer_status == 200 and pe.install_script_names(
        installer, address
    )
    if result.installer_status != 200:
        result.problems.append(f"{pe.INSTALL_SCRIPT_PATH} answered HTTP {result.installer_status}")
    elif not result.installer_names_pool:
        result.problems.append(
            f"the install script served through the pool does not name {address}: agents installed "
            "from it would use one compile master. Set pe_repo::compile_master_pool_address "
            "(PeRepoPoolAddress), then run Puppet on the compile masters, then on the primary"
        )
    return result


def _get(
    context: ssl.SSLContext, target: tuple[str, int], address: str, path: str, timeout: float
) -> tuple[bytes | None, int, str]:
    """(peer certificate, status, body) of one HTTPS GET on its own connection."""
    with (
        socket.create_connection(target, timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=address) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        tls.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {address}:{target[1]}\r\nAccept: */*\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        response = http.client.HTTPResponse(tls)
        response.begin()
        return der, response.status, response.read(MAX_BODY_BYTES).decode(errors="replace")


MAX_BODY_BYTES = 1 << 20
"""An install script is some tens of kilobytes; the status body a word."""


def certificate_names(der: bytes) -> list[str]:
    """DNS names and IP addresses in the certificate's subjectAltName (CN only if there is none)."""
    certificate = x509.load_der_x509_certificate(der)
    try:
        alt_names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [str(a.value) for a in certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    return [
        *alt_names.get_values_for_type(x509.DNSName),
        *map(str, alt_names.get_values_for_type(x509.IPAddress)),
    ]


def name_matches(address: str, name: str) -> bool:
    """RFC 6125 matching: exact (case-insensitive), or a wildcard for the leftmost label only."""
    address, name = address.lower().rstrip("."), name.lower().rstrip(".")
    try:
        return ipaddress.ip_address(address) == ipaddress.ip_address(name)
    except ValueError:
        pass
    if name.startswith("*."):
        head, _, rest = address.partition(".")
        return bool(head) and rest == name[2:]
    return address == name
