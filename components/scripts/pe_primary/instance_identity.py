"""Verify an EC2 instance identity document from its PKCS#7 signature, standard library only.

The instance metadata service's ``/latest/dynamic/instance-identity/pkcs7`` is the base64 of
a PKCS#7 ContentInfo (RFC 2315): signedData that embeds the identity document (JSON) and
carries one SignerInfo, no certificates. AWS signs with DSA and SHA-1 over authenticated
attributes (contentType, signingTime, messageDigest), and encodes the outer layers with BER
indefinite lengths. The signer is found among the certificates given (AWS's published ones,
see ``aws_certificates``) by issuer and serial number; a certificate inside the message is
never trusted. DSA (FIPS 186) and RSA PKCS#1 v1.5 signers are verified, with SHA-1 or SHA-256.

https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/verify-pkcs7.html
"""

import base64
import binascii
import hashlib
import json
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import der

OID_DATA = "1.2.840.113549.1.7.1"
OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
OID_DSA = "1.2.840.10040.4.1"
OID_RSA = "1.2.840.113549.1.1.1"

# digestAlgorithm OID -> (name, hashlib constructor, DigestInfo prefix for RSA PKCS#1 v1.5)
DIGESTS: Dict[str, Tuple[str, Callable[..., Any], bytes]] = {
    "1.3.14.3.2.26": ("SHA-1", hashlib.sha1, bytes.fromhex("3021300906052b0e03021a05000414")),
    "2.16.840.1.101.3.4.2.1": (
        "SHA-256",
        hashlib.sha256,
        bytes.fromhex("3031300d060960864801650304020105000420"),
    ),
}

# digestEncryptionAlgorithm OID -> (key type, the digest it implies or None)
SIGNATURE_ALGORITHMS: Dict[str, Tuple[str, Optional[str]]] = {
    OID_DSA: (OID_DSA, None),
    "1.2.840.10040.4.3": (OID_DSA, "1.3.14.3.2.26"),  # dsaWithSHA1: what AWS writes
    "2.16.840.1.101.3.4.3.2": (OID_DSA, "2.16.840.1.101.3.4.2.1"),  # dsa-with-sha256
    OID_RSA: (OID_RSA, None),
    "1.2.840.113549.1.1.5": (OID_RSA, "1.3.14.3.2.26"),  # sha1WithRSAEncryption
    "1.2.840.113549.1.1.11": (OID_RSA, "2.16.840.1.101.3.4.2.1"),  # sha256WithRSAEncryption
}

NO_MATCH = "the signature does not verify against any AWS certificate pe-lb knows"


class IdentityError(Exception):
    """The instance identity signature is not acceptable; str() is a one-line reason."""


class Certificate:
    """The parts of an X.509 certificate a PKCS#7 signer is found and checked by."""

    def __init__(self, der_bytes: bytes) -> None:
        tbs = der.children(der.expect(der.children(der.one(der_bytes, der.SEQUENCE))[0], der.SEQUENCE))
        if tbs[0][0] == 0xA0:  # [0] version
            tbs = tbs[1:]
        self.serial = der.integer(der.expect(tbs[0], der.INTEGER))
        der.expect(tbs[2], der.SEQUENCE)
        self.issuer = tbs[2][2]  # the Name's whole encoding, compared byte for byte
        algorithm, key = der.children(der.expect(tbs[5], der.SEQUENCE))
        identifier = der.children(der.expect(algorithm, der.SEQUENCE))
        self.key_type = der.oid(der.expect(identifier[0], der.OID))
        body = _key_body(self.key_type, key, identifier)
        self.key = [der.unsigned(der.expect(number, der.INTEGER)) for number in der.children(body)]


def _key_body(
    key_type: str, key: Tuple[int, bytes, bytes], identifier: List[Tuple[int, bytes, bytes]]
) -> bytes:
    """The INTEGERs of a public key: p, q, g, y for DSA; n, e for RSA; none for other types."""
    public = der.bit_string(der.expect(key, der.BIT_STRING))
    if key_type == OID_DSA:  # parameters p, q, g in the algorithm, then y
        der.one(public, der.INTEGER)
        return der.expect(identifier[1], der.SEQUENCE) + public
    if key_type == OID_RSA:
        return der.one(public, der.SEQUENCE)
    return b""


