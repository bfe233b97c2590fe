"""The whole pool in one resource: PE compile masters behind an NLB, wired in the safe order."""

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any, NotRequired, TypedDict

import pulumi

from . import pe, pool_config, preflight
from .compile_master_pool import CompileMasterPool
from .haproxy_tier import HaproxyTier
from .load_balancer import PuppetLoadBalancer
from .pe_agent import PeAgentPoolAddress
from .pe_repo import PeRepoPoolAddress
from .pool_alarms import PoolAlarms
from .pool_dashboard import PoolDashboard
from .pool_dns import PoolDnsNames
from .pool_health_gate import AwsAccountArgs, PoolHealthGate
from .primary import PrimaryAccessArgs


class PeCompilerPoolArgs(TypedDict):
    """The pool's whole input: the same names, defaults and checks as pe-lb's stack config."""

    primary_host: str
    """FQDN of the PE primary server."""
    primary_host_key: str
    """The primary's SSH host key, as `ssh-keyscan -t ed25519 <primary>` prints it."""
    ssh_private_key: pulumi.Input[str]
    """SSH private key for the primary; kept a secret."""
    ssh_user: NotRequired[str]
    """SSH user on the primary (default ec2-user); non-root users need password-less sudo."""
    vpc_id: pulumi.Input[str]
    """VPC to run in."""
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Subnets for the compile masters (and the NLB, by default), in two or more AZs."""
    load_balancer_subnet_ids: NotRequired[pulumi.Input[Sequence[pulumi.Input[str]]]]
    """Subnets for the NLB, one per AZ (default: subnet_ids)."""
    agent_cidrs: pulumi.Input[Sequence[str]]
    """IPv4 networks whose agents may reach 8140 and 8142."""
    primary_cidrs: pulumi.Input[Sequence[str]]
    """The primary's (and replica's) IPv4 addresses, admitted to 8140/8142 on compile masters."""
    ami_id: pulumi.Input[str]
    """Image for the compile masters: the primary's OS, major release and architecture, pinned."""
    compile_master_count: NotRequired[int]
    """Number of compile masters, 1..500 (default 2)."""
    instance_type: NotRequired[str]
    """EC2 instance type of the compile masters (default m6i.xlarge)."""
    root_volume_size_gb: NotRequired[int]
    """Size of each compile master's encrypted root volume (default 50)."""
    drained_compile_masters: NotRequired[Sequence[int]]
    """Pool indexes (the -<index> in the Name tag) kept out of both target groups."""
    internal: NotRequired[bool]
    """Internal (default) or internet-facing NLB."""
    pcp_idle_timeout_seconds: NotRequired[int]
    """TCP idle timeout of the 8142 listener, 900..6000 (default 1200)."""
    agent_idle_timeout_seconds: NotRequired[int]
    """TCP idle timeout of the 8140 listener, 60..6000 (default 600)."""
    health_check_path: NotRequired[str]
    """Status path the 8140 group's health check GETs on 8140."""
    pcp_health_check_path: NotRequired[str]
    """Status path the 8142 group's health check GETs on 8140 (the broker's own)."""
    health_check_interval_seconds: NotRequired[int]
    """Seconds between health checks, 5..300 (default 10)."""
    health_check_healthy_threshold: NotRequired[int]
    """Successes before a compile master is back in rotation, 2..10 (default 3)."""
    health_check_unhealthy_threshold: NotRequired[int]
    """Failures before a compile master leaves rotation, 2..10 (default 2)."""
    health_check_protocol: NotRequired[str]
    """HTTPS (the status endpoint, default) or TCP."""
    pool_dns_name: NotRequired[str]
    """Stable DNS name for the pool (needs hosted_zone_id); default: the NLB's own name."""
    hosted_zone_id: NotRequired[str]
    """Route53 zone of pool_dns_name and additional_pool_dns_names."""
    additional_pool_dns_names: NotRequired[Sequence[str]]
    """More names that reach the pool while agents move to or off them."""
    key_name: NotRequired[str]
    """EC2 key pair for the compile masters."""
    admin_cidrs: NotRequired[pulumi.Input[Sequence[str]]]
    """Networks admitted to SSH on the compile masters."""
    tags: NotRequired[pulumi.Input[Mapping[str, str]]]
    """Tags for every resource."""
    wait_for_healthy: NotRequired[bool]
    """Wait (poolctl wait-healthy) for new compile masters before agents are pointed at the pool
    (default true)."""
    wait_for_healthy_timeout_seconds: NotRequired[int]
    """How long wait_for_healthy waits, 60..3600 (default 900)."""
    agents_use_pool: NotRequired[bool]
    """Point PE Agent (server_list, primary_uris, pcp_broker_list) at the pool (default true)."""
    alarm_topic_arn: NotRequired[pulumi.Input[str]]
    """SNS topic every alarm of the pool notifies (default: none; alarms show in CloudWatch)."""
    healthy_targets_floor: NotRequired[int]
    """Alarm when fewer compile masters are healthy on a port (default, or 0: all in rotation but one)."""
    unhealthy_target_minutes: NotRequired[int]
    """Alarm when a compile master is unhealthy this many minutes, 1..60 (default 5)."""
    balancing: NotRequired[str]
    """flow-hash (default: the NLB targets the compile masters) or least-connections (the NLB targets
    HAProxy instances, which balance to the compile masters by least connections)."""
    haproxy_count: NotRequired[int]
    """least-connections: HAProxy instances, spread over subnet_ids' zones, 2..20 (default 2)."""
    haproxy_instance_type: NotRequired[str]
    """least-connections: their EC2 instance type (default c6i.large)."""
    haproxy_ami_id: NotRequired[pulumi.Input[str]]
    """least-connections: their image (default ami_id), whose distribution packages haproxy."""
    aws: NotRequired[AwsAccountArgs]
    """The account the health gate reads, as the AWS provider has it; credentials otherwise from the
    environment."""


