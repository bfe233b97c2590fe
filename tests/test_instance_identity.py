"""components/scripts/pe_primary/instance_identity.py: EC2 identity signatures, checked like openssl does."""

import base64
import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from glob import glob
from pathlib import Path

import pytest

from components.scripts.pe_primary import aws_certificates, der
from components.scripts.pe_primary.instance_identity import NO_MATCH, IdentityError, verify
from tests.aws_identity import FakeAws, document_bytes, identity_document, openssl

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "components" / "scripts" / "pe_primary"
INSTANCE_ID = "i-0a1b2c3d4e5f60718"
REGION = "eu-west-1"
ACCOUNT_ID = "123456789012"
PENDING_TIME = "2026-12-02T06:00:00Z"

# A real /instance-identity/pkcs7 (us-west-2, 2017), as published in istio/istio's
# security/pkg/platform/aws_test.go: signed by AWS's generic DSA certificate.
REAL_AWS_PKCS7 = (
    "MIAGCSqGSIb3DQEHAqCAMIACAQExCzAJBgUrDgMCGgUAMIAGCSqGSIb3DQEHAaCAJIAEggGvewog"
    "ICJkZXZwYXlQcm9kdWN0Q29kZXMiIDogbnVsbCwKICAicHJpdmF0ZUlwIiA6ICIxMC4xNi4xNy4y"
    "NDgiLAogICJhdmFpbGFiaWxpdHlab25lIiA6ICJ1cy13ZXN0LTJiIiwKICAidmVyc2lvbiIgOiAi"
    "MjAxMC0wOC0zMSIsCiAgImluc3RhbmNlSWQiIDogImktMDY0NmM5ZWZlMmU2MmRjNjMiLAogICJi"
    "aWxsaW5nUHJvZHVjdHMiIDogbnVsbCwKICAiaW5zdGFuY2VUeXBlIiA6ICJjMy5sYXJnZSIsCiAg"
    "ImFjY291bnRJZCIgOiAiOTc3Nzc3NjU3NjExIiwKICAiYXJjaGl0ZWN0dXJlIiA6ICJ4ODZfNjQi"
    "LAogICJrZXJuZWxJZCIgOiBudWxsLAogICJyYW1kaXNrSWQiIDogbnVsbCwKICAiaW1hZ2VJZCIg"
    "OiAiYW1pLWZhYmY1YzgyIiwKICAicGVuZGluZ1RpbWUiIDogIjIwMTctMDgtMjdUMTc6MTg6MjBa"
    "IiwKICAicmVnaW9uIiA6ICJ1cy13ZXN0LTIiCn0AAAAAAAAxggEXMIIBEwIBATBpMFwxCzAJBgNV"
    "BAYTAlVTMRkwFwYDVQQIExBXYXNoaW5ndG9uIFN0YXRlMRAwDgYDVQQHEwdTZWF0dGxlMSAwHgYD"
    "VQQKExdBbWF6b24gV2ViIFNlcnZpY2VzIExMQwIJAJa6SNnlXhpnMAkGBSsOAwIaBQCgXTAYBgkq"
    "hkiG9w0BCQMxCwYJKoZIhvcNAQcBMBwGCSqGSIb3DQEJBTEPFw0xNzA4MjcxNzE4MjRaMCMGCSqG"
    "SIb3DQEJBDEWBBT/JZmQFucrfvwLw54W9uifbbXfMDAJBgcqhkjOOAQDBC4wLAIUeWe3iWxCp7Dv"
    "hqssNI4P1pjVxBwCFFLyWgwduQHC8uZQNc49icJDXvziAAAAAAAA"
)
# What IMDS's pkcs7 starts with: BER indefinite lengths, SHA-1, data embedded in chunks.
AWS_PREFIX = "MIAGCSqGSIb3DQEHAqCAMIACAQExCzAJBgUrDgMCGgUAMIAGCSqGSIb3DQEHAaCAJIAE"


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> FakeAws:
    return FakeAws(tmp_path_factory.mktemp("aws"), serial=0x96BA48D9E55E1A67)