def _inverse(value: int, modulus: int) -> int:
    """value^-1 mod modulus (pow(value, -1, modulus) is Python 3.8)."""
    old, new, old_x, new_x = value % modulus, modulus, 1, 0
    while new:
        quotient = old // new
        old, new = new, old - quotient * new
        old_x, new_x = new_x, old_x - quotient * new_x
    if old != 1:
        raise ValueError("not invertible")
    return old_x % modulus


def dsa_verifies(key: List[int], digest: bytes, signature: bytes) -> bool:
    """FIPS 186-4 section 4.7 over ``digest`` with key [p, q, g, y]."""
    if len(key) != 4:
        raise ValueError("a DSA key has p, q, g and y")
    p, q, g, y = key
    r, s = (
        der.unsigned(der.expect(element, der.INTEGER)) for element in _two(der.one(signature, der.SEQUENCE))
    )
    if not (0 < r < q and 0 < s < q and 1 < g < p and 1 < y < p):
        return False
    z = int.from_bytes(digest, "big") >> max(0, 8 * len(digest) - q.bit_length())
    w = _inverse(s, q)
    u1, u2 = z * w % q, r * w % q
    return pow(g, u1, p) * pow(y, u2, p) % p % q == r


def _two(value: bytes) -> List[Tuple[int, bytes, bytes]]:
    elements = der.children(value)
    if len(elements) != 2:
        raise ValueError("a DSA signature is two INTEGERs")
    return elements


def rsa_verifies(key: List[int], digest_info: bytes, signature: bytes) -> bool:
    """RSASSA-PKCS1-v1_5 (RFC 8017 section 8.2.2): the whole encoded message must match."""
    if len(key) != 2:
        raise ValueError("an RSA key has n and e")
    n, e = key
    size = (n.bit_length() + 7) // 8
    number = int.from_bytes(signature, "big")
    if len(signature) != size or number >= n:
        return False
    expected = b"\x00\x01" + b"\xff" * (size - len(digest_info) - 3) + b"\x00" + digest_info
    return size >= len(digest_info) + 11 and pow(number, e, n).to_bytes(size, "big") == expected


def read_certificates(certificates_pem: str) -> List[Certificate]:
    """Each certificate in a PEM text."""
    try:
        return [Certificate(block) for block in der.pem_blocks(certificates_pem, "CERTIFICATE")]
    except (IndexError, ValueError) as error:
        raise IdentityError(f"cannot read the identity signer certificates: {error}") from None