class PeCompilerPool(pulumi.ComponentResource):
    """PE compile masters on EC2 behind a Network Load Balancer, with alarms and a dashboard.

    Declares, in the order that keeps agents served: the NLB; the compile masters, each joined
    by the primary; the health gate; the pool's DNS names; pe_repo's pool address and PE Agent's
    server lists on the primary; EC2 recovery and paging alarms; a dashboard. Its parts
    (PuppetLoadBalancer, CompileMasterPool, PoolHealthGate, PoolDnsNames, PeRepoPoolAddress,
    PeAgentPoolAddress, PoolAlarms, PoolDashboard) stay available for programs that wire
    their own. Parts a program wired by hand under the same name are taken over in place.
    """

    pool_address: pulumi.Output[str]
    """The address agents are given: pool_dns_name, or the NLB's DNS name."""
    load_balancer_arn: pulumi.Output[str]
    """The NLB's ARN (poolctl --load-balancer)."""
    load_balancer_dns_name: pulumi.Output[str]
    """The NLB's own DNS name."""
    target_group_arns: pulumi.Output[dict[str, str]]
    """Target group per port ("8140", "8142")."""
    compile_master_ids: pulumi.Output[list[str]]
    """EC2 instance ids, in pool order."""
    compile_master_private_ips: pulumi.Output[list[str]]
    """Private IP addresses, in pool order."""
    compile_master_certnames: pulumi.Output[list[str]]
    """Puppet certnames, in pool order."""
    compile_master_pool_tag: pulumi.Output[str]
    """The pe-lb:pool tag value of this pool's compile masters and NLB (poolctl --pool)."""
    drained_compile_master_ids: pulumi.Output[list[str]]
    """Compile masters kept out of rotation on purpose."""
    agent_install_command: pulumi.Output[str]
    """PE's agent install one-liner, pointed at the pool."""
    alarm_names: pulumi.Output[list[str]]
    """Every CloudWatch alarm of the pool."""
    dashboard_url: pulumi.Output[str]
    """The pool's CloudWatch dashboard."""
    balancing: pulumi.Output[str]
    """flow-hash or least-connections."""
    haproxy_instance_ids: pulumi.Output[list[str]]
    """least-connections: the HAProxy instances (the NLB's targets); empty with flow-hash."""
    discovery_name: pulumi.Output[str]
    """least-connections: the DNS name HAProxy finds the compile masters by; empty with flow-hash."""

    def __init__(
        self, name: str, args: PeCompilerPoolArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        given = {_config_key(key): value for key, value in args.items() if key != "aws"}
        settings = pool_config.parse(given)
        pool_config.check_against_aws(settings, name)
        super().__init__("pe-lb:index:PeCompilerPool", name, None, opts)
        if isinstance(settings.subnet_ids, list) and len(settings.subnet_ids) < 2:
            pulumi.log.warn(
                "subnetIds lists one subnet: the pool and its NLB live in one availability zone; list "
                "subnets in two or more AZs so an AZ outage leaves compile masters in rotation",
                resource=self,
            )
        pool_tag = pe.pool_identity(pulumi.get_project(), pulumi.get_stack(), name)
        _warn_of_pools_under_other_names(pool_tag, self)
        parts = _Parts(self, name)
        load_balancer = parts.load_balancer(settings)
        compile_masters = parts.compile_masters(settings, load_balancer)
        # Agents must find a working pool when pe_repo starts handing out its address: every
        # compile master joined (the pool component's children) and in rotation.
        ready: list[pulumi.Resource] = [load_balancer, compile_masters]
        haproxy = None
        if settings.least_connections:
            haproxy = parts.haproxy(settings, pool_tag, load_balancer, compile_masters)
            ready.append(haproxy)
        if settings.wait_for_healthy:
            # The NLB's targets: the HAProxy instances, or the compile masters themselves.
            targets = haproxy.instances if haproxy else compile_masters.instances
            drained = [] if haproxy else settings.drained_compile_masters
            ready.append(
                parts.health_gate(settings, load_balancer, targets, drained, args.get("aws") or {}, ready)
            )
        dns_names = [*filter(None, [settings.pool_dns_name]), *settings.additional_pool_dns_names]
        if settings.hosted_zone_id and dns_names:
            # After the gate: on an NLB rebuild the names move to the new NLB once its targets serve.
            ready.append(parts.dns_names(settings, dns_names, load_balancer, ready))
        parts.pe_repo(settings, load_balancer, compile_masters, ready)
        if settings.agents_use_pool:
            parts.pe_agent(settings, load_balancer, ready)
        instance_ids = [instance.id for instance in compile_masters.instances]
        alarms = PoolAlarms(
            name,
            {
                "pool_name": pool_tag,
                "load_balancer_arn": load_balancer.arn,
                "target_group_arns": load_balancer.target_group_arns,
                "instance_ids": instance_ids,
                # The targets the NLB's health counts: HAProxy instances, or compile masters.
                "in_rotation": (
                    settings.haproxy_count
                    if haproxy
                    else settings.compile_master_count - len(settings.drained_compile_masters)
                ),
                "healthy_targets_floor": settings.healthy_targets_floor,
                "unhealthy_target_minutes": settings.unhealthy_target_minutes,
                "alarm_topic_arn": settings.alarm_topic_arn,
                "tags": settings.tags,
            },
            # After the gate (and the names): a first `up` or an NLB rebuild pages nobody.
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(ready)),
        )
        dashboard = PoolDashboard(
            name,
            {
                "dashboard_name": dashboard_name(pool_tag),
                "load_balancer_arn": load_balancer.arn,
                "target_group_arns": load_balancer.target_group_arns,
                "instance_ids": instance_ids,
            },
            opts=pulumi.ResourceOptions(parent=self),
        )

        drained = settings.drained_compile_masters
        self.pool_address = load_balancer.pool_address
        self.load_balancer_arn = load_balancer.arn
        self.load_balancer_dns_name = load_balancer.dns_name
        self.target_group_arns = pulumi.Output.from_input(load_balancer.target_group_arns)  # type: ignore[arg-type]
        self.compile_master_ids = compile_masters.instance_ids
        self.compile_master_private_ips = compile_masters.private_ips
        self.compile_master_certnames = compile_masters.certnames
        self.compile_master_pool_tag = pulumi.Output.from_input(pool_tag)
        self.drained_compile_master_ids = compile_masters.instance_ids.apply(
            lambda ids: [ids[i] for i in drained]
        )
        self.agent_install_command = load_balancer.pool_address.apply(pe.agent_install_command)
        self.alarm_names = alarms.alarm_names
        self.dashboard_url = dashboard.url
        self.balancing = pulumi.Output.from_input(settings.balancing)
        self.haproxy_instance_ids = haproxy.instance_ids if haproxy else pulumi.Output.from_input([])
        self.discovery_name = haproxy.discovery_name if haproxy else pulumi.Output.from_input("")
        self.register_outputs(
            {
                "poolAddress": self.pool_address,
                "loadBalancerArn": self.load_balancer_arn,
                "loadBalancerDnsName": self.load_balancer_dns_name,
                "targetGroupArns": self.target_group_arns,
                "compileMasterIds": self.compile_master_ids,
                "compileMasterPrivateIps": self.compile_master_private_ips,
                "compileMasterCertnames": self.compile_master_certnames,
                "compileMasterPoolTag": self.compile_master_pool_tag,
                "drainedCompileMasterIds": self.drained_compile_master_ids,
                "agentInstallCommand": self.agent_install_command,
                "alarmNames": self.alarm_names,
                "dashboardUrl": self.dashboard_url,
                "balancing": self.balancing,
                "haproxyInstanceIds": self.haproxy_instance_ids,
                "discoveryName": self.discovery_name,
            }
        )