@pytest.fixture(scope="module")
def impostor(tmp_path_factory: pytest.TempPathFactory) -> FakeAws:
    """Same issuer name and serial number as ``aws``, another key."""
    return FakeAws(tmp_path_factory.mktemp("impostor"), serial=0x96BA48D9E55E1A67)


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> FakeAws:
    """Same issuer name, another serial number and key."""
    return FakeAws(tmp_path_factory.mktemp("stranger"), serial=42)


@pytest.fixture(scope="module")
def good(aws: FakeAws) -> str:
    return aws.pkcs7(INSTANCE_ID, REGION, ACCOUNT_ID, PENDING_TIME)


def decoded(pkcs7: str) -> bytes:
    return base64.b64decode(pkcs7)


def encoded(data: bytes) -> str:
    return base64.b64encode(data).decode()


def tamper_content(pkcs7: str) -> str:
    data = decoded(pkcs7)
    field = f'"instanceId" : "{INSTANCE_ID}"'.encode()
    assert data.count(field) == 1
    return encoded(data.replace(field, field.replace(b"i-0", b"i-f")))


def tamper_signature(pkcs7: str) -> str:
    """Flip the last byte of the signature's s, leaving the structure valid."""
    data = decoded(pkcs7)
    signer = der.children(der.children(der.children(der.one(data, der.SEQUENCE))[1][1])[0][1])
    signature = der.expect(der.children(signer[-1][1])[0], der.SEQUENCE)
    assert data.count(signature) == 1
    end = data.index(signature) + len(signature)
    return encoded(data[: end - 1] + bytes([data[end - 1] ^ 0x01]) + data[end:])


def openssl_verifies(pkcs7: str, certificate_pem: str, tmp_path: Path) -> bool:
    """``openssl smime -verify`` with only ``certificate_pem`` as candidate signers, no chain check."""
    (tmp_path / "p7.der").write_bytes(decoded(pkcs7))
    (tmp_path / "signer.pem").write_text(certificate_pem)
    command: list[str | Path] = ["openssl", "smime", "-verify", "-noverify", "-nointern", "-inform", "DER"]
    command += ["-in", tmp_path / "p7.der", "-certfile", tmp_path / "signer.pem", "-out", os.devnull]
    result = subprocess.run(command, capture_output=True, check=False)
    return result.returncode == 0


def we_verify(pkcs7: str, certificate_pem: str) -> bool:
    try:
        verify(pkcs7, certificate_pem)
    except IdentityError:
        return False
    return True


def test_a_fake_aws_signature_verifies_and_returns_the_document(aws: FakeAws, good: str) -> None:
    assert good.startswith(AWS_PREFIX), "FakeAws signs in AWS's shape (BER, SHA-1, embedded document)"
    assert verify(good, aws.certificate_pem) == identity_document(
        INSTANCE_ID, REGION, ACCOUNT_ID, PENDING_TIME
    )


def test_a_real_aws_signature_verifies_against_the_published_certificate() -> None:
    document = verify(REAL_AWS_PKCS7, aws_certificates.certificates_for("us-west-2"))
    assert document["instanceId"] == "i-0646c9efe2e62dc63"
    assert document["region"] == "us-west-2"
    assert document["accountId"] == "977777657611"
    with pytest.raises(IdentityError, match="no signer certificate matches"):
        verify(REAL_AWS_PKCS7, aws_certificates.certificates_for("ap-east-1"))
    with pytest.raises(IdentityError, match="message digest does not match"):
        verify(
            encoded(decoded(REAL_AWS_PKCS7).replace(b"c3.large", b"c3.small")),
            aws_certificates.OTHER_REGIONS.pem,
        )


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("good", True),
        ("tampered content", False),
        ("tampered signature", False),
        ("impostor", False),
        ("stranger", False),
        ("real AWS", True),
        ("real AWS tampered", False),
    ],
)
def test_openssl_and_we_agree(
    case: str, expected: bool, aws: FakeAws, impostor: FakeAws, stranger: FakeAws, good: str, tmp_path: Path
) -> None:
    pkcs7, certificate = {
        "good": (good, aws.certificate_pem),
        "tampered content": (tamper_content(good), aws.certificate_pem),
        "tampered signature": (tamper_signature(good), aws.certificate_pem),
        "impostor": (good, impostor.certificate_pem),
        "stranger": (good, stranger.certificate_pem),
        "real AWS": (REAL_AWS_PKCS7, aws_certificates.OTHER_REGIONS.pem),
        "real AWS tampered": (tamper_signature(REAL_AWS_PKCS7), aws_certificates.OTHER_REGIONS.pem),
    }[case]
    assert openssl_verifies(pkcs7, certificate, tmp_path) is expected
    assert we_verify(pkcs7, certificate) is expected


