"""What a compile master's certificate request asks for, read field by field, and what may be signed.

A request is signed only when it asks for exactly what a compile master needs: subject
CN = certname; one extension request holding subjectAltName (DNS: certname, puppet,
the pool address), pp_auth_role = pe_compiler and pe-lb's platform extension, each
once; one instance-identity attribute; nothing else. Anything more (pp_cli_auth, a
second extension request, a duplicate, an IP alt name...) is named and refused.
"""

import hashlib
import ipaddress
from typing import Dict, List, Optional, Set, Tuple

from . import der
from .common import StepError
from .constants import (
    COMPILER_AUTH_ROLE,
    EXPECTED_EXTENSIONS,
    EXTENSION_NAMES,
    OID_COMMON_NAME,
    OID_EXTENSION_REQUEST,
    OID_INSTANCE_IDENTITY,
    OID_PLATFORM,
    OID_PP_AUTH_ROLE,
    OID_SUBJECT_ALT_NAME,
)

_STRING_TAGS = {0x0C: "utf-8", 0x13: "ascii", 0x16: "ascii", 0x1E: "utf-16-be"}
"""UTF8String, PrintableString, IA5String, BMPString."""
_ALT_NAME_KINDS = {0x81: "e-mail", 0x86: "URI", 0x87: "IP address", 0x88: "registered ID"}
_AUTHORIZATION_ARC = "1.3.6.1.4.1.34380.1.3."


def extension_name(oid: str) -> str:
    if oid in EXTENSION_NAMES:
        return EXTENSION_NAMES[oid]
    if oid.startswith(_AUTHORIZATION_ARC):
        return "authorization extension " + oid
    return oid


def decode_string(tag: int, value: bytes) -> str:
    """A DER character string's text (StepError for another type)."""
    encoding = _STRING_TAGS.get(tag)
    if encoding is None:
        raise ValueError(f"not a character string (tag 0x{tag:02x})")
    return value.decode(encoding)


