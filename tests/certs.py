"""Certificates made in the test: a CA like Puppet's, its leaf certificates, and Puppet agents' CSRs.

CSRs are built as DER by hand (and signed with the key through `cryptography`), so a test can make
the shapes `cryptography`'s builder refuses and a real CA still stores: two extension-request
attributes, a repeated extension, custom attributes. The CA side parses them by hand too, as
puppetserver (BouncyCastle) reads them: the FIRST extension request counts.
"""

import base64
import datetime
import hashlib
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PP_CLI_AUTH_OID = "1.3.6.1.4.1.34380.1.3.39"
"""pp_cli_auth: puppetserver's auth.conf lets a certificate with it (value "true") use certificate_status."""
PP_REG_CERT_EXT = "1.3.6.1.4.1.34380.1.1"
PP_PRIV_CERT_EXT = "1.3.6.1.4.1.34380.1.2"
PP_AUTH_CERT_EXT = "1.3.6.1.4.1.34380.1.3"
SAN_OID = "2.5.29.17"
EXT_REQ_OID = "1.2.840.113549.1.9.14"
COMMON_NAME_OID = "2.5.4.3"
ECDSA_SHA256_OID = "1.2.840.10045.4.3.2"
RSA_SHA256_OID = "1.2.840.113549.1.1.11"
NETSCAPE_COMMENT_OID = "2.16.840.1.113730.1.13"
PUPPET_SHORT_NAMES = {
    "1.3.6.1.4.1.34380.1.3.1": "pp_authorization",
    "1.3.6.1.4.1.34380.1.3.13": "pp_auth_role",
    PP_CLI_AUTH_OID: "pp_cli_auth",
}
"""puppetserver's short names under ppAuthCertExt (certificate_status's authorization_extensions keys)."""


# ---- DER, by hand (short and long definite lengths; all this test needs)


