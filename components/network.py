"""Security-group rules the components share: one rule resource per source and port."""

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from . import pe, validation


def ingress_from_cidr(
    resource_name: str,
    *,
    security_group_id: pulumi.Input[str],
    port: int,
    cidr: str,
    description: str,
    parent: pulumi.Resource,
    aliases: Sequence[pulumi.Alias] = (),
) -> aws.vpc.SecurityGroupIngressRule:
    """Admit TCP ``port`` from ``cidr`` (IPv4 or IPv6)."""
    family = "cidr_ipv6" if ipaddress.ip_network(cidr).version == 6 else "cidr_ipv4"
    return aws.vpc.SecurityGroupIngressRule(
        resource_name,
        security_group_id=security_group_id,
        ip_protocol="tcp",
        from_port=port,
        to_port=port,
        description=description,
        opts=pulumi.ResourceOptions(parent=parent, aliases=list(aliases) or None),
        **{family: cidr},
    )


def admit_group(
    name_prefix: str,
    *,
    security_group_id: pulumi.Input[str],
    source_group_id: pulumi.Input[str],
    who: str,
    parent: pulumi.Resource,
) -> list[aws.vpc.SecurityGroupIngressRule]:
    """Admit the members of ``source_group_id`` (``who``: the NLB, HAProxy) on each pool port:
    one rule per port, named ``<name_prefix>-<port>``."""
    return [
        aws.vpc.SecurityGroupIngressRule(
            f"{name_prefix}-{port}",
            security_group_id=security_group_id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            referenced_security_group_id=source_group_id,
            description=f"{who} (agents and health checks) to {port}",
            opts=pulumi.ResourceOptions(parent=parent),
        )
        for port in pe.POOL_PORTS
    ]


def admit_cidrs(
    name_prefix: str,
    *,
    security_group_id: pulumi.Input[str],
    ports: Sequence[int],
    cidrs: "Sequence[str] | pulumi.Output[list[str]]",
    description: str,
    parent: pulumi.Resource,
) -> None:
    """One ingress rule per port and CIDR, named by what it admits: ``{name_prefix}-{port}-{cidr}``.

    Named by content, not position, so removing one CIDR deletes exactly its rules instead of
    rewriting every later rule in place (which AWS can refuse as a duplicate mid-update).
    A list known only later (an Output) becomes a managed prefix list and one rule per port.
    """
    if isinstance(cidrs, pulumi.Output):
        _admit_prefix_list(name_prefix, security_group_id, ports, cidrs, description, parent)
        return
    for port in ports:
        for index, cidr in enumerate(cidrs):
            ingress_from_cidr(
                rule_name(name_prefix, port, cidr),
                security_group_id=security_group_id,
                port=port,
                cidr=cidr,
                description=f"{description} to {port}",
                parent=parent,
                # Stacks made before rules were named by CIDR keep their rules: same list, same order.
                aliases=[pulumi.Alias(name=f"{name_prefix}-{port}-{index}")],
            )


def rule_name(name_prefix: str, port: int, cidr: str) -> str:
    """``pe-lb-agents-8140-10.0.0.0-8``: the CIDR with its slash (and IPv6 colons) made name-safe."""
    return f"{name_prefix}-{port}-{cidr.replace('/', '-').replace(':', '.')}"


DEFAULT_INBOUND_RULES_PER_SECURITY_GROUP = 60
"""AWS's default quota of inbound rules per security group, for IPv4 and IPv6 apart. Each CIDR
block and port is one rule (admit_cidrs makes them so); a rule that names a security group
counts once for each; one that names a customer-managed prefix list counts its max_entries, so
the prefix lists admit_cidrs makes for lists known later fit no more."""


def check_inbound_rule_quota(
    group: str,
    sources: Mapping[str, tuple[Sequence[int], Sequence[str]]],
    *,
    group_references: int = 0,
    limit: int = DEFAULT_INBOUND_RULES_PER_SECURITY_GROUP,
) -> None:
    """Refuse CIDR lists that would give one security group more inbound rules than the quota.

    ``sources`` maps each setting's name to the ports it is admitted to and its CIDR blocks;
    ``group_references`` counts the group's rules that name another security group. AWS would
    refuse the rule past the quota halfway through an update.
    """
    for version in (4, 6):
        counted = {
            name: (ports, sum(1 for block in blocks if ipaddress.ip_network(block).version == version))
            for name, (ports, blocks) in sources.items()
        }
        total = group_references + sum(len(ports) * count for ports, count in counted.values())
        if total <= limit:
            continue
        parts = [
            f"{name}: {count} block(s) x {len(ports)} port(s) ({', '.join(map(str, ports))})"
            for name, (ports, count) in counted.items()
            if count
        ]
        if group_references:
            parts.append(f"{group_references} rule(s) naming a security group")
        raise ValueError(
            f"{' and '.join(name for name, (_, count) in counted.items() if count)} would give {group} "
            f"{total} inbound IPv{version} rules ({'; '.join(parts)}), over AWS's default quota of {limit} "
            "per security group (one rule per CIDR block and port); merge blocks into wider ones"
        )


RESERVED_TAGS = 3
"""Tags pe-lb adds to the user's: Name, and pe-lb:role and pe-lb:pool on compile masters."""


def user_tags(key: str, tags: Any) -> "Mapping[str, str] | pulumi.Output[dict[str, str]]":
    """The user's tags, checked against load balancers' tag rules with room for pe-lb's own
    (now, or once an Output resolves)."""
    return validation.checked(tags or {}, lambda given: validation.tags(key, given, RESERVED_TAGS))


def _admit_prefix_list(
    name_prefix: str,
    security_group_id: pulumi.Input[str],
    ports: Sequence[int],
    cidrs: "pulumi.Output[list[str]]",
    description: str,
    parent: pulumi.Resource,
) -> None:
    prefix_list = aws.ec2.ManagedPrefixList(
        name_prefix,
        name=name_prefix,
        address_family="IPv4",
        max_entries=cidrs.apply(lambda blocks: max(1, len(blocks))),
        entries=cidrs.apply(
            lambda blocks: [
                aws.ec2.ManagedPrefixListEntryArgs(cidr=block, description=description) for block in blocks
            ]
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    for port in ports:
        aws.vpc.SecurityGroupIngressRule(
            f"{name_prefix}-{port}",
            security_group_id=security_group_id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            prefix_list_id=prefix_list.id,
            description=f"{description} to {port}",
            opts=pulumi.ResourceOptions(parent=parent),
        )


def tagged(
    tags: "Mapping[str, str] | pulumi.Output[dict[str, str]] | None", name: str, **extra: str
) -> "pulumi.Input[Mapping[str, str]]":
    """The user's tags plus a Name tag, which the AWS console shows (and ``extra`` ones)."""
    if isinstance(tags, pulumi.Output):
        return tags.apply(lambda known: {**known, "Name": name, **extra})
    return {**(tags or {}), "Name": name, **extra}