class CertificateData:
    """A PEM request or certificate: subject, public key, extensions in order, alt names, attributes."""

    def __init__(self, pem: str) -> None:
        try:
            blocks = der.pem_blocks(pem, "CERTIFICATE REQUEST") or der.pem_blocks(pem, "CERTIFICATE")
            if len(blocks) != 1:
                raise ValueError(f"expected one PEM certificate or request, found {len(blocks)}")
            top = der.one(blocks[0], der.SEQUENCE)
            body = der.children(der.expect(der.children(top)[0], der.SEQUENCE))
            self.extensions: List[Tuple[str, bytes]] = []
            self.attributes: List[Tuple[str, List[Tuple[int, bytes, bytes]]]] = []
            if body[0][0] == 0xA0:  # a certificate: [0] version first
                self.is_request = False
                subject, public_key = body[5], body[6]
                for tag, value, _ in body[7:]:
                    if tag == 0xA3:
                        self.extensions = self._extensions(der.one(value, der.SEQUENCE))
            else:  # a request: version, subject, key, [0] attributes
                self.is_request = True
                subject, public_key = body[1], body[2]
                for tag, value, _ in body[3:]:
                    if tag == 0xA0:
                        self._read_attributes(value)
            self.public_key = public_key[2]
            self.subject = self._subject(der.expect(subject, der.SEQUENCE))
            self.alt_names = self._alt_names()
        except (IndexError, ValueError, UnicodeError) as error:
            raise StepError(f"cannot read the certificate data: {error}") from None

    # ---- reading

    def _read_attributes(self, value: bytes) -> None:
        for _, attribute, _ in der.children(value):
            parts = der.children(attribute)
            oid = der.oid(der.expect(parts[0], der.OID))
            values = der.children(der.expect(parts[1], der.SET))
            self.attributes.append((oid, values))
            first = not any(name == OID_EXTENSION_REQUEST for name, _ in self.attributes[:-1])
            if oid == OID_EXTENSION_REQUEST and len(values) == 1 and first:
                # The CA signs with the first; a second makes the request refused (problems()).
                self.extensions = self._extensions(der.expect(values[0], der.SEQUENCE))

    @staticmethod
    def _extensions(value: bytes) -> List[Tuple[str, bytes]]:
        found = []
        for _, extension, _ in der.children(value):
            parts = der.children(extension)
            found.append((der.oid(der.expect(parts[0], der.OID)), der.expect(parts[-1], der.OCTET_STRING)))
        return found

    @staticmethod
    def _subject(value: bytes) -> List[Tuple[str, str]]:
        names = []
        for _, rdn, _ in der.children(value):
            for _, pair, _ in der.children(rdn):
                oid, text = der.children(pair)[:2]
                names.append((der.oid(oid[1]), decode_string(text[0], text[1])))
        return names

    def _alt_names(self) -> List[str]:
        """Each alt name as text: DNS names as they are, others as 'IP address 10.0.0.1' and the like."""
        names = []
        for oid, value in self.extensions:
            if oid != OID_SUBJECT_ALT_NAME:
                continue
            for tag, name, _ in der.children(der.one(value, der.SEQUENCE)):
                if tag == 0x82:  # [2] dNSName
                    names.append(name.decode("ascii"))
                elif tag == 0x87 and len(name) in (4, 16):
                    names.append("IP address " + str(ipaddress.ip_address(name)))
                else:
                    names.append("{} {!r}".format(_ALT_NAME_KINDS.get(tag, "other name"), name[:60]))
        return names

    # ---- what it says

    @property
    def common_name(self) -> str:
        return next((text for oid, text in self.subject if oid == OID_COMMON_NAME), "")

    @property
    def dns_names(self) -> List[str]:
        return [name for name in self.alt_names if " " not in name]

    def extension(self, oid: str) -> Optional[bytes]:
        return next((value for name, value in self.extensions if name == oid), None)

    def text(self, oid: str) -> Optional[str]:
        """A Puppet extension's value (a DER string inside the extension)."""
        value = self.extension(oid)
        if value is None:
            return None
        try:
            tag, inner, _, end = der.read(value)
            if end == len(value):
                return decode_string(tag, inner)
        except (ValueError, UnicodeError):
            pass
        return repr(value[:60])

    def attribute_text(self, oid: str) -> Optional[str]:
        """The value of a single-valued string attribute of a request."""
        for name, values in self.attributes:
            if name == oid and len(values) == 1:
                try:
                    return decode_string(values[0][0], values[0][1])
                except (ValueError, UnicodeError):
                    return None
        return None

    def key_fingerprint(self) -> str:
        return hashlib.sha256(self.public_key).hexdigest()

    # ---- what may be signed

    def problems(self, certname: str, pool_names: List[str], platform_tag: str) -> List[str]:
        """Why this must not become a pe_compiler certificate for ``certname`` (empty: it may).

        ``pool_names``: every name the pool answers to (agents' address, names agents move to
        or off, the NLB's own name), each an alt name of every compile master.
        """
        found = []
        if self.subject != [(OID_COMMON_NAME, self.common_name)] or self.common_name.lower() != certname:
            found.append(
                "its subject is {}, not CN={}".format(
                    ", ".join(f"{oid}={text!r}" for oid, text in self.subject) or "empty", certname
                )
            )
        if self.is_request:
            found.extend(self._attribute_problems())
        found.extend(self._extension_problems())
        others = [name for name in self.alt_names if " " in name]
        if others:
            found.append("it asks for alt names that are not DNS names: " + ", ".join(others))
        names = [name.lower() for name in self.dns_names]
        expected = {certname, "puppet", *pool_names}
        if self.is_request:
            wanted = sorted(expected)
            if sorted(names) != wanted:
                found.append(
                    "its alt names are {} (allowed: exactly {}, each once)".format(
                        sorted(names), ", ".join(wanted)
                    )
                )
        elif set(names) != expected or len(names) != len(set(names)):
            found.append(
                "its alt names are {} (allowed: {})".format(sorted(names), ", ".join(sorted(expected)))
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

    def _attribute_problems(self) -> List[str]:
        found = []
        counts: Dict[str, int] = {}
        for oid, values in self.attributes:
            counts[oid] = counts.get(oid, 0) + 1
            if oid not in (OID_EXTENSION_REQUEST, OID_INSTANCE_IDENTITY):
                found.append(f"it carries the attribute {oid}, which a compile master's request never has")
            elif len(values) != 1:
                found.append(f"its attribute {oid} has {len(values)} values, not one")
        if counts.get(OID_EXTENSION_REQUEST, 0) != 1:
            found.append(
                f"it has {counts.get(OID_EXTENSION_REQUEST, 0)} extension requests (allowed: exactly one)"
            )
        if counts.get(OID_INSTANCE_IDENTITY, 0) > 1:
            found.append("it carries the instance identity attribute more than once")
        return found

    def _extension_problems(self) -> List[str]:
        found = []
        seen: Set[str] = set()
        for oid, _ in self.extensions:
            if oid in seen:
                found.append(f"it asks for the extension {extension_name(oid)} more than once")
            seen.add(oid)
            if self.is_request and oid not in EXPECTED_EXTENSIONS:
                found.append(
                    f"it asks for the extension {extension_name(oid)}, which a compile master never needs"
                )
            elif oid.startswith(_AUTHORIZATION_ARC) and oid != OID_PP_AUTH_ROLE:
                found.append(f"it carries the {extension_name(oid)}, which a compile master never needs")
        return found
