"""The names the script is given, checked before they reach a URL, a file or a command."""

import math
import re
from typing import Tuple

from .common import StepError

_CERTNAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\Z")
_DNS_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)\Z")
_INSTANCE_ARN = re.compile(
    r"arn:aws(?:-cn|-us-gov)?:ec2:([a-z]{2}(?:-gov)?-[a-z]+-\d):(\d{12}):instance/(i-[0-9a-f]{8,17})\Z"
)


def certname(value: str) -> str:
    """A certname as Puppet allows one (lower-case letters, digits, '.', '-', '_')."""
    if len(value) > 255 or not _CERTNAME.match(value):
        raise StepError(
            f"certname {value[:80]!r} is not one Puppet allows (lower-case letters, digits, "
            "'.', '-' and '_', dot-separated, at most 255 characters)"
        )
    return value


def dns_name(what: str, value: str) -> str:
    """A DNS name such as the pool address (lower-case ASCII labels)."""
    name = value.rstrip(".")
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_DNS_LABEL.match(label) for label in labels):
        raise StepError(f"{what} {value[:80]!r} is not a DNS name (lower-case letters, digits and '-')")
    return name


def seconds(value: str) -> float:
    """A finite, non-negative number of seconds (argparse type)."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number < 0:
        raise StepError(f"{value[:40]!r} is not a finite number of seconds, 0 or more")
    return number


def instance_arn(value: str) -> Tuple[str, str, str]:
    """(region, account id, instance id) of an EC2 instance ARN."""
    match = _INSTANCE_ARN.match(value)
    if not match:
        raise StepError(
            f"--instance-arn {value[:120]!r} is not an EC2 instance ARN "
            "(arn:aws:ec2:REGION:ACCOUNT:instance/i-...)"
        )
    region, account, instance_id = match.groups()
    return region, account, instance_id


def instance_certname(instance_id: str, region: str) -> str:
    """The instance's resource-name hostname, pe-lb's certname for it (EC2's naming)."""
    domain = "ec2.internal" if region == "us-east-1" else region + ".compute.internal"
    return f"{instance_id}.{domain}"
