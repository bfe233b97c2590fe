"""What poolctl accepts from its flags and from a stack's outputs, checked before any use.

Each check returns the value or raises ValueError with a message that quotes the value and says
what is allowed; the caller names the flag or output it came from.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from typing import Any
from urllib.parse import urlsplit

from .. import pe

INSTANCE_ID = re.compile(r"i-[0-9a-f]{8,17}")
LOAD_BALANCER_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?")
LOAD_BALANCER_ARN = re.compile(
    r"arn:aws[a-z-]*:elasticloadbalancing:([a-z]{2}(?:-[a-z]+)+-\d{1,2}):\d{12}:"
    r"loadbalancer/(?:net|app|gwy)/[A-Za-z0-9-]{1,32}/[A-Za-z0-9]+"
)
REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-\d{1,2}")
ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")
STACK = re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+){0,2}")
"""A stack name as `pulumi --stack` takes it: stack, project/stack or org/project/stack."""
POOL = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/[^\s/][^\s]{0,200}")
"""pe.pool_identity: project and stack as Pulumi spells them, then the component's name."""
HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


def _matching(pattern: re.Pattern[str], value: Any, what: str) -> str:
    """``value`` when it is a string ``pattern`` matches whole; else ValueError: it is not ``what``."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"{value!r} is not {what}")
    return value


def instance_id(value: str) -> str:
    return _matching(INSTANCE_ID, value, "an EC2 instance id (i-0123456789abcdef0)")


def load_balancer(value: str) -> str:
    if not (LOAD_BALANCER_NAME.fullmatch(value) or LOAD_BALANCER_ARN.fullmatch(value)):
        raise ValueError(
            f"{value!r} is neither a load balancer name (1 to 32 letters, digits and hyphens) nor a "
            "load balancer ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:loadbalancer/net/NAME/ID)"
        )
    return value


def load_balancer_arn(value: Any) -> str:
    return _matching(
        LOAD_BALANCER_ARN,
        value,
        "a load balancer ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:loadbalancer/net/NAME/ID)",
    )


def arn_region(arn: str) -> str:
    match = LOAD_BALANCER_ARN.fullmatch(arn)
    return match.group(1) if match else ""


def region(value: str) -> str:
    return _matching(REGION, value, "an AWS region name (e.g. eu-west-1)")


def role_arn(value: str) -> str:
    return _matching(ROLE_ARN, value, "an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)")


def profile(value: str) -> str:
    if not value or not value.isprintable():
        raise ValueError(f"{value!r} is not an AWS profile name")
    return value


def stack(value: str) -> str:
    return _matching(STACK, value, "a Pulumi stack name (STACK, PROJECT/STACK or ORG/PROJECT/STACK)")


def pool(value: Any) -> str:
    return _matching(
        POOL,
        value,
        f"a pool identity: the {pe.POOL_TAG} tag's value, PROJECT/STACK/COMPONENT (e.g. pe-lb/dev/pe-lb)",
    )


def endpoint_url(value: str) -> str:
    problem = f"{value!r} is not an http:// or https:// URL (e.g. http://127.0.0.1:5000)"
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        raise ValueError(problem) from None
    printable = value.isprintable() and not any(character.isspace() for character in value)
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok or not printable:
        raise ValueError(problem)
    return value


def stats_url(value: str) -> str:
    """An http:// or https:// URL with ``{address}`` where an HAProxy's private IP goes."""
    if "{address}" not in value:
        raise ValueError(f"{value!r} has no {{address}} for the HAProxy's private IP")
    endpoint_url(value.replace("{address}", "192.0.2.1"))
    return value


def host(value: Any) -> str:
    """A DNS name or an IP address: what goes into a URL, a TLS server name and a Host header."""
    if not isinstance(value, str) or not (_is_ip_address(value) or _is_dns_name(value)):
        raise ValueError(f"{value!r} is not a DNS name or an IP address")
    return value


def _is_ip_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_dns_name(value: str) -> bool:
    name = value.removesuffix(".")
    return 0 < len(name) <= 253 and all(HOST_LABEL.fullmatch(label) for label in name.split("."))


def port(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 65535:
        raise ValueError(f"{value!r} is not a TCP port (1..65535)")
    return int(value)


def ca_file(value: str) -> str:
    """A file of PEM certificates that TLS can verify against (read now, so a bad one fails early)."""
    if not value:
        raise ValueError("'' is not a file")
    try:
        context = ssl.create_default_context(cafile=value)
    except (OSError, ssl.SSLError, ValueError) as error:
        reason = getattr(error, "strerror", None) or getattr(error, "reason", None) or str(error)
        raise ValueError(f"{value!r} is not a readable file of PEM certificates ({reason})") from None
    if not context.cert_store_stats()["x509"]:
        raise ValueError(f"{value!r} holds no certificate")
    return value


def instance_ids(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(i, str) and INSTANCE_ID.fullmatch(i) for i in value):
        raise ValueError(f"{value!r} is not a list of EC2 instance ids")
    return value
