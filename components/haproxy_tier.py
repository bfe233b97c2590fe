"""balancing = least-connections: HAProxy instances between the NLB and the compile masters.

The NLB (stable address, cross-zone, zone failover) forwards to a few HAProxy instances, which
balance each port to the compile masters by least connections, as the PE page recommends. They
find the compile masters by DNS: one A record per compile master in rotation, in a private
hosted zone of the pool's own, which this component keeps to ``compile_master_addresses``.
Scaling, replacing and draining compile masters change that record, never an HAProxy instance.
"""

from collections.abc import Mapping, Sequence
from typing import NotRequired, TypedDict

import pulumi
import pulumi_aws as aws
import pulumi_command as command

from . import haproxy_config, pe, validation
from .instances import at_least_one_subnet, hardened, round_robin
from .network import admit_cidrs, admit_group, tagged, user_tags
from .primary import caller_depends_on

DEFAULT_HAPROXY_COUNT = 2
HAPROXY_COUNT_RANGE = (2, 20)
DEFAULT_HAPROXY_INSTANCE_TYPE = "c6i.large"
"""2 vCPU, up to 12.5 Gbit/s: HAProxy in TCP mode used 2-3 % of one core for a loaded pool
(benchmarks/balancing.py); the network, not the CPU, is what it needs."""
HAPROXY_ROOT_VOLUME_GB = 20


class HaproxyTierArgs(TypedDict):
    pool_name: str
    """The pool's identity (POOL_TAG value): tags the instances and names the discovery zone."""
    vpc_id: pulumi.Input[str]
    """VPC of the subnets; the discovery zone is private to it."""
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Subnets the HAProxy instances are spread over, one instance per zone in turn."""
    ami_id: pulumi.Input[str]
    """Image with the distribution's haproxy package (e.g. the compile masters')."""
    load_balancer_security_group_id: pulumi.Input[str]
    """The NLB's security group, admitted to 8140 and 8142."""
    target_group_arns: Mapping[str, pulumi.Input[str]]
    """Target group per port ("8140", "8142"): the HAProxy instances are the NLB's targets."""
    compile_master_security_group_id: pulumi.Input[str]
    """The compile masters' security group: it admits the HAProxy instances on 8140 and 8142."""
    compile_master_addresses: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Private IPs of the compile masters in rotation: the discovery record's values."""
    ca_certificate: pulumi.Input[str]
    """The PE CA bundle: health checks verify each compile master's certificate against it."""
    count: NotRequired[int]
    """HAProxy instances (default 2)."""
    instance_type: NotRequired[str]
    """EC2 instance type (default c6i.large)."""
    key_name: NotRequired[str | None]
    """EC2 key pair for SSH."""
    admin_cidrs: NotRequired[pulumi.Input[Sequence[str]]]
    """Networks admitted to SSH and to HAProxy's stats page (poolctl status)."""
    agent_idle_timeout_seconds: NotRequired[int]
    """Idle timeout on 8140, as the NLB's listener has it (default 600)."""
    pcp_idle_timeout_seconds: NotRequired[int]
    """Idle timeout (and tunnel timeout) on 8142, no shorter than the PCP brokers' (default 1200)."""
    health_check_path: NotRequired[str]
    """Status path HAProxy GETs on a compile master's 8140 for the 8140 backend, as the target group."""
    pcp_health_check_path: NotRequired[str]
    """Status path HAProxy GETs on 8140 for the 8142 backend (the broker's own), as the target group."""
    health_check_interval_seconds: NotRequired[int]
    """Seconds between HAProxy's checks of each compile master, as the target groups' (default 10)."""
    health_check_healthy_threshold: NotRequired[int]
    """Successes before a compile master is back in HAProxy's rotation (default 3)."""
    health_check_unhealthy_threshold: NotRequired[int]
    """Failures before a compile master leaves HAProxy's rotation (default 2)."""
    tags: NotRequired[pulumi.Input[Mapping[str, str]]]
    """Tags for every resource."""


