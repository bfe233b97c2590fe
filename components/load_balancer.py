"""An internal or internet-facing NLB in front of the compile masters."""

from collections.abc import Mapping, Sequence
from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from . import pe, preflight, validation
from .network import admit_cidrs, rule_name, tagged, user_tags


class PuppetLoadBalancerArgs(TypedDict):
    vpc_id: pulumi.Input[str]
    """VPC the load balancer and its target groups live in."""
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Subnets for the NLB's nodes, one per availability zone; use at least two zones."""
    agent_cidrs: pulumi.Input[Sequence[str]]
    """IPv4 networks whose agents may reach 8140 and 8142 through the pool."""
    internal: NotRequired[bool]
    """Internal (default) or internet-facing."""
    pcp_idle_timeout_seconds: NotRequired[int]
    """TCP idle timeout of the 8142 listener; at least 900, the PCP brokers' own limit."""
    agent_idle_timeout_seconds: NotRequired[int]
    """TCP idle timeout of the 8140 listener."""
    health_check_path: NotRequired[str]
    """Status path the 8140 group GETs over HTTPS on 8140 (default /status/v1/simple)."""
    pcp_health_check_path: NotRequired[str]
    """Status path the 8142 group GETs over HTTPS on 8140 (default /status/v1/simple/broker-service)."""
    health_check_protocol: NotRequired[str]
    """HTTPS (status endpoints, default) or TCP (each group checks that its own port listens)."""
    health_check_interval_seconds: NotRequired[int]
    """Seconds between health checks, 5..300 (default 10)."""
    health_check_healthy_threshold: NotRequired[int]
    """Successes before a target is back in rotation, 2..10 (default 3)."""
    health_check_unhealthy_threshold: NotRequired[int]
    """Failures before a target leaves rotation, 2..10 (default 2)."""
    pool_dns_name: NotRequired[str | None]
    """Stable name for the pool (poolAddress). Its record is best made by PoolDnsNames after the
    health gate; with hosted_zone_id too, this component makes it itself, pointed at the NLB as soon
    as the NLB exists (on an NLB rebuild, before the new NLB serves)."""
    hosted_zone_id: NotRequired[str | None]
    """Route53 zone for this component's own record of pool_dns_name (see pool_dns_name)."""
    tags: NotRequired[pulumi.Input[Mapping[str, str]]]
    """Tags for every resource that takes them (load balancers' tag rules)."""