@dataclasses.dataclass(frozen=True)
class _Parts:
    """Declares each part as a child of the pool, under the pool's name.

    Each part answers to where a program that wired the parts itself (pe-lb's own program
    before PeCompilerPool) had it, at the top of the stack: the engine takes it, and every
    resource under it, over in place (its aliases), so moving to PeCompilerPool replaces nothing.
    """

    pool: pulumi.Resource
    name: str

    def options(self, depends_on: Sequence[pulumi.Resource] = ()) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(
            parent=self.pool,
            aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)],
            depends_on=list(depends_on) or None,
        )

    def primary(self, settings: pool_config.PoolSettings) -> PrimaryAccessArgs:
        return {
            "primary_host": settings.primary_host,
            "primary_host_key": settings.primary_host_key,
            "ssh_user": settings.ssh_user,
            "ssh_private_key": settings.ssh_private_key,
        }

    def load_balancer(self, settings: pool_config.PoolSettings) -> PuppetLoadBalancer:
        return PuppetLoadBalancer(
            self.name,
            {
                "vpc_id": settings.vpc_id,
                "subnet_ids": settings.nlb_subnet_ids,
                "agent_cidrs": settings.agent_cidrs,
                "internal": settings.internal,
                "pcp_idle_timeout_seconds": settings.pcp_idle_timeout_seconds,
                "agent_idle_timeout_seconds": settings.agent_idle_timeout_seconds,
                "health_check_path": settings.health_check_path,
                "pcp_health_check_path": settings.pcp_health_check_path,
                "health_check_interval_seconds": settings.health_check_interval_seconds,
                "health_check_healthy_threshold": settings.health_check_healthy_threshold,
                "health_check_unhealthy_threshold": settings.health_check_unhealthy_threshold,
                "health_check_protocol": settings.health_check_protocol,
                # Its record is made by PoolDnsNames, once the pool behind the NLB serves.
                "pool_dns_name": settings.pool_dns_name,
                "tags": settings.tags,
            },
            opts=self.options(),
        )

    def compile_masters(
        self, settings: pool_config.PoolSettings, load_balancer: PuppetLoadBalancer
    ) -> CompileMasterPool:
        # Every name an agent may hold is in every certificate: the pool's DNS names and the NLB's
        # own (what agents had before poolDnsName was set), so a change of name never meets a
        # compile master that does not answer to it.
        other_pool_names: list[pulumi.Input[str]] = [
            load_balancer.dns_name,
            *settings.additional_pool_dns_names,
        ]
        return CompileMasterPool(
            self.name,
            {
                "primary": self.primary(settings),
                "pool_address": load_balancer.pool_address,
                "other_pool_names": other_pool_names,
                "vpc_id": settings.vpc_id,
                "subnet_ids": settings.subnet_ids,
                "load_balancer_security_group_id": load_balancer.security_group_id,
                # With least-connections the NLB's targets are the HAProxy instances.
                "target_group_arns": None if settings.least_connections else load_balancer.target_group_arns,
                "count": settings.compile_master_count,
                "instance_type": settings.instance_type,
                "ami_id": settings.ami_id,
                "root_volume_size_gb": settings.root_volume_size_gb,
                "key_name": settings.key_name,
                "admin_cidrs": settings.admin_cidrs,
                "primary_cidrs": settings.primary_cidrs,
                "tags": settings.tags,
                "drained": settings.drained_compile_masters,
            },
            opts=self.options(),
        )

    def haproxy(
        self,
        settings: pool_config.PoolSettings,
        pool_tag: str,
        load_balancer: PuppetLoadBalancer,
        compile_masters: CompileMasterPool,
    ) -> HaproxyTier:
        drained = set(settings.drained_compile_masters)
        in_rotation = [
            instance.private_ip
            for index, instance in enumerate(compile_masters.instances)
            if index not in drained
        ]
        return HaproxyTier(
            self.name,
            {
                "pool_name": pool_tag,
                "vpc_id": settings.vpc_id,
                "subnet_ids": settings.subnet_ids,
                "ami_id": settings.haproxy_ami_id or settings.ami_id,
                "load_balancer_security_group_id": load_balancer.security_group_id,
                "target_group_arns": load_balancer.target_group_arns,
                "compile_master_security_group_id": compile_masters.security_group_id,
                "compile_master_addresses": in_rotation,
                "ca_certificate": compile_masters.ca_certificate,
                "count": settings.haproxy_count,
                "instance_type": settings.haproxy_instance_type,
                "key_name": settings.key_name,
                "admin_cidrs": settings.admin_cidrs,
                "agent_idle_timeout_seconds": settings.agent_idle_timeout_seconds,
                "pcp_idle_timeout_seconds": settings.pcp_idle_timeout_seconds,
                "health_check_path": settings.health_check_path,
                "pcp_health_check_path": settings.pcp_health_check_path,
                "health_check_interval_seconds": settings.health_check_interval_seconds,
                "health_check_healthy_threshold": settings.health_check_healthy_threshold,
                "health_check_unhealthy_threshold": settings.health_check_unhealthy_threshold,
                "tags": settings.tags,
            },
            # The discovery record lists a compile master once it is joined.
            opts=pulumi.ResourceOptions(parent=self.pool, depends_on=[compile_masters]),
        )

    def health_gate(
        self,
        settings: pool_config.PoolSettings,
        load_balancer: PuppetLoadBalancer,
        targets: Sequence[pulumi.CustomResource],
        drained: Sequence[int],
        aws: AwsAccountArgs,
        ready: Sequence[pulumi.Resource],
    ) -> PoolHealthGate:
        return PoolHealthGate(
            self.name,
            {
                "load_balancer_arn": load_balancer.arn,
                "timeout_seconds": settings.wait_for_healthy_timeout_seconds,
                # The account and role the AWS provider uses, so the gate reads the same pool.
                "aws": aws,
                # One wait per compile master in rotation, made again only when it is new: an
                # update waits for what it adds or replaces; a sick one elsewhere never blocks it.
                "instance_ids": [target.id for target in targets],
                "drained": drained,
            },
            opts=self.options(ready),
        )

    def dns_names(
        self,
        settings: pool_config.PoolSettings,
        dns_names: list[str],
        load_balancer: PuppetLoadBalancer,
        ready: Sequence[pulumi.Resource],
    ) -> PoolDnsNames:
        return PoolDnsNames(
            self.name,
            {
                "names": dns_names,
                "hosted_zone_id": settings.hosted_zone_id or "",
                "load_balancer_dns_name": load_balancer.dns_name,
                "load_balancer_zone_id": load_balancer.zone_id,
                # pe-lb 0.5 made poolDnsName's record inside PuppetLoadBalancer: keep it, never remake it.
                "adopt_record_of": self.name if settings.pool_dns_name else None,
            },
            opts=self.options(ready),
        )

    def pe_repo(
        self,
        settings: pool_config.PoolSettings,
        load_balancer: PuppetLoadBalancer,
        compile_masters: CompileMasterPool,
        ready: Sequence[pulumi.Resource],
    ) -> PeRepoPoolAddress:
        return PeRepoPoolAddress(
            self.name,
            {
                "primary": self.primary(settings),
                "pool_address": load_balancer.pool_address,
                "compile_master_certnames": compile_masters.certnames,
            },
            opts=self.options(ready),
        )

    def pe_agent(
        self,
        settings: pool_config.PoolSettings,
        load_balancer: PuppetLoadBalancer,
        ready: Sequence[pulumi.Resource],
    ) -> PeAgentPoolAddress:
        return PeAgentPoolAddress(
            self.name,
            {"primary": self.primary(settings), "pool_address": load_balancer.pool_address},
            opts=self.options(ready),
        )