def pkcs7_data(aws: FakeAws) -> str:
    """A ContentInfo of type data: PKCS#7, but not signed."""
    (aws.dir / "plain.json").write_bytes(b"{}")
    return encoded(openssl("cms", "-data_create", "-in", aws.dir / "plain.json", "-outform", "DER"))


def detached(aws: FakeAws) -> str:
    (aws.dir / "detached.json").write_bytes(b"{}")
    pem = openssl(
        "smime", "-sign", "-binary", "-md", "sha1", "-nocerts", "-nosmimecap", "-outform", "PEM",
        "-signer", aws.certificate_path, "-inkey", aws.key_path, "-in", aws.dir / "detached.json",
    )  # fmt: skip
    return "".join(line for line in pem.decode().splitlines() if not line.startswith("-----"))


FAILURES: list[tuple[str, Callable[[FakeAws, FakeAws, str], tuple[str, str]], str]] = [
    (
        "tampered content",
        lambda aws, _, good: (tamper_content(good), aws.certificate_pem),
        "message digest does not",
    ),
    ("tampered signature", lambda aws, _, good: (tamper_signature(good), aws.certificate_pem), NO_MATCH),
    ("wrong key", lambda _, impostor, good: (good, impostor.certificate_pem), NO_MATCH),
    (
        "two signers",
        lambda aws, impostor, _: (aws.sign(b"{}", co_signer=impostor), aws.certificate_pem),
        "has 2 signers, not one",
    ),
    ("garbage base64", lambda aws, _, __: ("not*base64!", aws.certificate_pem), "is not base64"),
    ("not ASCII", lambda aws, _, __: ("MIAG\u00e9", aws.certificate_pem), "is not base64"),
    ("empty", lambda aws, _, __: ("", aws.certificate_pem), "not a PKCS#7 structure"),
    (
        "truncated DER",
        lambda aws, _, good: (encoded(decoded(good)[:300]), aws.certificate_pem),
        "not a PKCS#7 structure: truncated DER",
    ),
    ("not signedData", lambda aws, _, __: (pkcs7_data(aws), aws.certificate_pem), "is not PKCS#7 signedData"),
    ("detached", lambda aws, _, __: (detached(aws), aws.certificate_pem), "does not embed the document"),
    ("not JSON", lambda aws, _, __: (aws.sign(b"\xff{"), aws.certificate_pem), "document is not JSON"),
    ("a JSON list", lambda aws, _, __: (aws.sign(b"[]"), aws.certificate_pem), "not a JSON object"),
    ("no certificate", lambda _, __, good: (good, ""), "no certificate to verify"),
    (
        "a bad certificate",
        lambda aws, _, good: (good, aws.certificate_pem.replace("MII", "MIJ", 1)),
        "cannot read the identity signer certificates",
    ),
]


@pytest.mark.parametrize(("case", "make", "reason"), FAILURES, ids=[case for case, _, _ in FAILURES])
def test_each_failure_has_its_reason(
    case: str,
    make: Callable[[FakeAws, FakeAws, str], tuple[str, str]],
    reason: str,
    aws: FakeAws,
    impostor: FakeAws,
    good: str,
) -> None:
    pkcs7, certificates = make(aws, impostor, good)
    with pytest.raises(IdentityError) as raised:
        verify(pkcs7, certificates)
    assert reason in str(raised.value)
    assert "\n" not in str(raised.value)


