"""Security-group rules the components share: one rule resource per source and port."""

import ipaddress
from collections.abc import Mapping

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


def tagged(tags: Mapping[str, str] | None, name: str) -> dict[str, str]:
    """The user's tags plus a Name tag, which the AWS console shows."""
    return {**(tags or {}), "Name": name}
