"""Checks shared by the stack config and the components' own arguments.

Each raises ``ValueError`` with a message that names the setting, the value
given and what is allowed, so a user can fix it without reading code.
"""

import ipaddress
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pulumi

T = TypeVar("T")


def checked(value: Any, check: Callable[[Any], T]) -> "T | pulumi.Output[T]":
    """``check(value)`` now when the value is known (errors before anything is declared), else on
    the value once it resolves: a list given as one Output (``vpc.private_subnet_ids``) works."""
    if _known(value):
        return check(value)
    return pulumi.Output.from_input(value).apply(check)


def _known(value: Any) -> bool:
    if isinstance(value, pulumi.Output) or hasattr(value, "__await__"):
        return False
    if isinstance(value, dict):
        return all(_known(item) for item in value.values())
    if isinstance(value, list | tuple):
        return all(_known(item) for item in value)
    return True


_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$", re.IGNORECASE)


def int_in_range(key: str, value: object, low: int, high: int, why: str = "") -> int:
    """An int within [low, high]; bools are refused although Python counts them as ints."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key}={value!r} must be a whole number {low}..{high}")
    if not low <= value <= high:
        reason = f" ({why})" if why else ""
        raise ValueError(f"{key}={value} must be {low}..{high}{reason}")
    return value


def hostname(key: str, value: object) -> str:
    """A DNS name such as ``puppet.example.com`` (no scheme, port or path)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key}={value!r} must be a DNS name such as puppet.example.com")
    name = value[:-1] if value.endswith(".") else value
    if len(name) > 253 or not all(_DNS_LABEL.match(label) for label in name.split(".")):
        raise ValueError(
            f"{key}={value!r} must be a DNS name such as puppet.example.com "
            "(letters, digits and hyphens in dot-separated labels; no scheme, port or path)"
        )
    return name.lower()


def cidr(key: str, value: object) -> str:
    """An IPv4 or IPv6 network in CIDR form with no host bits set."""
    try:
        network = ipaddress.ip_network(str(value), strict=True)
    except ValueError:
        raise ValueError(
            f"{key} entry {value!r} must be a CIDR block such as 10.0.0.0/16 or 2001:db8::/32 "
            "(network address, no host bits)"
        ) from None
    if not isinstance(value, str) or "/" not in value:
        raise ValueError(f"{key} entry {value!r} must carry a prefix length, e.g. {network}")
    return str(network)


def cidr_list(key: str, values: object, *, allow_empty: bool = True, ipv4_only: bool = False) -> list[str]:
    """A list of CIDR blocks, each checked, none twice (AWS refuses a duplicate rule mid-update)."""
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise ValueError(f'{key}={values!r} must be a list of CIDR blocks, e.g. ["10.0.0.0/8"]')
    if not values and not allow_empty:
        raise ValueError(f'{key} must list at least one CIDR block, e.g. ["10.0.0.0/8"]')
    blocks = [cidr(key, value) for value in values]
    repeated = sorted({block for block in blocks if blocks.count(block) > 1})
    if repeated:
        raise ValueError(f"{key} lists {', '.join(repeated)} more than once; list each CIDR block once")
    if ipv4_only:
        ipv6 = [block for block in blocks if ipaddress.ip_network(block).version == 6]
        if ipv6:
            raise ValueError(
                f"{key} entry {ipv6[0]!r} is IPv6, but the load balancer is IPv4 only: agents reach it "
                "over IPv4; list IPv4 blocks"
            )
    return blocks


def not_the_internet(key: str, blocks: Sequence[str]) -> list[str]:
    """CIDR blocks that together do not cover all IPv4 or all IPv6 addresses (0.0.0.0/0 in pieces too)."""
    networks = [ipaddress.ip_network(block) for block in blocks]
    v4 = [network for network in networks if isinstance(network, ipaddress.IPv4Network)]
    v6 = [network for network in networks if isinstance(network, ipaddress.IPv6Network)]
    everything_v4, everything_v6 = ipaddress.IPv4Network("0.0.0.0/0"), ipaddress.IPv6Network("::/0")
    for everything, covered in (
        (everything_v4, everything_v4 in ipaddress.collapse_addresses(v4)),
        (everything_v6, everything_v6 in ipaddress.collapse_addresses(v6)),
    ):
        if covered:
            raise ValueError(
                f"{key}={list(blocks)} admits the whole internet ({everything}"
                f"{' in pieces' if everything not in networks else ''}); list your administrators' networks"
            )
    return list(blocks)


_ELB_TAG = re.compile(r"^[\w\s.:/=+\-@]*$")


def tags(key: str, value: object, reserved: int) -> dict[str, str]:
    """Tags every resource can carry: AWS's rules for load balancers are the strictest (EC2 allows more)."""
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(f"{key}={value!r} must map tag names to string values")
    limit = 50 - reserved
    if len(value) > limit:
        raise ValueError(
            f"{key} has {len(value)} tags; at most {limit} (AWS allows 50, pe-lb sets {reserved})"
        )
    for name, text in value.items():
        if not name or name.lower().startswith("aws:"):
            raise ValueError(f"{key} name {name!r} is not allowed (empty, or starting with aws:)")
        if len(name) > 128 or len(text) > 256:
            raise ValueError(f"{key} {name!r}: names are at most 128 characters, values 256")
        for part in (name, text):
            if not _ELB_TAG.match(part):
                raise ValueError(
                    f"{key} {name!r}: {part!r} has characters load balancer tags refuse; allowed are "
                    "letters, digits, spaces and _ . : / = + - @"
                )
    return dict(value)


def aws_id(key: str, value: object, prefix: str) -> str:
    """An AWS resource id such as ``subnet-0abc123``."""
    if not isinstance(value, str) or not re.fullmatch(rf"{prefix}-[0-9a-f]{{8,17}}", value):
        raise ValueError(f"{key}={value!r} must be an id of the form {prefix}-0123456789abcdef0")
    return value


def one_of(key: str, value: object, allowed: Sequence[str]) -> str:
    """One of a fixed set of strings."""
    if value not in allowed:
        raise ValueError(f"{key}={value!r} must be one of: {', '.join(allowed)}")
    return str(value)


def status_path(key: str, value: object) -> str:
    """An absolute URL path for the health check."""
    if not isinstance(value, str) or not value.startswith("/") or " " in value or len(value) > 1024:
        raise ValueError(f"{key}={value!r} must be an absolute URL path such as /status/v1/simple")
    return value