class PuppetLoadBalancer(pulumi.ComponentResource):
    """TCP pass-through NLB on 8140 and 8142 with status-endpoint health checks."""

    arn: pulumi.Output[str]
    """ARN of the network load balancer."""
    dns_name: pulumi.Output[str]
    """The NLB's own DNS name."""
    zone_id: pulumi.Output[str]
    """The NLB's canonical hosted zone, for alias records."""
    pool_address: pulumi.Output[str]
    """What agents use: pool_dns_name when given, else the NLB's DNS name."""
    security_group_id: pulumi.Output[str]
    """The NLB's security group; compile masters admit traffic from it."""
    target_group_arns: dict[str, pulumi.Output[str]]
    """Target group ARN per port ("8140", "8142")."""

    def __init__(
        self, name: str, args: PuppetLoadBalancerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        settings = _Settings(args)
        _check_against_aws(name, args, settings)
        super().__init__("pe-lb:index:PuppetLoadBalancer", name, None, opts)
        tags = settings.tags
        child = pulumi.ResourceOptions(parent=self)

        security_group = aws.ec2.SecurityGroup(
            f"{name}-nlb",
            vpc_id=args["vpc_id"],
            description="PE compile-master pool NLB: agents to 8140/8142",
            tags=tagged(tags, f"{name}-nlb"),
            opts=child,
        )
        admit_cidrs(
            f"{name}-agents",
            security_group_id=security_group.id,
            ports=pe.POOL_PORTS,
            cidrs=settings.agent_cidrs,
            description="PE agents",
            parent=self,
        )
        # Forwarded traffic and health checks ("subject to outbound rules") leave the NLB for
        # targets inside the VPC only: every CIDR block of it, secondary ones included.
        primary_block, secondary_blocks = _vpc_cidr_blocks(args["vpc_id"], self)
        for port in pe.POOL_PORTS:
            named_blocks = {
                f"{name}-to-targets-{port}": primary_block,
                **{rule_name(f"{name}-to-targets", port, block): block for block in secondary_blocks},
            }
            for rule, cidr in named_blocks.items():
                aws.vpc.SecurityGroupEgressRule(
                    rule,
                    security_group_id=security_group.id,
                    ip_protocol="tcp",
                    from_port=port,
                    to_port=port,
                    cidr_ipv4=cidr,
                    description=f"NLB to compile masters on {port}",
                    opts=child,
                )

        load_balancer = aws.lb.LoadBalancer(
            f"{name}-nlb",
            load_balancer_type="network",
            internal=settings.internal,
            subnets=args["subnet_ids"],
            security_groups=[security_group.id],
            enable_cross_zone_load_balancing=True,
            # The pool tag lets a later preview find this NLB (stack_config's checks of a rebuild or
            # a rename) and never another stack's. Tags change in place.
            tags=tagged(tags, f"{name}-nlb", **{pe.POOL_TAG: load_balancer_identity(name)}),
            opts=child,
        )

        status_paths = {
            pe.PUPPETSERVER_PORT: settings.health_check_path,
            pe.PCP_BROKER_PORT: settings.pcp_health_check_path,
        }
        idle_timeouts = {
            pe.PUPPETSERVER_PORT: settings.agent_idle_timeout_seconds,
            pe.PCP_BROKER_PORT: settings.pcp_idle_timeout_seconds,
        }
        self.target_group_arns = {}
        for port in pe.POOL_PORTS:
            is_pcp = port == pe.PCP_BROKER_PORT
            target_group = aws.lb.TargetGroup(
                f"{name}-{port}",
                port=port,
                protocol="TCP",
                target_type="instance",
                vpc_id=args["vpc_id"],
                health_check=_health_check(
                    settings.health_check_protocol, port, status_paths[port], settings.timing
                ),
                # PXP agents reconnect to another broker; a socket left on a leaving or sick
                # broker would only sit there until the 15-minute idle limit.
                connection_termination=is_pcp,
                deregistration_delay=(
                    pe.PCP_DEREGISTRATION_DELAY_SECONDS
                    if is_pcp
                    else pe.PUPPETSERVER_DEREGISTRATION_DELAY_SECONDS
                ),
                target_health_states=[
                    aws.lb.TargetGroupTargetHealthStateArgs(
                        enable_unhealthy_connection_termination=is_pcp,
                        unhealthy_draining_interval=(
                            None if is_pcp else pe.PUPPETSERVER_DEREGISTRATION_DELAY_SECONDS
                        ),
                    )
                ],
                tags=tagged(tags, f"{name}-{port}"),
                # A target group serves one load balancer: a new NLB (internal flipped, a subnet
                # swapped) gets new target groups, or its listeners fail with TargetGroupAssociationLimit.
                opts=pulumi.ResourceOptions(parent=self, replace_with=[load_balancer]),
            )
            aws.lb.Listener(
                f"{name}-{port}",
                load_balancer_arn=load_balancer.arn,
                port=port,
                # TCP, never TLS: agents authenticate to puppetserver with client certificates.
                protocol="TCP",
                tcp_idle_timeout_seconds=idle_timeouts[port],
                default_actions=[
                    aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=target_group.arn)
                ],
                tags=tagged(tags, f"{name}-{port}"),
                opts=child,
            )
            self.target_group_arns[str(port)] = target_group.arn

        self.arn = load_balancer.arn
        self.dns_name = load_balancer.dns_name
        self.zone_id = load_balancer.zone_id
        self.security_group_id = security_group.id
        if settings.pool_dns_name and settings.hosted_zone_id:
            record = aws.route53.Record(
                f"{name}-pool",
                zone_id=settings.hosted_zone_id,
                name=settings.pool_dns_name,
                type="A",
                aliases=[
                    aws.route53.RecordAliasArgs(
                        name=load_balancer.dns_name,
                        zone_id=load_balancer.zone_id,
                        evaluate_target_health=True,
                    )
                ],
                opts=child,
            )
            self.pool_address = record.name
        elif settings.pool_dns_name:
            self.pool_address = pulumi.Output.from_input(settings.pool_dns_name)
        else:
            self.pool_address = load_balancer.dns_name

        self.register_outputs(
            {
                "arn": self.arn,
                "dnsName": self.dns_name,
                "poolAddress": self.pool_address,
                "securityGroupId": self.security_group_id,
                "targetGroupArns": self.target_group_arns,
            }
        )