def _warn_of_pools_under_other_names(pool_tag: str, pool: pulumi.Resource) -> None:
    """A PeCompilerPool takes over parts wired by hand only under their own name (its parts' aliases):
    under another name it builds a second pool, and removing the old parts deletes the NLB agents
    use. Said at preview when this stack has a pool under other names and none under this one."""
    pools = preflight.pools_in_stack(pulumi.get_project(), pulumi.get_stack())
    others = pools - {pool_tag}
    if others and pool_tag not in pools:
        names = ", ".join(sorted(other.rsplit("/", 1)[1] for other in others))
        pulumi.log.warn(
            f"this stack already has a pe-lb pool named {names} (its NLB's {pe.POOL_TAG} tag) and none named "
            f"{pool_tag.rsplit('/', 1)[1]!r}: to take that pool over in place, give PeCompilerPool its name "
            "(pe-lb's own program used 'pe-lb'); under a new name this is a second pool, with its own NLB "
            "and compile masters, and removing the old parts from the program deletes the NLB agents use",
            resource=pool,
        )


def dashboard_name(pool_tag: str) -> str:
    """A CloudWatch dashboard name from the pool tag (project/stack/name): letters, digits, - and _."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", pool_tag)[:255]


def _config_key(arg: str) -> str:
    """The stack config key of an argument: compile_master_count -> compileMasterCount."""
    return re.sub(r"_([a-z0-9])", lambda match: match.group(1).upper(), arg)


def settings_as_args(settings: pool_config.PoolSettings) -> dict[str, Any]:
    """PeCompilerPool's args holding these settings (the stack config, read and checked): the values
    left at their defaults are left out, as the stack config leaves them (so the HAProxy tier's keys
    reach a flow-hash pool only when the stack config gives them, and are refused then)."""
    return {
        field.name: getattr(settings, field.name)
        for field in dataclasses.fields(settings)
        if not _is_default(field, getattr(settings, field.name))
    }


def _is_default(field: "dataclasses.Field[Any]", value: Any) -> bool:
    if field.default is not dataclasses.MISSING:
        return value is field.default or (type(value) is type(field.default) and value == field.default)
    if field.default_factory is not dataclasses.MISSING:
        default = field.default_factory()
        return type(value) is type(default) and value == default
    return False
