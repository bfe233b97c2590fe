"""Proof that a certificate request came from the EC2 instance it names.

The bootstrap puts the instance's identity document, with AWS's PKCS#7 signature as
IMDSv2 serves it, in an attribute of its request. Only software on that instance can
read it; AWS's signature makes it unforgeable. The primary checks the signature
against AWS's published certificate for the region, and that the document names the
instance, account and region of the join, and a launch no older than allowed.
"""

import calendar
import time
from typing import List, Optional

from .aws_certificates import certificates_for
from .certificate import CertificateData
from .constants import OID_INSTANCE_IDENTITY
from .files import read_text
from .instance_identity import IdentityError, verify


def identity_problems(
    request: CertificateData,
    *,
    instance_id: str,
    account_id: str,
    region: str,
    certificates_path: str,
    max_age_seconds: float,
    now: Optional[float] = None,
) -> List[str]:
    """Why ``request`` is not proven to come from ``instance_id`` (empty: it is)."""
    signed = request.attribute_text(OID_INSTANCE_IDENTITY)
    if not signed:
        return [
            f"it carries no instance identity document (attribute {OID_INSTANCE_IDENTITY}): "
            f"it was not made by pe-lb's bootstrap on instance {instance_id}"
        ]
    try:
        certificates = read_text(certificates_path) if certificates_path else certificates_for(region)
    except OSError as error:
        return [f"cannot read the identity certificates {certificates_path}: {error.strerror}"]
    try:
        document = verify(signed, certificates)
    except IdentityError as error:
        return [f"its instance identity document is not AWS's: {error}"]
    found = []
    for key, expected in (("instanceId", instance_id), ("accountId", account_id), ("region", region)):
        if document.get(key) != expected:
            found.append(
                f"its identity document names {key} {str(document.get(key))[:40]!r}, not {expected!r}"
            )
    launched = _epoch(str(document.get("pendingTime", "")))
    now = time.time() if now is None else now
    if launched is None:
        found.append("its identity document has no readable pendingTime (launch time)")
    elif launched > now + 300:
        found.append(f"its identity document's launch time {document['pendingTime']} is in the future")
    elif now - launched > max_age_seconds:
        found.append(
            "its identity document's launch time {} is older than {:.0f} s: an old document is not "
            "proof of a fresh bootstrap".format(document["pendingTime"], max_age_seconds)
        )
    return found


def _epoch(timestamp: str) -> Optional[float]:
    try:
        return float(calendar.timegm(time.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None