def der(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def der_sequence(*items: bytes) -> bytes:
    return der(0x30, b"".join(items))


def der_set(*items: bytes) -> bytes:
    return der(0x31, b"".join(items))


def der_oid(oid: str) -> bytes:
    numbers = [int(part) for part in oid.split(".")]
    body = bytearray([40 * numbers[0] + numbers[1]])
    for number in numbers[2:]:
        chunk = [number & 0x7F]
        number >>= 7
        while number:
            chunk.append(0x80 | (number & 0x7F))
            number >>= 7
        body += bytes(reversed(chunk))
    return der(0x06, bytes(body))


def der_utf8(text: str) -> bytes:
    return der(0x0C, text.encode())


def der_printable(text: str) -> bytes:
    return der(0x13, text.encode("ascii"))


def der_read(data: bytes, offset: int = 0) -> tuple[int, bytes, int]:
    """(tag, content, end) of the element at ``offset``."""
    tag, first = data[offset], data[offset + 1]
    start = offset + 2
    if first & 0x80:
        size = first & 0x7F
        length = int.from_bytes(data[start : start + size], "big")
        start += size
    else:
        length = first
    end = start + length
    if end > len(data):
        raise ValueError("truncated DER")
    return tag, data[start:end], end


def der_items(content: bytes) -> list[tuple[int, bytes, bytes]]:
    """The elements of a constructed value: (tag, content, whole encoding)."""
    items, offset = [], 0
    while offset < len(content):
        tag, value, end = der_read(content, offset)
        items.append((tag, value, content[offset:end]))
        offset = end
    return items


def oid_text(content: bytes) -> str:
    numbers, value = [], 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            numbers.append(value)
            value = 0
    first = min(numbers[0] // 40, 2)
    return ".".join(str(n) for n in [first, numbers[0] - 40 * first, *numbers[1:]])


def der_text(encoded: bytes) -> str:
    """A DER string (UTF8String, PrintableString, IA5String...) as text; other values as hex."""
    try:
        tag, content, _ = der_read(encoded)
    except (IndexError, ValueError):
        return encoded.hex()
    if tag in (0x0C, 0x13, 0x16, 0x14, 0x1A):
        return content.decode(errors="replace")
    return encoded.hex()


def subtree_of(parent: str, oid: str) -> bool:
    return oid.startswith(parent + ".")


@dataclass(frozen=True)
class Extension:
    oid: str
    value: bytes
    """The DER inside the extnValue OCTET STRING."""
    critical: bool = False

    def encode(self) -> bytes:
        critical = der(0x01, b"\xff") if self.critical else b""
        return der_sequence(der_oid(self.oid), critical, der(0x04, self.value))


def puppet_extension(oid: str, value: str) -> Extension:
    """An extension as a Puppet agent writes csr_attributes.yaml's extension_requests: a UTF8String."""
    return Extension(oid, der_utf8(value))


def alt_names_extension(dns_names: Sequence[str], ip_addresses: Sequence[str] = ()) -> Extension:
    names = [der(0x82, name.encode()) for name in dns_names]
    names += [der(0x87, ipaddress.ip_address(ip).packed) for ip in ip_addresses]
    return Extension(SAN_OID, der_sequence(*names))


@dataclass
class ParsedRequest:
    """A CSR as puppetserver reads it (what the stub CA needs of it)."""

    pem: bytes
    der: bytes
    subject_cn: str | None
    public_key_der: bytes
    attributes: list[tuple[str, list[bytes]]]
    """(type, values as whole DER encodings), in the order of the encoding."""
    signature_valid: bool

    @property
    def extension_requests(self) -> list[list[Extension]]:
        requests = []
        for oid, values in self.attributes:
            if oid != EXT_REQ_OID or not values:
                continue
            _, extensions, _ = der_read(values[0])
            parsed = []
            for _, extension, _ in der_items(extensions):
                parts = der_items(extension)
                critical = len(parts) == 3 and parts[1][1] != b"\x00"
                parsed.append(Extension(oid_text(parts[0][1]), parts[-1][1], critical))
            requests.append(parsed)
        return requests

    @property
    def extensions(self) -> list[Extension]:
        """The FIRST extension request's extensions, as BouncyCastle (puppetserver) takes them."""
        requests = self.extension_requests
        return requests[0] if requests else []

    def repeated_extension(self) -> str | None:
        """The OID of an extension the request repeats (BouncyCastle: "repeated extension found")."""
        seen: set[str] = set()
        for extension in self.extensions:
            if extension.oid in seen:
                return extension.oid
            seen.add(extension.oid)
        return None

    def alt_names(self) -> list[tuple[int, bytes]]:
        """The subjectAltName entries as (context tag, content): 0x82 DNS, 0x87 IP."""
        for extension in self.extensions:
            if extension.oid == SAN_OID:
                _, names, _ = der_read(extension.value)
                return [(tag, value) for tag, value, _ in der_items(names)]
        return []

    def subject_alt_names(self) -> list[str]:
        """puppetserver's subject_alt_names: IP names first, then DNS names."""
        return [f"IP:{ip}" for ip in self.ip_names()] + [f"DNS:{name}" for name in self.dns_names()]

    def dns_names(self) -> list[str]:
        return [value.decode(errors="replace") for tag, value in self.alt_names() if tag == 0x82]

    def ip_names(self) -> list[str]:
        return [str(ipaddress.ip_address(value)) for tag, value in self.alt_names() if tag == 0x87]


def parse_request(pem: bytes) -> ParsedRequest:
    """Parse a PEM CSR by hand; ValueError if it is not one."""
    try:
        body = b"".join(
            line for line in pem.strip().splitlines() if line.strip() and not line.startswith(b"-----")
        )
        data = base64.b64decode(body, validate=True)
        _, request, _ = der_read(data)
        info_item, algorithm_item, signature_item = der_items(request)
        info_parts = der_items(info_item[1])
        _version, subject, spki = info_parts[:3]
        attributes: list[tuple[str, list[bytes]]] = []
        if len(info_parts) > 3 and info_parts[3][0] == 0xA0:
            for _, attribute, _ in der_items(info_parts[3][1]):
                kind, values = der_items(attribute)
                attributes.append((oid_text(kind[1]), [whole for _, _, whole in der_items(values[1])]))
        common_name = None
        for _, rdn, _ in der_items(subject[1]):
            for _, pair, _ in der_items(rdn):
                kind, value = der_items(pair)
                if oid_text(kind[1]) == COMMON_NAME_OID:
                    common_name = value[1].decode(errors="replace")
        algorithm = oid_text(der_items(algorithm_item[1])[0][1])
        signature = signature_item[1][1:]
    except (ValueError, IndexError, TypeError) as error:
        raise ValueError(f"not a certificate request: {error}") from None
    return ParsedRequest(
        pem=pem,
        der=data,
        subject_cn=common_name,
        public_key_der=spki[2],
        attributes=attributes,
        signature_valid=_verifies(spki[2], algorithm, signature, info_item[2]),
    )


def _verifies(spki: bytes, algorithm: str, signature: bytes, signed: bytes) -> bool:
    try:
        key = serialization.load_der_public_key(spki)
        if isinstance(key, ec.EllipticCurvePublicKey) and algorithm == ECDSA_SHA256_OID:
            key.verify(signature, signed, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey) and algorithm == RSA_SHA256_OID:
            key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def fingerprint(data: bytes, algorithm: str = "sha256") -> str:
    """puppetserver's fingerprint: upper-case hex pairs joined by colons."""
    digest = hashlib.new(algorithm, data).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


@dataclass
class Pem:
    cert: bytes
    key: bytes

    def write(self, cert_path: Path, key_path: Path) -> None:
        cert_path.parent.mkdir(parents=True, exist_ok=True)
        key_path.parent.mkdir(parents=True, exist_ok=True)
        cert_path.write_bytes(self.cert)
        key_path.write_bytes(self.key)


def puppet_request(
    common_name: str,
    dns_names: Sequence[str],
    extensions: Mapping[str, str],
    *,
    ip_addresses: Sequence[str] = (),
    raw_extensions: Sequence[Extension] = (),
    second_extension_request: Mapping[str, str] | None = None,
    duplicate_extension: tuple[str, str] | None = None,
    custom_attributes: Mapping[str, str] | None = None,
    subject_extra: Sequence[tuple[str, str]] = (),
    key: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    """A CSR as a Puppet agent makes it (PEM).

    Subject CN=common_name (plus ``subject_extra`` (OID, value) pairs, as a hand-made CSR may have);
    custom attributes as PrintableStrings (csr_attributes.yaml's custom_attributes), then one
    extension request: subjectAltName (``dns_names``, ``ip_addresses``), Puppet extensions as DER
    UTF8Strings, then ``raw_extensions``. ``duplicate_extension`` (OID, value) repeats a Puppet
    extension in that request; ``second_extension_request`` adds a second extReq attribute with
    these Puppet extensions (a real CA signs with the first).
    """
    key = key or ec.generate_private_key(ec.SECP256R1())
    names = [der_set(der_sequence(der_oid(COMMON_NAME_OID), der_utf8(common_name)))]
    names += [der_set(der_sequence(der_oid(oid), der_utf8(value))) for oid, value in subject_extra]
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    requested = []
    if dns_names or ip_addresses:
        requested.append(alt_names_extension(dns_names, ip_addresses))
    requested += [puppet_extension(oid, value) for oid, value in extensions.items()]
    requested += raw_extensions
    if duplicate_extension is not None:
        requested.append(puppet_extension(*duplicate_extension))
    attributes = [
        der_sequence(der_oid(oid), der_set(der_printable(value)))
        for oid, value in (custom_attributes or {}).items()
    ]
    extension_requests = [requested] if requested else []
    if second_extension_request is not None:
        extension_requests.append([puppet_extension(o, v) for o, v in second_extension_request.items()])
    attributes += [
        der_sequence(der_oid(EXT_REQ_OID), der_set(der_sequence(*(e.encode() for e in request))))
        for request in extension_requests
    ]
    info = der_sequence(der(0x02, b"\x00"), der_sequence(*names), spki, der(0xA0, b"".join(attributes)))
    signature = key.sign(info, ec.ECDSA(hashes.SHA256()))
    request = der_sequence(info, der_sequence(der_oid(ECDSA_SHA256_OID)), der(0x03, b"\x00" + signature))
    return _pem("CERTIFICATE REQUEST", request)


def _pem(label: str, data: bytes) -> bytes:
    text = base64.b64encode(data).decode()
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return ("\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"]) + "\n").encode()


class LocalCA:
    """A certificate authority like the PE CA, for local TLS servers and clients."""

    def __init__(self, name: str = "Puppet CA: test") -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(self._name)
            .issuer_name(self._name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )

    @property
    def cert_pem(self) -> bytes:
        return self._cert.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        common_name: str,
        dns_names: list[str],
        ip_addresses: Sequence[str] = (),
        extensions: Mapping[str, str] | None = None,
    ) -> Pem:
        """A leaf certificate and its key; ``extensions`` are Puppet extensions (OID: UTF8String value),
        e.g. ``{PP_CLI_AUTH_OID: "true"}`` as puppetserver puts in the CA host's own certificate."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
        alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
        )
        # What Python 3.13's strict verification (and the PE CA) puts in every certificate.
        builder = self._identified(builder, key.public_key())
        if alt_names:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        for oid, value in (extensions or {}).items():
            builder = builder.add_extension(
                x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), der_utf8(value)), critical=False
            )
        cert = builder.sign(self._key, hashes.SHA256())
        return Pem(
            cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )

    def sign_request(self, request_pem: bytes, certname: str | None = None) -> bytes:
        """Sign a CSR as puppetserver 7 does (create-agent-extensions): subject CN=certname alone; its
        base extensions, then every extension of the FIRST extension request, with the CSR subject's
        name added to subjectAltName (or a subjectAltName of that name alone). Validation (ca.conf,
        permitted extensions) is the caller's (the stub CA's) job."""
        request = parse_request(request_pem)
        name = certname or request.subject_cn or ""
        public_key = serialization.load_der_public_key(request.public_key_der)
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self._name)
            .public_key(public_key)  # type: ignore[arg-type]
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.UnrecognizedExtension(
                    x509.ObjectIdentifier(NETSCAPE_COMMENT_OID),
                    der(0x16, b"Puppet Server Internal Certificate"),
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=True,
            )
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_encipherment=True,
                    content_commitment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        )
        builder = self._identified(builder, public_key)  # type: ignore[arg-type]
        entries = [der(tag, value) for tag, value in request.alt_names()]
        cn = (request.subject_cn or name).lower()
        if cn not in request.dns_names():
            entries.append(der(0x82, cn.encode()))
        builder = builder.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(SAN_OID), der_sequence(*entries)), critical=False
        )
        for extension in request.extensions:
            if extension.oid != SAN_OID:
                builder = builder.add_extension(
                    x509.UnrecognizedExtension(x509.ObjectIdentifier(extension.oid), extension.value),
                    extension.critical,
                )
        return builder.sign(self._key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    def _identified(
        self, builder: x509.CertificateBuilder, public_key: ec.EllipticCurvePublicKey
    ) -> x509.CertificateBuilder:
        return builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
        ).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
        )
