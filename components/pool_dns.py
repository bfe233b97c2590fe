"""The pool's DNS names: a Route53 alias to the NLB for each, made once the pool behind it serves."""

from collections.abc import Sequence
from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from . import validation
from .primary import caller_depends_on


class PoolDnsNamesArgs(TypedDict):
    names: Sequence[str]
    """Every DNS name of the pool: the one agents are given first, then names agents are moving to
    or off (each also in every compile master's certificate: CompileMasterPool's other_pool_names)."""
    hosted_zone_id: str
    """Route53 zone that holds the names."""
    load_balancer_dns_name: pulumi.Input[str]
    """The NLB's DNS name (PuppetLoadBalancer's dnsName), the alias target."""
    load_balancer_zone_id: pulumi.Input[str]
    """The NLB's canonical hosted zone (PuppetLoadBalancer's zoneId)."""
    adopt_record_of: NotRequired[str | None]
    """The name of a PuppetLoadBalancer that made the first name's record itself (pe-lb 0.5 and
    earlier, or pool_dns_name with hosted_zone_id): that record is taken over in place, never
    deleted and made again."""


class PoolDnsNames(pulumi.ComponentResource):
    """One alias record per pool name, pointed at the NLB only after what it waits for.

    Declare it with ``depends_on`` the pool's health gate (and so the compile masters and
    listeners): on an NLB rebuild each alias moves to the new NLB only once its targets serve,
    never while the new target groups are empty. Records are named after their DNS name, so a
    name that moves between "agents' name" and "other name" keeps its record.
    """

    fqdns: pulumi.Output[list[str]]
    """The names, as Route53 holds them."""

    def __init__(self, name: str, args: PoolDnsNamesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        names = [validation.hostname("names", value) for value in args["names"]]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"names={args['names']!r} must list at least one DNS name, each once")
        depends_on = caller_depends_on(opts)
        super().__init__("pe-lb:index:PoolDnsNames", name, None, opts)
        adopted = args.get("adopt_record_of")
        records = []
        for index, dns_name in enumerate(names):
            # Where a top-level PuppetLoadBalancer made it: the same record, a new place in the tree.
            aliases: list[pulumi.Input[str]] = (
                [_load_balancers_record_urn(adopted)] if adopted and not index else []
            )
            record = aws.route53.Record(
                f"{name}-{dns_name}",
                zone_id=args["hosted_zone_id"],
                name=dns_name,
                type="A",
                aliases=[
                    aws.route53.RecordAliasArgs(
                        name=args["load_balancer_dns_name"],
                        zone_id=args["load_balancer_zone_id"],
                        evaluate_target_health=True,
                    )
                ],
                opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on, aliases=aliases or None),
            )
            records.append(record.fqdn)
        self.fqdns = pulumi.Output.all(*records)
        self.register_outputs({"fqdns": self.fqdns})


def _load_balancers_record_urn(load_balancer_name: str) -> str:
    """The URN of the record a top-level PuppetLoadBalancer named ``load_balancer_name`` made."""
    return (
        f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::"
        f"pe-lb:index:PuppetLoadBalancer$aws:route53/record:Record::{load_balancer_name}-pool"
    )