class _Settings:
    """The component's plain arguments, defaulted and checked."""

    def __init__(self, args: PuppetLoadBalancerArgs) -> None:
        self.agent_cidrs = validation.checked(
            args["agent_cidrs"],
            lambda cidrs: validation.cidr_list("agent_cidrs", cidrs, allow_empty=False, ipv4_only=True),
        )
        self.tags = user_tags("tags", args.get("tags"))
        self.internal = args.get("internal", True)
        self.pcp_idle_timeout_seconds = validation.int_in_range(
            "pcp_idle_timeout_seconds",
            args.get("pcp_idle_timeout_seconds", pe.DEFAULT_PCP_IDLE_TIMEOUT_SECONDS),
            *pe.PCP_IDLE_TIMEOUT_RANGE,
            pe.PCP_IDLE_TIMEOUT_WHY,
        )
        self.agent_idle_timeout_seconds = validation.int_in_range(
            "agent_idle_timeout_seconds",
            args.get("agent_idle_timeout_seconds", pe.DEFAULT_AGENT_IDLE_TIMEOUT_SECONDS),
            *pe.NLB_IDLE_TIMEOUT_RANGE,
            pe.NLB_IDLE_TIMEOUT_WHY,
        )
        self.health_check_path = validation.status_path(
            "health_check_path", args.get("health_check_path", pe.STATUS_PATH)
        )
        self.pcp_health_check_path = validation.status_path(
            "pcp_health_check_path", args.get("pcp_health_check_path", pe.PCP_STATUS_PATH)
        )
        default = pe.HealthCheckTiming()
        self.timing = pe.HealthCheckTiming.every(
            validation.int_in_range(
                "health_check_interval_seconds",
                args.get("health_check_interval_seconds", default.interval_seconds),
                *pe.HEALTH_CHECK_INTERVAL_RANGE,
            ),
            validation.int_in_range(
                "health_check_healthy_threshold",
                args.get("health_check_healthy_threshold", default.healthy_threshold),
                *pe.HEALTH_CHECK_THRESHOLD_RANGE,
            ),
            validation.int_in_range(
                "health_check_unhealthy_threshold",
                args.get("health_check_unhealthy_threshold", default.unhealthy_threshold),
                *pe.HEALTH_CHECK_THRESHOLD_RANGE,
            ),
        )
        self.health_check_protocol = validation.one_of(
            "health_check_protocol", args.get("health_check_protocol", "HTTPS"), pe.HEALTH_CHECK_PROTOCOLS
        )
        self.pool_dns_name = args.get("pool_dns_name")
        self.hosted_zone_id = args.get("hosted_zone_id")
        if self.hosted_zone_id and not self.pool_dns_name:
            raise ValueError("hosted_zone_id needs pool_dns_name: the record's name")


def load_balancer_identity(name: str) -> str:
    """The POOL_TAG value of the NLB a PuppetLoadBalancer named ``name`` makes in this stack."""
    return pe.pool_identity(pulumi.get_project(), pulumi.get_stack(), name)


def _check_against_aws(name: str, args: PuppetLoadBalancerArgs, settings: "_Settings") -> None:
    """What AWS would refuse halfway through an update, checked where the values are known now."""
    subnets = args["subnet_ids"]
    if isinstance(subnets, list | tuple) and all(isinstance(subnet, str) for subnet in subnets):
        preflight.one_subnet_per_zone("subnet_ids", subnets)
    if settings.pool_dns_name and settings.hosted_zone_id:
        preflight.name_in_zone(
            "pool_dns_name", settings.pool_dns_name, "hosted_zone_id", settings.hosted_zone_id
        )
        preflight.record_is_free(
            "pool_dns_name", settings.pool_dns_name, settings.hosted_zone_id, f"{name}-nlb"
        )


def _health_check(
    protocol: str, port: int, path: str, timing: pe.HealthCheckTiming
) -> aws.lb.TargetGroupHealthCheckArgs:
    """Each group checks its own service: HTTPS status paths are served on 8140 for both
    (puppetserver's, and the broker's as broker-service); TCP checks the group's own port."""
    if protocol == "HTTPS":
        checked_port, http = pe.PUPPETSERVER_PORT, {"path": path, "matcher": "200"}
    else:
        # Empty, not absent: a target group switched from HTTPS keeps its path and matcher in
        # state, and AWS refuses them with TCP (terraform-provider-aws #46011). The provider
        # accepts an empty path since terraform-provider-aws 6.29.0 (#46036, CHANGELOG "Fix update
        # error when switching `health_check.protocol` ... to `TCP`"); pulumi-aws 7.51.1 bundles a
        # later one: its SDK has resources first added in 6.30.0 and 6.31.0 (ssoadmin
        # ManagedPolicyAttachmentsExclusive, CustomerManagedPolicyAttachmentsExclusive).
        checked_port, http = port, {"path": "", "matcher": ""}
    return aws.lb.TargetGroupHealthCheckArgs(
        enabled=True,
        protocol=protocol,
        port=str(checked_port),
        interval=timing.interval_seconds,
        timeout=timing.timeout_seconds,
        healthy_threshold=timing.healthy_threshold,
        unhealthy_threshold=timing.unhealthy_threshold,
        **http,
    )


def _vpc_cidr_blocks(
    vpc_id: pulumi.Input[str], parent: pulumi.Resource
) -> tuple[pulumi.Input[str], list[str]]:
    """The VPC's primary IPv4 block and its secondary ones (known only for a VPC id known now)."""
    if isinstance(vpc_id, str):
        vpc = aws.ec2.get_vpc(id=vpc_id, opts=pulumi.InvokeOptions(parent=parent))
        associated = [a.cidr_block for a in vpc.cidr_block_associations if a.state == "associated"]
        return vpc.cidr_block, [block for block in associated if block != vpc.cidr_block]
    looked_up = aws.ec2.get_vpc_output(id=vpc_id, opts=pulumi.InvokeOutputOptions(parent=parent))
    return looked_up.cidr_block, []