class HaproxyTier(pulumi.ComponentResource):
    """HAProxy instances in the NLB's target groups, balancing by least connections."""

    instance_ids: pulumi.Output[list[str]]
    """EC2 instance ids of the HAProxy instances, in order."""
    private_ips: pulumi.Output[list[str]]
    """Their private IPs (the stats page is on each, port 8404, for adminCidrs)."""
    security_group_id: pulumi.Output[str]
    """The HAProxy instances' security group."""
    discovery_name: pulumi.Output[str]
    """The name HAProxy resolves: one A record per compile master in rotation."""

    def __init__(self, name: str, args: HaproxyTierArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        count = validation.int_in_range(
            "count", args.get("count", DEFAULT_HAPROXY_COUNT), *HAPROXY_COUNT_RANGE
        )
        subnet_ids = validation.checked(args["subnet_ids"], at_least_one_subnet)
        admin_cidrs = validation.checked(
            args.get("admin_cidrs", []),
            lambda cidrs: validation.not_the_internet(
                "admin_cidrs", validation.cidr_list("admin_cidrs", cidrs)
            ),
        )
        tags = user_tags("tags", args.get("tags"))
        pool = args["pool_name"]
        discovery_name = pe.discovery_name(pool)
        config = haproxy_config.instance_settings(discovery_name, **_timing(args))
        joined = caller_depends_on(opts)
        super().__init__("pe-lb:index:HaproxyTier", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        security_group = aws.ec2.SecurityGroup(
            f"{name}-haproxy",
            vpc_id=args["vpc_id"],
            description="PE compile-master pool HAProxy: 8140/8142 from the NLB",
            tags=tagged(tags, f"{name}-haproxy"),
            opts=child,
        )
        admit_group(
            f"{name}-haproxy-from-nlb",
            security_group_id=security_group.id,
            source_group_id=args["load_balancer_security_group_id"],
            who="NLB",
            parent=self,
        )
        admit_cidrs(
            f"{name}-haproxy-admin",
            security_group_id=security_group.id,
            ports=[pe.SSH_PORT, pe.HAPROXY_STATS_PORT],
            cidrs=admin_cidrs,
            description="Administrators: SSH, HAProxy stats",
            parent=self,
        )
        # To the compile masters (whose addresses change), the VPC resolver and package mirrors.
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-haproxy-egress",
            security_group_id=security_group.id,
            ip_protocol="-1",
            cidr_ipv4="0.0.0.0/0",
            description="Compile masters and package mirrors",
            opts=child,
        )
        # The compile masters admit HAProxy (each instance depends on these rules).
        to_compile_masters = admit_group(
            f"{name}-from-haproxy",
            security_group_id=args["compile_master_security_group_id"],
            source_group_id=security_group.id,
            who="HAProxy",
            parent=self,
        )

        zone = aws.route53.Zone(
            f"{name}-discovery",
            name=pe.discovery_zone_name(pool),
            comment=f"pe-lb: compile masters of {pool}",
            vpcs=[aws.route53.ZoneVpcArgs(vpc_id=args["vpc_id"])],
            tags=tagged(tags, f"{name}-discovery", **{pe.POOL_TAG: pool}),
            opts=child,
        )
        # One value per compile master in rotation, sorted so that the order of the pool list
        # never shows as a change. Updated in place: HAProxy sees it within the TTL.
        addresses = pulumi.Output.from_input(args["compile_master_addresses"]).apply(
            lambda values: sorted(str(value) for value in values)
        )
        record = aws.route53.Record(
            f"{name}-discovery",
            zone_id=zone.zone_id,
            name=discovery_name,
            type="A",
            ttl=pe.DISCOVERY_TTL_SECONDS,
            records=addresses,
            # A compile master enters the record once what the caller waits for (its join) is done.
            opts=pulumi.ResourceOptions(parent=self, depends_on=joined),
        )

        user_data = pulumi.Output.from_input(args["ca_certificate"]).apply(
            lambda ca: haproxy_config.user_data(config, ca)
        )
        self.instances: list[aws.ec2.Instance] = []
        """The instances themselves, in order (Python only: PoolHealthGate's instance_ids)."""
        for index in range(count):
            instance = aws.ec2.Instance(
                f"{name}-haproxy-{index}",
                ami=args["ami_id"],
                instance_type=args.get("instance_type", DEFAULT_HAPROXY_INSTANCE_TYPE),
                subnet_id=round_robin(subnet_ids, index),
                vpc_security_group_ids=[security_group.id],
                key_name=args.get("key_name") or None,
                **hardened(HAPROXY_ROOT_VOLUME_GB),
                user_data=user_data,
                # Cattle: a new config or image is a new instance, in rotation (the health gate)
                # before the old one leaves; nothing is changed on a running one.
                user_data_replace_on_change=True,
                tags=tagged(
                    tags, f"{name}-haproxy-{index}", **{pe.ROLE_TAG: pe.HAPROXY_ROLE, pe.POOL_TAG: pool}
                ),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    # Made once the record answers (a name asked for too early is cached as absent
                    # by the resolver), and gone before the record and the rules: never an HAProxy in
                    # rotation that cannot find or reach the compile masters.
                    depends_on=[record, *to_compile_masters],
                    replace_on_changes=["instanceType"],
                    ignore_changes=["subnetId"],
                ),
            )
            # An HAProxy instance that goes (replaced, or the tier removed) still carries agent runs
            # and PXP sockets. Deletes run in reverse order of dependencies: its attachments go (the
            # NLB drains it), then this waits out the deregistration delay, then the instance goes.
            drained = command.local.Command(
                f"{name}-haproxy-{index}-drain",
                delete=f"sleep {pe.PUPPETSERVER_DEREGISTRATION_DELAY_SECONDS}",
                triggers=[instance.id],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[instance]),
            )
            for port in pe.POOL_PORTS:
                aws.lb.TargetGroupAttachment(
                    f"{name}-haproxy-{index}-{port}",
                    target_group_arn=args["target_group_arns"][str(port)],
                    target_id=instance.id,
                    port=port,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[drained]),
                )
            self.instances.append(instance)

        self.instance_ids = pulumi.Output.all(*[instance.id for instance in self.instances])
        self.private_ips = pulumi.Output.all(*[instance.private_ip for instance in self.instances])
        self.security_group_id = security_group.id
        self.discovery_name = pulumi.Output.from_input(discovery_name)
        self.register_outputs(
            {
                "instanceIds": self.instance_ids,
                "privateIps": self.private_ips,
                "securityGroupId": self.security_group_id,
                "discoveryName": self.discovery_name,
            }
        )


def _timing(args: HaproxyTierArgs) -> dict[str, object]:
    """HaproxySettings' timing and paths from the args: as the target groups have them."""
    default = pe.HealthCheckTiming()
    overrides: dict[str, object] = {
        "timing": pe.HealthCheckTiming.every(
            args.get("health_check_interval_seconds", default.interval_seconds),
            args.get("health_check_healthy_threshold", default.healthy_threshold),
            args.get("health_check_unhealthy_threshold", default.unhealthy_threshold),
        )
    }
    for arg, setting in (
        ("agent_idle_timeout_seconds", "agent_idle_timeout_seconds"),
        ("pcp_idle_timeout_seconds", "pcp_idle_timeout_seconds"),
        ("health_check_path", "status_path"),
        ("pcp_health_check_path", "pcp_status_path"),
    ):
        if arg in args:
            overrides[setting] = args[arg]  # type: ignore[literal-required]
    return overrides
