"""Checks that need AWS's answer, made before anything is declared.

AWS would refuse these inputs only halfway through an update (the NLB created, the record
not): two load-balancer subnets in one availability zone, a pool name outside its hosted
zone, a name that already has a record. Each check reads with a provider invoke and raises
``ValueError`` naming the setting (a config key, or a component argument).
"""

import re
from collections.abc import Sequence

import pulumi_aws as aws

from . import pe


def one_subnet_per_zone(key: str, subnet_ids: Sequence[str]) -> None:
    """An NLB takes one subnet per availability zone (CreateLoadBalancer refuses two)."""
    seen: dict[str, str] = {}
    for subnet_id in subnet_ids:
        zone = aws.ec2.get_subnet(id=subnet_id).availability_zone
        if zone in seen:
            raise ValueError(
                f"{key} lists {seen[zone]} and {subnet_id}, both in {zone}: a load balancer takes one "
                "subnet per availability zone"
            )
        seen[zone] = subnet_id


def name_in_zone(name_key: str, name: str, zone_key: str, zone_id: str) -> None:
    """The pool's DNS name must lie in the hosted zone (Route53 answers InvalidChangeBatch otherwise)."""
    zone = aws.route53.get_zone(zone_id=zone_id).name.rstrip(".")
    if name != zone and not name.endswith(f".{zone}"):
        raise ValueError(f"{name_key}={name!r} is not in the hosted zone {zone_key}={zone_id!r} ({zone})")


def record_is_free(key: str, name: str, zone_id: str, load_balancer_name: str) -> None:
    """No record of someone else's may hold the name: creating the alias would fail mid-update.

    A record that is an alias to a load balancer this component named (``{load_balancer_name}-xxxxxxx``,
    Pulumi's auto-name) is taken for this stack's own, from an earlier `pulumi up`.
    """
    found = aws.route53.get_records(
        zone_id=zone_id,
        name_regex=f"^{re.escape(name)}\\.?$",
    ).resource_record_sets
    ours = re.compile(
        rf"^(dualstack\.)?(internal-)?{re.escape(load_balancer_name)}-[0-9a-f]{{7}}-", re.IGNORECASE
    )
    for record in found:
        if record.type not in ("A", "AAAA", "CNAME"):
            continue
        target = record.alias_target.dns_name if record.alias_target else ""
        if not ours.match(target or ""):
            raise ValueError(
                f"{key}={name!r} already has a {record.type} record in {zone_id} that pe-lb did not make; "
                "delete it or choose another name"
            )


def vpc_resolves_private_zones(key: str, vpc_id: str) -> None:
    """balancing=least-connections finds compile masters through a private hosted zone, which the VPC
    resolver answers only with DNS support and DNS hostnames on: without them HAProxy finds none, and
    the only sign would be the health gate timing out."""
    vpc = aws.ec2.get_vpc(id=vpc_id)
    off = [
        setting
        for setting, on in (
            ("DNS resolution", vpc.enable_dns_support),
            ("DNS hostnames", vpc.enable_dns_hostnames),
        )
        if not on
    ]
    if off:
        raise ValueError(
            f"{key}={vpc_id!r} has {' and '.join(off)} off: balancing=least-connections finds the compile "
            "masters through a private hosted zone, which needs both on (aws ec2 modify-vpc-attribute "
            f"--vpc-id {vpc_id} --enable-dns-support / --enable-dns-hostnames)"
        )


def existing_load_balancer(identity: str) -> "aws.lb.GetLoadBalancerResult | None":
    """The NLB a stack made before, found by its pool tag (None before its first `pulumi up`)."""
    try:
        found = aws.lb.get_load_balancer(tags={pe.POOL_TAG: identity})
    except Exception:
        return None
    return found if found.arn else None


def pools_in_stack(project: str, stack: str) -> set[str]:
    """The pool identities (pe-lb:pool tags) of the pe-lb NLBs this project and stack have made,
    whatever the pool's name; empty when the tagging API cannot be asked."""
    try:
        found = aws.resourcegroupstaggingapi.get_resources(
            resource_type_filters=["elasticloadbalancing:loadbalancer"],
            tag_filters=[aws.resourcegroupstaggingapi.GetResourcesTagFilterArgs(key=pe.POOL_TAG)],
        ).resource_tag_mapping_lists
    except Exception:
        return set()
    prefix = pe.pool_identity(project, stack, "")
    values = {(mapping.tags or {}).get(pe.POOL_TAG, "") for mapping in found or []}
    return {value for value in values if value.startswith(prefix)}


def rebuild_reasons(
    existing: "aws.lb.GetLoadBalancerResult", internal: bool, subnet_ids: Sequence[str]
) -> list[str]:
    """Why the provider would replace ``existing`` (scheme flipped, a subnet removed or swapped)."""
    reasons = []
    if bool(existing.internal) != internal:
        reasons.append(f"internal changes from {str(existing.internal).lower()} to {str(internal).lower()}")
    removed = sorted(set(existing.subnets or []) - set(subnet_ids))
    if removed:
        reasons.append(f"{', '.join(removed)} leave its subnets")
    return reasons


def names_aliasing(zone_id: str, load_balancer_dns_name: str) -> set[str]:
    """The names in the zone whose alias record points at the NLB."""
    target = load_balancer_dns_name.lower().rstrip(".")
    names = set()
    for record in aws.route53.get_records(zone_id=zone_id, name_regex=".*").resource_record_sets:
        alias = (record.alias_target.dns_name if record.alias_target else "") or ""
        if alias.lower().rstrip(".").removeprefix("dualstack.") == target:
            names.add(record.name.rstrip(".").lower())
    return names
