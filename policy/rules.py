"""The PE load-balancing rules as policy validations, kept apart from the pack's entry point.

`policy/__main__.py` only wraps these in a `PolicyPack` (whose constructor starts a
server and never returns), so tests import this module instead. Properties arrive
camelCase, as the engine sends them; an unknown value (during preview) is never a
violation by itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from components import pe, validation

LISTENER = "aws:lb/listener:Listener"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
ATTACHMENT = "aws:lb/targetGroupAttachment:TargetGroupAttachment"
INSTANCE = "aws:ec2/instance:Instance"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
ROUTE53_RECORD = "aws:route53/record:Record"
REMOTE_COMMAND = "command:remote:Command"
COMPILE_MASTER_POOL = "pe-lb:index:CompileMasterPool"

AWS_DEFAULT_TCP_IDLE_TIMEOUT = 350
AWS_DEFAULT_HEALTH_INTERVAL = 30
AWS_DEFAULT_UNHEALTHY_THRESHOLD = 3
HTTP_CHECKS = ("HTTP", "HTTPS")
ANYWHERE = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))

MIN_PCP_IDLE_KEY = "minimumSeconds"
MAX_DETECTION_KEY = "maximumSeconds"
POOL_ADDRESS_ELSEWHERE_KEY = "poolAddressManagedElsewhere"
"""pe-pool-wiring: the site sets pe_repo's pool address itself (Hiera, the console): check the
target groups only."""
DEFAULT_MAX_DETECTION_SECONDS = 30


@dataclass(frozen=True)
class Rule:
    """One policy: its name, what it checks, how hard, and the function that checks it."""

    name: str
    description: str
    level: EnforcementLevel
    validate: Callable[[Any, ReportViolation], None]
    stack: bool = False
    config: dict[str, dict[str, Any]] = field(default_factory=dict)

    def build(self) -> ResourceValidationPolicy | StackValidationPolicy:
        schema = PolicyConfigSchema(properties=self.config) if self.config else None
        kind = StackValidationPolicy if self.stack else ResourceValidationPolicy
        return kind(
            name=self.name,
            description=self.description,
            validate=self.validate,
            enforcement_level=self.level,
            config_schema=schema,
        )

    def defaults(self) -> dict[str, Any]:
        return {key: spec["default"] for key, spec in self.config.items() if "default" in spec}


# --- helpers ---------------------------------------------------------------------------------------


def known(value: Any) -> bool:
    """Plain values are known; the engine's placeholders for unknowns are not."""
    return isinstance(value, str | int | float | bool | list | dict)


def is_compile_master(resource_type: str, urn: str, props: Mapping[str, Any]) -> bool:
    """An instance in a CompileMasterPool, or one a user tagged as a compile master."""
    if resource_type != INSTANCE:
        return False
    tags = props.get("tags") or {}
    in_pool = f"{COMPILE_MASTER_POOL}$" in urn
    return in_pool or (isinstance(tags, dict) and tags.get(pe.ROLE_TAG) == pe.COMPILE_MASTER_ROLE)


