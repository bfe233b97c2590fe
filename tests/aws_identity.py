"""A stand-in for AWS's instance identity signer: EC2's `/instance-identity/pkcs7`, made in the test.

AWS signs the identity document (pretty-printed JSON) with a DSA-1024 key and SHA-1 into a
PKCS#7 signedData that embeds the document, carries authenticated attributes (contentType,
signingTime, messageDigest) and no certificate, BER-encoded with indefinite lengths. The
`openssl smime` call below makes exactly that shape (its first bytes equal AWS's), with a
self-signed test certificate named like AWS's ("Amazon Web Services LLC", Seattle).
"""

import datetime
import json
import subprocess
from pathlib import Path
from typing import Any

AWS_SUBJECT = "/C=US/ST=Washington State/L=Seattle/O=Amazon Web Services LLC"


def openssl(*args: str | Path) -> bytes:
    """Run the openssl CLI; its standard output, or AssertionError with its error text."""
    result = subprocess.run(["openssl", *map(str, args)], capture_output=True, check=False)
    assert result.returncode == 0, f"openssl {args[0]} failed: {result.stderr.decode(errors='replace')}"
    return result.stdout


def identity_document(
    instance_id: str, region: str, account_id: str, pending_time: str | None = None, **overrides: Any
) -> dict[str, Any]:
    """An instance identity document shaped like AWS's (its keys, in its order)."""
    if pending_time is None:
        pending_time = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    document: dict[str, Any] = {
        "accountId": account_id,
        "architecture": "x86_64",
        "availabilityZone": f"{region}a",
        "billingProducts": None,
        "devpayProductCodes": None,
        "marketplaceProductCodes": None,
        "imageId": "ami-0123456789abcdef0",
        "instanceId": instance_id,
        "instanceType": "m5.large",
        "kernelId": None,
        "pendingTime": pending_time,
        "privateIp": "10.0.1.23",
        "ramdiskId": None,
        "region": region,
        "version": "2017-09-30",
    }
    document.update(overrides)
    return document


def document_bytes(document: dict[str, Any]) -> bytes:
    """The document as IMDS serves it: two-space indent, `"key" : value`."""
    return json.dumps(document, indent=2, separators=(",", " : ")).encode()


class FakeAws:
    """A DSA signer certificate and key standing in for AWS's, kept in ``tmp_dir``.

    ``algorithm`` "dsa" (1024-bit p, 160-bit q, like AWS's) or "rsa" (2048);
    ``digest`` "sha1" (AWS's) or "sha256"; ``serial`` fixes the certificate's serial
    number (two FakeAws with one serial share issuer and serial but not the key).
    """

    def __init__(
        self, tmp_dir: Path, algorithm: str = "dsa", digest: str = "sha1", serial: int | None = None
    ):
        self.dir = tmp_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.digest = digest
        self.key_path = self.dir / "aws-identity-key.pem"
        self.certificate_path = self.dir / "aws-identity-cert.pem"
        if algorithm == "dsa":
            params = self.dir / "aws-identity-dsa-params.pem"
            openssl(
                "genpkey",
                "-genparam",
                "-algorithm",
                "DSA",
                "-pkeyopt",
                "dsa_paramgen_bits:1024",
                "-pkeyopt",
                "dsa_paramgen_q_bits:160",
                "-out",
                params,
            )
            openssl("genpkey", "-paramfile", params, "-out", self.key_path)
        elif algorithm == "rsa":
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", self.key_path)
        else:
            raise ValueError(f"unknown algorithm {algorithm}")
        serial_args = ["-set_serial", str(serial)] if serial is not None else []
        openssl(
            "req",
            "-x509",
            "-new",
            "-key",
            self.key_path,
            "-subj",
            AWS_SUBJECT,
            "-days",
            "36500",
            "-sha256",
            *serial_args,
            "-out",
            self.certificate_path,
        )
        self.certificate_pem = self.certificate_path.read_text()

    def pkcs7(
        self,
        instance_id: str,
        region: str,
        account_id: str,
        pending_time: str | None = None,
        **overrides: Any,
    ) -> str:
        """The base64 (no whitespace) PKCS#7 over an identity document, as IMDS serves it."""
        document = identity_document(instance_id, region, account_id, pending_time, **overrides)
        return self.sign(document_bytes(document))

    def sign(
        self,
        content: bytes,
        *,
        co_signer: "FakeAws | None" = None,
        stream: bool = True,
        attributes: bool = True,
    ) -> str:
        """Base64 PKCS#7 signedData over ``content``, as AWS makes it.

        ``stream=False`` gives DER instead of BER; ``attributes=False`` signs the content
        itself, without authenticated attributes; ``co_signer`` adds a second SignerInfo.
        """
        options = ["-md", self.digest, "-nocerts", "-nosmimecap"]
        options += ["-stream"] if stream else []
        options += [] if attributes else ["-noattr"]
        signers: list[str | Path] = ["-signer", self.certificate_path, "-inkey", self.key_path]
        if co_signer is not None:
            signers += ["-signer", co_signer.certificate_path, "-inkey", co_signer.key_path]
        content_path = self.dir / "identity-document.json"
        content_path.write_bytes(content)
        pem = openssl(
            "smime",
            "-sign",
            "-nodetach",
            "-binary",
            *options,
            "-outform",
            "PEM",
            *signers,
            "-in",
            content_path,
        )
        return "".join(line.strip() for line in pem.decode().splitlines() if not line.startswith("-----"))
