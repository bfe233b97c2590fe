"""Checks shared by the stack config and the components' own arguments.

Each raises ``ValueError`` with a message that names the setting, the value
given and what is allowed, so a user can fix it without reading code.
"""

import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import pulumi

T = TypeVar("T")


def checked(value: Any, check: Callable[[Any], T]) -> "T | pulumi.Output[T]":
    """``check(value)`` now when the value is known (errors before anything is declared), else on
    the value once it resolves: a list given as one Output (``vpc.private_subnet_ids``) works."""
    if known(value):
        return check(value)
    return pulumi.Output.from_input(value).apply(check)


def known(value: Any) -> bool:
    if isinstance(value, pulumi.Output) or hasattr(value, "__await__"):
        return False
    if isinstance(value, dict):
        return all(known(item) for item in value.values())
    if isinstance(value, list | tuple):
        return all(known(item) for item in value)
    return True


# ASCII only: with re.IGNORECASE alone, [a-z] also matches U+017F (long s) and U+212A (Kelvin sign).
_DNS_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)", re.ASCII | re.IGNORECASE)

SHOWN_CHARACTERS = 60
"""How much of a bad value an error quotes: enough to recognise it, never a whole pasted file."""


def shown(value: object) -> str:
    """``repr(value)`` for an error message, cut to SHOWN_CHARACTERS (the full length said)."""
    text = repr(value)
    if len(text) <= SHOWN_CHARACTERS:
        return text
    size = (
        f"{len(value)} items" if isinstance(value, list | tuple | dict) else f"{len(str(value))} characters"
    )
    return f"{text[:SHOWN_CHARACTERS]}... ({size})"


_PLAIN_WORD = re.compile(r"[a-z0-9][a-z0-9@._-]{0,62}", re.ASCII)
"""A key type or a host name: a word that a secret (base64, PEM) never is."""


def described_secret(value: object) -> str:
    """A value that may hold a key, for an error: its length and, when it is a plain lower-case
    word (a key type, a host name), its first word; never its content."""
    if not isinstance(value, str):
        return f"<a {type(value).__name__}>"
    words = value.split()
    first = words[0] if words else ""
    if not _PLAIN_WORD.fullmatch(first):
        return f"<{len(value)} characters, not shown>"
    if first == value:
        return repr(first)
    return f"<{len(value)} characters starting {first!r}, the rest not shown>"


def character(char: str) -> str:
    """``U+000A (a control character)``: a character named in an error without printing it raw."""
    name = unicodedata.name(char, "") or "a control character"
    return f"U+{ord(char):04X} ({name})"


def int_in_range(key: str, value: object, low: int, high: int, why: str = "") -> int:
    """An int within [low, high]; bools are refused although Python counts them as ints."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key}={shown(value)} must be a whole number {low}..{high}")
    if not low <= value <= high:
        reason = f" ({why})" if why else ""
        raise ValueError(f"{key}={shown(value)} must be {low}..{high}{reason}")
    return value


def hostname(key: str, value: object) -> str:
    """A DNS name such as ``puppet.example.com`` (no scheme, port or path), in ASCII."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key}={shown(value)} must be a DNS name such as puppet.example.com")
    foreign = next((char for char in value if not char.isascii()), None)
    if foreign is not None:
        raise ValueError(
            f"{key}={shown(value)} has {character(foreign)}: a DNS name here is ASCII letters, digits and "
            "hyphens (write an internationalised name in its xn-- form)"
        )
    name = value[:-1] if value.endswith(".") else value
    if len(name) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in name.split(".")):
        raise ValueError(
            f"{key}={shown(value)} must be a DNS name such as puppet.example.com "
            "(letters, digits and hyphens in dot-separated labels; no scheme, port or path)"
        )
    return name.lower()


def cidr(key: str, value: object) -> str:
    """An IPv4 or IPv6 network in CIDR form with no host bits set."""
    try:
        network = ipaddress.ip_network(str(value), strict=True)
    except ValueError:
        raise ValueError(
            f"{key} entry {shown(value)} must be a CIDR block such as 10.0.0.0/16 or 2001:db8::/32 "
            "(network address, no host bits)"
        ) from None
    if not isinstance(value, str) or "/" not in value:
        raise ValueError(f"{key} entry {shown(value)} must carry a prefix length, e.g. {network}")
    if "%" in value:
        # ipaddress keeps an IPv6 scope (fe80::%eth0/64); a security group rule has none.
        raise ValueError(f"{key} entry {shown(value)} has a scope (%...); list the network alone")
    return str(network)


