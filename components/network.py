"""Security-group rules the components share: one rule resource per source and port."""

import ipaddress
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws


def ingress_from_cidr(
    resource_name: str,
    *,
    security_group_id: pulumi.Input[str],
    port: int,
    cidr: str,
    description: str,
    parent: pulumi.Resource,
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
        opts=pulumi.ResourceOptions(parent=parent),
        **{family: cidr},
    )


def admit_cidrs(
    name_prefix: str,
    *,
    security_group_id: pulumi.Input[str],
    ports: Sequence[int],
    cidrs: Sequence[str],
    description: str,
    parent: pulumi.Resource,
) -> None:
    """One ingress rule per port and CIDR, named ``{name_prefix}-{port}-{index}``."""
    for port in ports:
        for index, cidr in enumerate(cidrs):
            ingress_from_cidr(
                f"{name_prefix}-{port}-{index}",
                security_group_id=security_group_id,
                port=port,
                cidr=cidr,
                description=f"{description} to {port}",
                parent=parent,
            )


def tagged(tags: Mapping[str, str] | None, name: str) -> dict[str, str]:
    """The user's tags plus a Name tag, which the AWS console shows."""
    return {**(tags or {}), "Name": name}