def test_other_encodings_and_algorithms_verify(tmp_path: Path, aws: FakeAws, impostor: FakeAws) -> None:
    content = document_bytes(identity_document(INSTANCE_ID, REGION, ACCOUNT_ID, PENDING_TIME))
    signers = {
        "DSA SHA-256 (H truncated to q)": FakeAws(tmp_path / "dsa256", digest="sha256"),
        "RSA SHA-256": FakeAws(tmp_path / "rsa256", algorithm="rsa", digest="sha256"),
        "RSA SHA-1": FakeAws(tmp_path / "rsa1", algorithm="rsa", digest="sha1"),
    }
    for name, signer in signers.items():
        for pkcs7 in (signer.sign(content), signer.sign(content, stream=False)):
            assert verify(pkcs7, signer.certificate_pem)["instanceId"] == INSTANCE_ID, name
            assert openssl_verifies(tamper_signature(pkcs7), signer.certificate_pem, tmp_path) is False
            with pytest.raises(IdentityError, match=NO_MATCH):
                verify(tamper_signature(pkcs7), signer.certificate_pem)
    # DER instead of BER, and a signature over the content itself (no signed attributes)
    assert verify(aws.sign(content, stream=False), aws.certificate_pem)["accountId"] == ACCOUNT_ID
    bare = aws.sign(content, attributes=False)
    assert verify(bare, aws.certificate_pem)["region"] == REGION
    assert openssl_verifies(tamper_content(bare), aws.certificate_pem, tmp_path) is False
    with pytest.raises(IdentityError, match=NO_MATCH):
        verify(tamper_content(bare), aws.certificate_pem)
    # several candidate certificates: the one whose key verifies wins
    both = impostor.certificate_pem + aws.certificate_pem
    assert verify(aws.pkcs7(INSTANCE_ID, REGION, ACCOUNT_ID), both)["instanceId"] == INSTANCE_ID


def test_no_truncation_or_flipped_byte_raises_anything_but_identity_error(aws: FakeAws, good: str) -> None:
    data = decoded(good)
    for end in range(len(data)):
        with pytest.raises(IdentityError):
            verify(encoded(data[:end]), aws.certificate_pem)
    for index in range(len(data)):
        for mask in (0x01, 0x80):
            with contextlib.suppress(IdentityError):
                verify(
                    encoded(data[:index] + bytes([data[index] ^ mask]) + data[index + 1 :]),
                    aws.certificate_pem,
                )


def test_der_reads_strictly() -> None:
    assert der.read(b"\x30\x03\x02\x01\x05") == (0x30, b"\x02\x01\x05", 0, 5)
    assert der.children(b"\x02\x01\xff\x05\x00") == [
        (0x02, b"\xff", b"\x02\x01\xff"),
        (0x05, b"", b"\x05\x00"),
    ]
    assert der.integer(b"\xff") == -1
    assert der.unsigned(b"\x00\x96\xba") == 0x96BA
    assert der.oid(bytes.fromhex("551d11")) == "2.5.29.17"
    assert der.oid(bytes.fromhex("2a864886f70d01090e")) == "1.2.840.113549.1.9.14"
    assert der.oid(bytes.fromhex("883703")) == "2.999.3"
    assert der.octet_string(0x24, b"\x04\x02ab\x04\x01c") == b"abc"
    indefinite = b"\x30\x80\x02\x01\x01\x00\x00"
    assert der.read(indefinite) == (0x30, b"\x02\x01\x01", 0, 7)
    for bad, reason in [
        (b"\x30", "truncated DER"),
        (b"\x30\x05\x02\x01", "truncated DER"),
        (b"\x30\x82\x01", "truncated or oversized"),
        (b"\x1f\x01\x00", "multi-byte DER tags"),
        (b"\x30\x81\x05" + bytes(5), "non-minimal DER length"),
        (b"\x04\x80\x00\x00", "indefinite length on a primitive"),
        (b"\x30\x80\x02\x01\x01", "truncated DER"),
        (b"\x30\x80" * 40 + b"\x00\x00" * 40, "nested too deeply"),
    ]:
        with pytest.raises(ValueError, match=reason):
            der.children(bad)
    with pytest.raises(ValueError, match="truncated OBJECT IDENTIFIER"):
        der.oid(b"\x2a\x86")
    with pytest.raises(ValueError, match="expected one DER element"):
        der.one(b"\x05\x00\x05\x00", der.NULL)
    with pytest.raises(ValueError, match="bad base64"):
        der.pem_blocks("-----BEGIN X-----\n!!\n-----END X-----", "X")
    text = "-----BEGIN X-----\nBQA=\n-----END X-----\n-----BEGIN Y-----\nAgEB\n-----END Y-----\n" * 2
    assert der.pem_blocks(text, "X") == [b"\x05\x00", b"\x05\x00"]