LOAD_BALANCER_IS_IPV4 = "the load balancer is IPv4 only: agents reach it over IPv4"


def cidr_list(
    key: str,
    values: object,
    *,
    allow_empty: bool = True,
    ipv4_only: bool = False,
    why_ipv4: str = LOAD_BALANCER_IS_IPV4,
) -> list[str]:
    """A list of CIDR blocks, each checked, none twice (AWS refuses a duplicate rule mid-update)."""
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise ValueError(f'{key}={shown(values)} must be a list of CIDR blocks, e.g. ["10.0.0.0/8"]')
    if not values and not allow_empty:
        raise ValueError(f'{key} must list at least one CIDR block, e.g. ["10.0.0.0/8"]')
    blocks = [cidr(key, value) for value in values]
    repeated = sorted({block for block in blocks if blocks.count(block) > 1})
    if repeated:
        raise ValueError(f"{key} lists {', '.join(repeated)} more than once; list each CIDR block once")
    if ipv4_only:
        ipv6 = [block for block in blocks if ipaddress.ip_network(block).version == 6]
        if ipv6:
            raise ValueError(f"{key} entry {ipv6[0]!r} is IPv6, but {why_ipv4}; list IPv4 blocks")
    return blocks


_NOT_PUBLIC_V4 = [
    ipaddress.IPv4Network(block)
    for block in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
]
"""IANA's special-purpose IPv4 blocks (this network, private, shared, loopback, link-local,
documentation, benchmarking, multicast, reserved): no administrator's SSH comes from the
internet through them. They do not overlap one another."""
_PUBLIC_V6 = ipaddress.IPv6Network("2000::/3")
"""Global unicast, the only IPv6 space the registries hand out; the rest is reserved, ULA,
link-local or multicast."""
_DOCUMENTATION_V6 = ipaddress.IPv6Network("2001:db8::/32")

MOST_PUBLIC_PREFIX = {4: 8, 6: 16}
"""The widest public block a set of administrators' networks may add up to: a /8 for IPv4 (the
largest block ever assigned to one organisation, a legacy class A), a /16 for IPv6 (above the
largest allocations to one organisation, around a /19, and below the /12s the registries hold).
More than that is a share of the internet, not someone's networks."""

_BITS = {4: 32, 6: 128}


def public_addresses(networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network], version: int) -> int:
    """How many public (globally routed) addresses of one IP version the networks admit together."""
    same = [network for network in networks if network.version == version]
    total = 0
    for network in ipaddress.collapse_addresses(same):  # type: ignore[type-var]
        if version == 4:
            total += network.num_addresses - sum(_overlap(network, block) for block in _NOT_PUBLIC_V4)
        elif network.overlaps(_PUBLIC_V6):
            inside = network if network.subnet_of(_PUBLIC_V6) else _PUBLIC_V6  # type: ignore[arg-type]
            total += inside.num_addresses - _overlap(inside, _DOCUMENTATION_V6)
    return total


def _overlap(
    one: ipaddress.IPv4Network | ipaddress.IPv6Network, other: ipaddress.IPv4Network | ipaddress.IPv6Network
) -> int:
    """Addresses two CIDR blocks share: CIDR blocks either nest or are apart."""
    if one.version != other.version or not one.overlaps(other):
        return 0
    return min(one.num_addresses, other.num_addresses)