def as_int(value: Any) -> int | None:
    """A whole number; the engine sends numbers as floats (protobuf), tests and users as ints."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        return None
    return int(value)


def pool_port(props: Mapping[str, Any]) -> int | None:
    port = as_int(props.get("port"))
    return port if port in pe.POOL_PORTS else None


@dataclass(frozen=True)
class Ingress:
    """One ingress permission, whatever resource type declared it."""

    protocol: str
    from_port: int
    to_port: int
    sources: tuple[str, ...]

    def covers(self, port: int) -> bool:
        if self.protocol in ("-1", "all"):
            return True
        return self.protocol in ("tcp", "6") and self.from_port <= port <= self.to_port

    def open_to_anywhere(self) -> bool:
        for source in self.sources:
            try:
                if ipaddress.ip_network(source, strict=False) in ANYWHERE:
                    return True
            except ValueError:
                continue
        return False


def ingress_of(resource_type: str, props: Mapping[str, Any]) -> list[Ingress]:
    def one(protocol: Any, low: Any, high: Any, sources: Iterable[Any]) -> Ingress:
        from_port, to_port = as_int(low), as_int(high)
        return Ingress(
            str(protocol).lower(),
            0 if from_port is None else from_port,
            65535 if to_port is None else to_port,
            tuple(s for s in sources if isinstance(s, str)),
        )

    if resource_type == INGRESS_RULE:
        sources = [props.get("cidrIpv4"), props.get("cidrIpv6")]
        return [one(props.get("ipProtocol"), props.get("fromPort"), props.get("toPort"), sources)]
    if resource_type == SECURITY_GROUP_RULE and props.get("type") == "ingress":
        sources = [*(props.get("cidrBlocks") or []), *(props.get("ipv6CidrBlocks") or [])]
        return [one(props.get("protocol"), props.get("fromPort"), props.get("toPort"), sources)]
    if resource_type == SECURITY_GROUP:
        return [
            one(rule.get("protocol"), rule.get("fromPort"), rule.get("toPort"),
                [*(rule.get("cidrBlocks") or []), *(rule.get("ipv6CidrBlocks") or [])])
            for rule in props.get("ingress") or []
            if isinstance(rule, dict)
        ]  # fmt: skip
    return []


# --- resource policies -------------------------------------------------------------------------------


def listener_tcp_pass_through(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != LISTENER or (port := pool_port(args.props)) is None:
        return
    protocol = args.props.get("protocol")
    if known(protocol) and protocol != "TCP":
        report(
            f"the {port} listener uses {protocol}; agents authenticate to the compile masters with client "
            "certificates, so the load balancer must pass TCP through (protocol TCP, no certificate)",
            None,
        )
    elif args.props.get("certificateArn"):
        report(f"the {port} listener has a certificate; TCP pass-through must not terminate TLS", None)


def pcp_idle_timeout(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != LISTENER or pool_port(args.props) != pe.PCP_BROKER_PORT:
        return
    minimum = int(args.get_config().get(MIN_PCP_IDLE_KEY, pe.PCP_BROKER_IDLE_SECONDS))
    given = args.props.get("tcpIdleTimeoutSeconds")
    timeout = AWS_DEFAULT_TCP_IDLE_TIMEOUT if given is None else as_int(given)
    if timeout is not None and timeout < minimum:
        report(
            f"the {pe.PCP_BROKER_PORT} listener closes idle connections after {timeout} s; PCP brokers keep "
            "quiet PXP connections for up to 15 minutes (older PE; 6 since 2020), so set "
            f"tcpIdleTimeoutSeconds to at least {minimum}",
            None,
        )


def health_check_of(props: Mapping[str, Any]) -> dict[str, Any]:
    check = props.get("healthCheck")
    return check if isinstance(check, dict) else {}


def health_check_status_endpoint(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != TARGET_GROUP or (port := pool_port(args.props)) is None:
        return
    check = health_check_of(args.props)
    if check.get("enabled") is False:
        report(
            f"the {port} target group has health checks off; an unhealthy compile master stays in rotation",
            None,
        )
        return
    protocol = check.get("protocol", "TCP")
    path = check.get("path")
    if protocol in HTTP_CHECKS:
        if known(path) and not str(path).startswith(pe.STATUS_PATH):
            report(
                f"the {port} target group checks {path!r}; check {pe.STATUS_PATH} (200 when healthy)",
                None,
            )
    elif known(protocol) and protocol != "TCP":
        report(
            f"the {port} target group's health check uses {protocol}; use HTTPS on {pe.STATUS_PATH}, or TCP",
            None,
        )


def health_check_prefers_http(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != TARGET_GROUP or (port := pool_port(args.props)) is None:
        return
    check = health_check_of(args.props)
    if check.get("enabled") is not False and check.get("protocol", "TCP") == "TCP":
        report(
            f"the {port} target group only checks that a port listens (TCP); the PE page prefers an HTTP(S) "
            f"check of {pe.STATUS_PATH}, which also takes a sick puppetserver out of rotation",
            None,
        )


def failure_detection_time(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != TARGET_GROUP or (port := pool_port(args.props)) is None:
        return
    maximum = int(args.get_config().get(MAX_DETECTION_KEY, DEFAULT_MAX_DETECTION_SECONDS))
    check = health_check_of(args.props)
    interval = as_int(check.get("interval", AWS_DEFAULT_HEALTH_INTERVAL))
    threshold = as_int(check.get("unhealthyThreshold", AWS_DEFAULT_UNHEALTHY_THRESHOLD))
    if interval is not None and threshold is not None and interval * threshold > maximum:
        report(
            f"a dead compile master stays in the {port} target group for {interval} s x {threshold} = "
            f"{interval * threshold} s; lower interval or unhealthyThreshold to detect it within {maximum} s",
            None,
        )


def compile_master_hardening(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not is_compile_master(args.resource_type, args.urn, args.props):
        return
    metadata = args.props.get("metadataOptions") or {}
    if known(metadata.get("httpTokens")) and metadata.get("httpTokens") != "required":
        report("compile master allows IMDSv1: set metadataOptions.httpTokens to 'required'", None)
    root = args.props.get("rootBlockDevice") or {}
    if root.get("encrypted") is not True:
        report("compile master's root volume is not encrypted: set rootBlockDevice.encrypted", None)
    if args.props.get("associatePublicIpAddress") is True:
        report("compile master has a public IP: agents reach it through the load balancer only", None)


def no_open_ssh(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for ingress in ingress_of(args.resource_type, args.props):
        if ingress.covers(pe.SSH_PORT) and ingress.open_to_anywhere():
            report(f"SSH (port {pe.SSH_PORT}) is open to the whole internet; admit only adminCidrs", None)


def no_open_ssh_in_pieces(args: StackValidationArgs, report: ReportViolation) -> None:
    """The stack's SSH sources together, as the stack config checks adminCidrs: not the whole
    internet in pieces (0.0.0.0/1 + 128.0.0.0/1), and no more public addresses than one
    organisation holds (a /8 of IPv4, a /16 of IPv6; validation.MOST_PUBLIC_PREFIX says why).
    pe-no-open-ssh sees one rule at a time."""
    networks: set[ipaddress.IPv4Network | ipaddress.IPv6Network] = set()
    for resource in args.resources:
        for ingress in ingress_of(resource.resource_type, resource.props):
            if ingress.covers(pe.SSH_PORT) and not ingress.open_to_anywhere():
                for source in ingress.sources:
                    try:
                        networks.add(ipaddress.ip_network(source, strict=False))
                    except ValueError:
                        continue
    pieces = [
        str(n) for n in sorted(networks, key=lambda n: (n.version, int(n.network_address), n.prefixlen))
    ]
    listed = ", ".join(pieces[:8]) + (f" and {len(pieces) - 8} more" if len(pieces) > 8 else "")
    if validation.whole_internet(pieces) is not None:
        report(
            f"SSH (port {pe.SSH_PORT}) is open to the whole internet in pieces ({listed}); "
            "admit only adminCidrs",
            None,
        )
    elif (excess := validation.too_many_public_addresses(pieces)) is not None:
        version, count, most = excess
        report(
            f"SSH (port {pe.SSH_PORT}) is open to {count:,} public IPv{version} addresses together "
            f"({listed}), more than a /{validation.MOST_PUBLIC_PREFIX[version]} holds ({most:,}): "
            "a share of the internet, not administrators' networks; admit only adminCidrs",
            None,
        )


def pcp_connection_termination(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != TARGET_GROUP or pool_port(args.props) != pe.PCP_BROKER_PORT:
        return
    if args.props.get("connectionTermination") is not True:
        report(
            f"the {pe.PCP_BROKER_PORT} target group keeps PXP connections on a deregistered broker until "
            "they "
            "idle out; set connectionTermination so agents reconnect to a broker in rotation",
            None,
        )


# --- stack policies ----------------------------------------------------------------------------------


def _of(args: StackValidationArgs, resource_type: str) -> list[PolicyResource]:
    return [r for r in args.resources if r.resource_type == resource_type]


def _depends(resource: PolicyResource, prop: str, on: PolicyResource) -> bool:
    return any(d.urn == on.urn for d in resource.property_dependencies.get(prop, []))


def _has_pool_listener(args: StackValidationArgs, balancer: PolicyResource) -> bool:
    return any(
        pool_port(listener.props) and _depends(listener, "loadBalancerArn", balancer)
        for listener in _of(args, LISTENER)
    )


def is_haproxy(resource: PolicyResource) -> bool:
    """An HAProxy instance of balancing=least-connections (HaproxyTier's role tag)."""
    tags = resource.props.get("tags") or {}
    return (
        resource.resource_type == INSTANCE
        and isinstance(tags, dict)
        and tags.get(pe.ROLE_TAG) == pe.HAPROXY_ROLE
    )


def pool_wiring(args: StackValidationArgs, report: ReportViolation) -> None:
    masters = [r for r in args.resources if is_compile_master(r.resource_type, r.urn, r.props)]
    if not masters:
        return
    groups = {r.urn: pool_port(r.props) for r in _of(args, TARGET_GROUP) if pool_port(r.props)}
    attachments = _of(args, ATTACHMENT)
    # With least-connections, HAProxy is in the target groups and balances to the compile masters
    # its discovery record lists (an A record made of their addresses).
    discovery = [
        r for r in _of(args, ROUTE53_RECORD) if r.props.get("type") == "A" and r.props.get("records")
    ]
    haproxies = [r for r in args.resources if is_haproxy(r)]
    for target in [*masters, *haproxies]:
        ports = set()
        for attachment in attachments:
            if not _depends(attachment, "targetId", target) and attachment.props.get(
                "targetId"
            ) != target.props.get("id"):
                continue
            for group in attachment.property_dependencies.get("targetGroupArn", []):
                if group.urn in groups:
                    ports.add(groups[group.urn])
        missing = sorted(set(pe.POOL_PORTS) - ports)
        behind_haproxy = haproxies and any(_depends(record, "records", target) for record in discovery)
        if missing and ports == set() and target in masters and behind_haproxy:
            continue
        if missing:
            what = "HAProxy instance" if target in haproxies else "compile master"
            report(
                f"{what} {target.name} is not registered in the "
                f"{' and '.join(map(str, missing))} target "
                "group(s); agents and PXP connections need it in both",
                target.urn,
            )
    if args.get_config().get(POOL_ADDRESS_ELSEWHERE_KEY):
        return
    balancers = [
        lb for lb in _of(args, LOAD_BALANCER)
        if _has_pool_listener(args, lb)
    ]  # fmt: skip
    records = [
        record for record in _of(args, ROUTE53_RECORD)
        if any(_depends(record, "aliases", lb) for lb in balancers)
    ]  # fmt: skip
    addresses = {str(lb.props.get("dnsName")) for lb in balancers if known(lb.props.get("dnsName"))}
    addresses |= {str(r.props.get("name")) for r in records if known(r.props.get("name"))}
    pool_resources = [*balancers, *records]
    for command in _of(args, REMOTE_COMMAND):
        create = command.props.get("create")
        sets_pe_repo = pe.PE_REPO_POOL_ADDRESS_PARAMETER in str(create) or pe.PE_REPO_SET_ACTION in str(
            create
        )
        if known(create) and sets_pe_repo:
            if any(address in str(create) for address in addresses):
                return
        elif not known(create) and any(_depends(command, "create", r) for r in pool_resources):
            return
    report(
        f"no pe_repo command points {pe.PE_REPO_POOL_ADDRESS_PARAMETER} at the pool address "
        f"({', '.join(sorted(addresses)) or 'the NLB'}); new agents would install against a single compile "
        f"master. Add a PeRepoPoolAddress, or set {POOL_ADDRESS_ELSEWHERE_KEY} in this policy's config if "
        "Hiera or the console sets it",
        None,
    )


def open_agent_ports_only_internet_facing(args: StackValidationArgs, report: ReportViolation) -> None:
    internet_facing = any(lb.props.get("internal") is False for lb in _of(args, LOAD_BALANCER))
    if internet_facing:
        return
    for resource in args.resources:
        for ingress in ingress_of(resource.resource_type, resource.props):
            for port in pe.POOL_PORTS:
                if ingress.covers(port) and ingress.open_to_anywhere():
                    report(
                        f"{resource.name} opens {port} to the whole internet, but the pool's load balancer "
                        "is "
                        "internal; admit only the agents' networks (agentCidrs)",
                        resource.urn,
                    )


def cross_zone(args: StackValidationArgs, report: ReportViolation) -> None:
    for lb in _of(args, LOAD_BALANCER):
        if _has_pool_listener(args, lb) and lb.props.get("enableCrossZoneLoadBalancing") is not True:
            report(
                f"{lb.name} balances within each AZ only; with compile masters spread unevenly over AZs, "
                "some "
                "get more agents. Set enableCrossZoneLoadBalancing",
                lb.urn,
            )


MANDATORY, ADVISORY = EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY

RULES: list[Rule] = [
    Rule(
        "pe-listener-tcp-pass-through",
        "Listeners on 8140 and 8142 are TCP pass-through, never TLS.",
        MANDATORY,
        listener_tcp_pass_through,
    ),
    Rule(
        "pe-pcp-idle-timeout",
        "The 8142 listener's TCP idle timeout outlasts the PCP brokers' own (15 min in older PE, 6 since "
        "2020): at least minimumSeconds, 900 by default.",
        MANDATORY,
        pcp_idle_timeout,
        config={MIN_PCP_IDLE_KEY: {"type": "integer", "default": pe.PCP_BROKER_IDLE_SECONDS, "minimum": 60}},
    ),
    Rule(
        "pe-health-check-status-endpoint",
        "Target groups on 8140/8142 check health: HTTP(S) on /status/v1/simple, or TCP.",
        MANDATORY,
        health_check_status_endpoint,
    ),
    Rule(
        "pe-health-check-prefers-http",
        "TCP health checks only see a listening port; the PE page prefers HTTP(S).",
        ADVISORY,
        health_check_prefers_http,
    ),
    Rule(
        "pe-failure-detection-time",
        "A dead compile master leaves rotation within a bound (interval x unhealthy threshold).",
        ADVISORY,
        failure_detection_time,
        config={
            MAX_DETECTION_KEY: {"type": "integer", "default": DEFAULT_MAX_DETECTION_SECONDS, "minimum": 10}
        },
    ),
    Rule(
        "pe-compile-master-hardening",
        "Compile masters require IMDSv2, encrypt the root volume and have no public IP.",
        MANDATORY,
        compile_master_hardening,
    ),
    Rule("pe-no-open-ssh", "No security group admits SSH from 0.0.0.0/0 or ::/0.", MANDATORY, no_open_ssh),
    Rule(
        "pe-no-open-ssh-in-pieces",
        "SSH rules together admit neither the whole internet (0.0.0.0/1 + 128.0.0.0/1) nor more public "
        "addresses than a /8 (IPv4) or a /16 (IPv6).",
        MANDATORY,
        no_open_ssh_in_pieces,
        stack=True,
    ),
    Rule(
        "pe-pcp-connection-termination",
        "The 8142 target group ends the connections of deregistered brokers.",
        ADVISORY,
        pcp_connection_termination,
    ),
    Rule(
        "pe-open-agent-ports-only-internet-facing",
        "8140/8142 are open to the internet only on an internet-facing pool.",
        ADVISORY,
        open_agent_ports_only_internet_facing,
        stack=True,
    ),
    Rule(
        "pe-pool-wiring",
        "Every compile master is in both target groups (with least-connections: in HAProxy's discovery "
        "record, and every HAProxy instance in both), and pe_repo points at the pool address.",
        MANDATORY,
        pool_wiring,
        config={
            POOL_ADDRESS_ELSEWHERE_KEY: {
                "type": "boolean",
                "default": False,
                "description": "pe_repo's pool address is set outside this stack (Hiera, the console)",
            }
        },
        stack=True,
    ),
    Rule(
        "pe-cross-zone",
        "The pool's NLB balances across availability zones.",
        ADVISORY,
        cross_zone,
        stack=True,
    ),
]