def test_aws_certificates_are_the_published_x509_certificates(tmp_path: Path) -> None:
    for certificate in aws_certificates.AWS_DSA_CERTIFICATES:
        path = tmp_path / "aws.pem"
        path.write_text(certificate.pem)
        text = openssl("x509", "-in", path, "-noout", "-subject", "-enddate").decode()
        assert "O = Amazon Web Services LLC" in text, certificate.covers
        # self-signed: the signature checks only if the text was copied exactly
        openssl("verify", "-auth_level", "0", "-CAfile", path, path)
    assert aws_certificates.OTHER_REGIONS.pem == aws_certificates.GOVCLOUD.pem
    for region, expected in [
        ("us-east-1", aws_certificates.OTHER_REGIONS),
        ("eu-west-1", aws_certificates.OTHER_REGIONS),
        ("ap-east-1", aws_certificates.HONG_KONG),
        ("me-south-1", aws_certificates.BAHRAIN),
        ("us-gov-west-1", aws_certificates.GOVCLOUD),
        ("us-gov-east-1", aws_certificates.GOVCLOUD),
        ("cn-north-1", aws_certificates.CHINA),
        ("cn-northwest-1", aws_certificates.CHINA),
        ("xx-future-1", aws_certificates.OTHER_REGIONS),
    ]:
        assert aws_certificates.certificates_for(region) == expected.pem, region


PYTHON36 = sorted(glob("/root/.pyenv/versions/3.6*/bin/python3.6")) or [shutil.which("python3.6") or ""]

PY36_SCRIPT = """
import json, sys
from pe_primary import aws_certificates
from pe_primary.instance_identity import IdentityError, verify
cases = json.load(open(sys.argv[1]))
out = []
for pkcs7, pem in cases:
    try:
        out.append(verify(pkcs7, pem or aws_certificates.certificates_for("us-west-2")))
    except IdentityError as error:
        out.append(str(error))
print(json.dumps(out))
"""


@pytest.mark.skipif(not PYTHON36[-1], reason="no Python 3.6 interpreter")
def test_verify_runs_on_python_3_6(tmp_path: Path, aws: FakeAws, good: str) -> None:
    package = tmp_path / "pe_primary"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for module in ("der.py", "instance_identity.py", "aws_certificates.py"):
        shutil.copy(PACKAGE_DIR / module, package / module)
    cases = [
        [good, aws.certificate_pem],
        [REAL_AWS_PKCS7, ""],
        [tamper_signature(good), aws.certificate_pem],
        [encoded(decoded(good)[:100]), aws.certificate_pem],
    ]
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    env = {
        name: value for name, value in os.environ.items() if not name.startswith(("LANG", "LC_", "PYTHON"))
    }
    result = subprocess.run(
        [PYTHON36[-1], "-c", PY36_SCRIPT, tmp_path / "cases.json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (
        "3.6"
        in subprocess.run([PYTHON36[-1], "--version"], capture_output=True, text=True, check=True).stdout
    )
    expected = [verify(good, aws.certificate_pem), verify(REAL_AWS_PKCS7, aws_certificates.OTHER_REGIONS.pem)]
    assert json.loads(result.stdout) == [*expected, NO_MATCH, json.loads(result.stdout)[3]]
    assert json.loads(result.stdout)[3].startswith(
        "the instance identity signature is not a PKCS#7 structure"
    )