def whole_internet(blocks: Iterable[str]) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """0.0.0.0/0 or ::/0 when the blocks together cover it, in one block or in pieces."""
    networks = [ipaddress.ip_network(block, strict=False) for block in blocks]
    for everything in (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")):
        same = [network for network in networks if network.version == everything.version]
        if everything in ipaddress.collapse_addresses(same):  # type: ignore[type-var]
            return everything
    return None


def too_many_public_addresses(blocks: Iterable[str]) -> tuple[int, int, int] | None:
    """(IP version, public addresses admitted, most allowed) when the blocks together admit more
    public addresses of one version than a block of MOST_PUBLIC_PREFIX holds."""
    networks = [ipaddress.ip_network(block, strict=False) for block in blocks]
    for version, prefix in MOST_PUBLIC_PREFIX.items():
        count, most = public_addresses(networks, version), 2 ** (_BITS[version] - prefix)
        if count > most:
            return version, count, most
    return None


def too_much_of_the_internet(blocks: Sequence[str]) -> str | None:
    """What the blocks together admit when it is more than one organisation's networks: the whole
    internet, or more public addresses than MOST_PUBLIC_PREFIX allows."""
    everything = whole_internet(blocks)
    if everything is not None:
        in_pieces = (
            "" if everything in [ipaddress.ip_network(b, strict=False) for b in blocks] else " in pieces"
        )
        return f"the whole internet ({everything}{in_pieces})"
    excess = too_many_public_addresses(blocks)
    if excess is not None:
        version, count, most = excess
        return (
            f"{count:,} public IPv{version} addresses, more than a /{MOST_PUBLIC_PREFIX[version]} holds "
            f"({most:,}): a share of the internet, not one organisation's networks"
        )
    return None


def not_the_internet(key: str, blocks: Sequence[str]) -> list[str]:
    """CIDR blocks that are someone's networks, not a share of the internet: together they admit
    at most a /8's worth of public IPv4 addresses and a /16's worth of public IPv6 ones
    (MOST_PUBLIC_PREFIX), whether in one block or in pieces. Private and other special-purpose
    blocks (10.0.0.0/8, fc00::/7, ...) are not counted."""
    admitted = too_much_of_the_internet(blocks)
    if admitted:
        raise ValueError(f"{key}={shown(list(blocks))} admits {admitted}; list your administrators' networks")
    return list(blocks)


_TAG_PUNCTUATION = frozenset("_.:/=+-@")


def _tag_refuses(text: str) -> str | None:
    """The first character load balancer tags refuse (their rule: letters, digits, separators
    and ``_ . : / = + - @``); line and paragraph separators and control characters never pass."""
    for char in text:
        if not (char.isalnum() or char in _TAG_PUNCTUATION or unicodedata.category(char) == "Zs"):
            return char
    return None


def tags(key: str, value: object, reserved: int) -> dict[str, str]:
    """Tags every resource can carry: AWS's rules for load balancers are the strictest (EC2 allows more)."""
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(f"{key}={shown(value)} must map tag names to string values")
    limit = 50 - reserved
    if len(value) > limit:
        raise ValueError(
            f"{key} has {len(value)} tags; at most {limit} (AWS allows 50, pe-lb sets {reserved})"
        )
    for name, text in value.items():
        if not name or name.lower().startswith("aws:"):
            raise ValueError(f"{key} name {shown(name)} is not allowed (empty, or starting with aws:)")
        if len(name) > 128 or len(text) > 256:
            raise ValueError(f"{key} {shown(name)}: names are at most 128 characters, values 256")
        for part in (name, text):
            refused = _tag_refuses(part)
            if refused is not None:
                raise ValueError(
                    f"{key} {shown(name)}: {shown(part)} has characters load balancer tags refuse; allowed "
                    f"are letters, digits, spaces and _ . : / = + - @ (found {character(refused)})"
                )
    return dict(value)


def aws_id(key: str, value: object, prefix: str) -> str:
    """An AWS resource id such as ``subnet-0abc123``."""
    if not isinstance(value, str) or not re.fullmatch(rf"{prefix}-[0-9a-f]{{8,17}}", value):
        raise ValueError(f"{key}={shown(value)} must be an id of the form {prefix}-0123456789abcdef0")
    return value


def one_of(key: str, value: object, allowed: Sequence[str]) -> str:
    """One of a fixed set of strings."""
    if value not in allowed:
        raise ValueError(f"{key}={shown(value)} must be one of: {', '.join(allowed)}")
    return str(value)


def status_path(key: str, value: object) -> str:
    """An absolute URL path for the health check: printable ASCII, no spaces, up to 1024 characters."""
    if (
        not isinstance(value, str)
        or not value.startswith("/")
        or not (value.isascii() and value.isprintable())
        or " " in value
        or len(value) > 1024
    ):
        raise ValueError(
            f"{key}={shown(value)} must be an absolute URL path such as /status/v1/simple "
            "(printable ASCII, no spaces, at most 1024 characters)"
        )
    return value