def verify(pkcs7_base64: str, certificates_pem: str) -> Dict[str, Any]:
    """The identity document signed in ``pkcs7_base64`` by one of ``certificates_pem``."""
    certificates = read_certificates(certificates_pem)
    if not certificates:
        raise IdentityError("no certificate to verify the instance identity signature with")
    try:
        data = base64.b64decode("".join(pkcs7_base64.split()), validate=True)
    except (binascii.Error, ValueError):
        raise IdentityError("the instance identity signature is not base64") from None
    try:
        content = _verified_content(data, certificates)
    except (IndexError, ValueError, OverflowError) as error:
        raise IdentityError(f"the instance identity signature is not a PKCS#7 structure: {error}") from None
    try:
        document = json.loads(content.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError and json's JSONDecodeError both are
        raise IdentityError("the signed instance identity document is not JSON") from None
    if not isinstance(document, dict):
        raise IdentityError("the signed instance identity document is not a JSON object")
    return document


def _verified_content(data: bytes, certificates: List[Certificate]) -> bytes:
    """The signed content, once its one signature verifies; IdentityError or ValueError else."""
    content_type, signed = der.children(der.one(data, der.SEQUENCE))
    if der.oid(der.expect(content_type, der.OID)) != OID_SIGNED_DATA:
        raise IdentityError("the instance identity signature is not PKCS#7 signedData")
    body = der.children(der.one(der.expect(signed, 0xA0), der.SEQUENCE))
    der.expect(body[0], der.INTEGER)
    # version, digestAlgorithms, contentInfo, [0] certificates, [1] crls, signerInfos
    encapsulated = der.children(der.expect(body[2], der.SEQUENCE))
    if der.oid(der.expect(encapsulated[0], der.OID)) != OID_DATA:
        raise IdentityError("the signed content is not PKCS#7 data")
    if len(encapsulated) != 2:
        raise IdentityError("the instance identity signature does not embed the document")
    explicit = der.children(der.expect(encapsulated[1], 0xA0))
    if len(explicit) != 1:
        raise ValueError("the content is not one OCTET STRING")
    content = der.octet_string(explicit[0][0], explicit[0][1])
    signers = der.children(der.expect(body[-1], der.SET))
    if len(signers) != 1:
        raise IdentityError(f"the instance identity signature has {len(signers)} signers, not one")
    signer = der.children(der.expect(signers[0], der.SEQUENCE))
    # version 1, issuerAndSerialNumber, digestAlgorithm, [0] authenticatedAttributes,
    # digestEncryptionAlgorithm, encryptedDigest, [1] unauthenticatedAttributes
    if der.integer(der.expect(signer[0], der.INTEGER)) != 1:
        raise IdentityError("the signer is not named by issuer and serial number (SignerInfo version 1)")
    issuer, serial = der.children(der.expect(signer[1], der.SEQUENCE))
    digest_oid = _algorithm(signer[2])
    if digest_oid not in DIGESTS:
        raise IdentityError(f"unsupported digest algorithm {digest_oid}")
    name, hash_function, digest_info = DIGESTS[digest_oid]
    rest = signer[3:]
    signed_bytes = content
    if rest and rest[0][0] == 0xA0:
        signed_bytes = _check_attributes(rest[0], hash_function(content).digest())
        rest = rest[1:]
    signature_oid = _algorithm(rest[0])
    key_type, implied_digest = SIGNATURE_ALGORITHMS.get(signature_oid, ("", None))
    if not key_type or implied_digest not in (None, digest_oid):
        raise IdentityError(f"unsupported signature algorithm {signature_oid} with {name}")
    signature = der.expect(rest[1], der.OCTET_STRING)
    digest = hash_function(signed_bytes).digest()
    serial_number = der.integer(der.expect(serial, der.INTEGER))
    der.expect(issuer, der.SEQUENCE)
    matches = [c for c in certificates if c.issuer == issuer[2] and c.serial == serial_number]
    if not matches:
        raise IdentityError("no signer certificate matches the signature's issuer/serial")
    for certificate in matches:
        if certificate.key_type != key_type:
            continue
        if key_type == OID_DSA and dsa_verifies(certificate.key, digest, signature):
            return content
        if key_type == OID_RSA and rsa_verifies(certificate.key, digest_info + digest, signature):
            return content
    raise IdentityError(NO_MATCH)


def _algorithm(element: Tuple[int, bytes, bytes]) -> str:
    """The OID of an AlgorithmIdentifier, whose parameters must be absent or NULL."""
    parts = der.children(der.expect(element, der.SEQUENCE))
    if len(parts) > 2 or (len(parts) == 2 and parts[1][2] != b"\x05\x00"):
        raise ValueError("unexpected algorithm parameters")
    return der.oid(der.expect(parts[0], der.OID))


def _check_attributes(attributes: Tuple[int, bytes, bytes], content_digest: bytes) -> bytes:
    """The bytes a signature over authenticated attributes signs: their DER as a SET OF."""
    _, value, whole = attributes
    if whole[1] == 0x80:
        raise IdentityError("the signed attributes are not DER")
    found: Dict[str, bytes] = {}
    for attribute in der.children(value):
        kind, values = der.children(der.expect(attribute, der.SEQUENCE))
        name = der.oid(der.expect(kind, der.OID))
        if name in found:
            raise IdentityError(f"the signed attribute {name} appears twice")
        found[name] = der.expect(values, der.SET)
    for name in (OID_CONTENT_TYPE, OID_MESSAGE_DIGEST):
        if name not in found:
            raise IdentityError(f"the signed attributes lack {name}")
    if der.oid(der.one(found[OID_CONTENT_TYPE], der.OID)) != OID_DATA:
        raise IdentityError("the signed attributes' content type is not PKCS#7 data")
    if der.one(found[OID_MESSAGE_DIGEST], der.OCTET_STRING) != content_digest:
        raise IdentityError("the signed attributes' message digest does not match the document")
    return bytes([der.SET]) + whole[1:]
