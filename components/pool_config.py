"""A pool's whole input, checked before anything is declared: one set of checks for both doors.

The stack config (keys under ``pe-lb:``, strings as Pulumi hands them over) and
PeCompilerPool's args (typed values, in any Pulumi language) carry the same names: the
config key ``compileMasterCount`` is the arg ``compile_master_count`` (``compileMasterCount``
in the schema). Both are read here by ``parse``, so a value is refused the same way, with the
same message, whichever way it came in. A value that is another resource's output is passed
on unchecked here: the part that takes it checks it once it is known.
"""

import dataclasses
import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pulumi

from . import pe, preflight, validation
from .compile_master_pool import (
    DEFAULT_COUNT,
    DEFAULT_INSTANCE_TYPE,
    DEFAULT_ROOT_VOLUME_GB,
    MAX_COMPILE_MASTERS,
    ROOT_VOLUME_GB_RANGE,
)
from .haproxy_tier import DEFAULT_HAPROXY_COUNT, DEFAULT_HAPROXY_INSTANCE_TYPE, HAPROXY_COUNT_RANGE
from .load_balancer import load_balancer_identity
from .network import check_inbound_rule_quota, user_tags
from .pool_alarms import DEFAULT_UNHEALTHY_MINUTES, UNHEALTHY_MINUTES_RANGE, sns_topic_arn
from .pool_health_gate import DEFAULT_TIMEOUT_SECONDS as DEFAULT_WAIT_SECONDS
from .pool_health_gate import TIMEOUT_SECONDS_RANGE as WAIT_SECONDS_RANGE
from .primary import DEFAULT_SSH_USER, ssh_host_key, ssh_user

RETIRED_KEYS = {
    "autosignSecret": (
        "autosignSecret is no longer used and must go: a shared autosign secret lets anyone who reads "
        "user data mint a pe_compiler certificate for the pool. The primary now verifies each compile "
        "master's request (certname, alt names, pp_auth_role, platform) and signs it itself "
        "(pe-lb join). Remove it: pulumi config rm autosignSecret"
    ),
}
"""Keys that once meant something: refused with why, never silently ignored."""

REQUIRED_HINTS = {
    "amiId": (
        "compile masters must run the primary's OS, major release and architecture (PE's rule), and a "
        "looked-up 'newest' image would rebuild the pool whenever a newer one appears; pick one and pin "
        "it, e.g. for a RHEL 9 x86_64 primary: aws ec2 describe-images --owners 309956199498 --filters "
        "'Name=name,Values=RHEL-9.*_HVM-*-x86_64-*' --query 'sort_by(Images,&CreationDate)[-1].ImageId'"
    ),
}
"""Why a required key has no default, where its description alone does not say."""

T = TypeVar("T")


class ConfigError(ValueError):
    """One or more of a pool's values are wrong; the message has a line for each, naming its key."""


@dataclass(frozen=True)
class PoolSettings:
    """The pool's input, checked; each field is the snake_case form of its config key.

    Fields typed ``pulumi.Input`` may hold another resource's output (PeCompilerPool's args only):
    checked by the same function once the value is known.
    """

    primary_host: str
    primary_host_key: str
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    ami_id: pulumi.Input[str]
    agent_cidrs: pulumi.Input[Sequence[str]]
    primary_cidrs: pulumi.Input[Sequence[str]]
    ssh_private_key: pulumi.Input[str] = field(repr=False)
    compile_master_count: int = DEFAULT_COUNT
    instance_type: str = DEFAULT_INSTANCE_TYPE
    load_balancer_subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]] = field(default_factory=list)
    """The NLB's subnets; empty means subnet_ids (see nlb_subnet_ids)."""
    drained_compile_masters: list[int] = field(default_factory=list)
    root_volume_size_gb: int = DEFAULT_ROOT_VOLUME_GB
    internal: bool = True
    pcp_idle_timeout_seconds: int = pe.DEFAULT_PCP_IDLE_TIMEOUT_SECONDS
    agent_idle_timeout_seconds: int = pe.DEFAULT_AGENT_IDLE_TIMEOUT_SECONDS
    health_check_path: str = pe.STATUS_PATH
    pcp_health_check_path: str = pe.PCP_STATUS_PATH
    health_check_interval_seconds: int = pe.HealthCheckTiming.interval_seconds
    health_check_healthy_threshold: int = pe.HealthCheckTiming.healthy_threshold
    health_check_unhealthy_threshold: int = pe.HealthCheckTiming.unhealthy_threshold
    health_check_protocol: str = "HTTPS"
    pool_dns_name: str | None = None
    hosted_zone_id: str | None = None
    additional_pool_dns_names: list[str] = field(default_factory=list)
    """Names that reach the pool too (records, certificates) while agents move to or off them."""
    ssh_user: str = DEFAULT_SSH_USER
    key_name: str | None = None
    admin_cidrs: pulumi.Input[Sequence[str]] = field(default_factory=list)
    tags: pulumi.Input[Mapping[str, str]] = field(default_factory=dict)
    wait_for_healthy: bool = True
    agents_use_pool: bool = True
    wait_for_healthy_timeout_seconds: int = DEFAULT_WAIT_SECONDS
    alarm_topic_arn: pulumi.Input[str] | None = None
    """SNS topic every alarm of the pool notifies (PoolAlarms); None: alarms show in CloudWatch only."""
    healthy_targets_floor: int | None = None
    """Fewest healthy compile masters per port before an alarm; None: all in rotation but one."""
    unhealthy_target_minutes: int = DEFAULT_UNHEALTHY_MINUTES
    """Minutes a compile master may be unhealthy in a target group before an alarm."""
    balancing: str = pe.FLOW_HASH
    """flow-hash (the NLB targets the compile masters) or least-connections (an HAProxy tier)."""
    haproxy_count: int = DEFAULT_HAPROXY_COUNT
    """HAProxy instances of the least-connections tier, spread over subnetIds' zones."""
    haproxy_instance_type: str = DEFAULT_HAPROXY_INSTANCE_TYPE
    haproxy_ami_id: pulumi.Input[str] | None = None
    """The HAProxy instances' image; None: amiId (its distribution's haproxy package)."""

    @property
    def least_connections(self) -> bool:
        return self.balancing == pe.LEAST_CONNECTIONS

    @property
    def nlb_subnet_ids(self) -> pulumi.Input[Sequence[pulumi.Input[str]]]:
        """The NLB's subnets: loadBalancerSubnetIds, else the compile masters' subnetIds."""
        return self.load_balancer_subnet_ids or self.subnet_ids


def check_against_aws(settings: PoolSettings, name: str) -> None:
    """What AWS would refuse halfway through `pulumi up`, asked of AWS now (provider invokes).

    ``name`` is the pool's (PeCompilerPool's, and so its PuppetLoadBalancer's) resource name.
    Values that are other resources' outputs are not known yet: their checks are left to the
    parts that take them.
    """
    errors = []
    nlb_key = "loadBalancerSubnetIds" if settings.load_balancer_subnet_ids else "subnetIds"
    checks: list[Callable[[], None]] = []
    nlb_subnets = _known_list(settings.nlb_subnet_ids)
    if nlb_subnets is not None:
        checks.append(lambda: preflight.one_subnet_per_zone(nlb_key, nlb_subnets))
    zone = settings.hosted_zone_id
    if zone:
        names = {"poolDnsName": settings.pool_dns_name} if settings.pool_dns_name else {}
        for index, other in enumerate(settings.additional_pool_dns_names):
            names[f"additionalPoolDnsNames[{index}]"] = other
        for key, dns_name in names.items():
            checks.append(functools.partial(preflight.name_in_zone, key, dns_name, "hostedZoneId", zone))
            checks.append(functools.partial(preflight.record_is_free, key, dns_name, zone, f"{name}-nlb"))
    checks.append(lambda: _keeps_agents_addresses(settings, name))
    if settings.least_connections and isinstance(settings.vpc_id, str):
        vpc_id = settings.vpc_id
        checks.append(lambda: preflight.vpc_resolves_private_zones("vpcId", vpc_id))
    for check in checks:
        try:
            check()
        except ValueError as error:
            errors.append(str(error))
    if errors:
        raise ConfigError("\n".join(errors))


def _keeps_agents_addresses(settings: PoolSettings, name: str) -> None:
    """Refuse, at preview, a change that would leave agents holding an address that no longer serves.

    Agents learn a new pool address on their next Puppet run (PE's runinterval, 30 minutes by
    default); the addresses they hold must keep reaching compile masters whose certificates name
    them until then. Found through the NLB this stack made (its pool tag), on every preview after
    the first `pulumi up` with this version.
    """
    existing = preflight.existing_load_balancer(load_balancer_identity(name))
    nlb_subnets = _known_list(settings.nlb_subnet_ids)
    if existing is None or nlb_subnets is None:
        return
    rebuild = preflight.rebuild_reasons(existing, settings.internal, nlb_subnets)
    if rebuild and not settings.pool_dns_name:
        raise ValueError(
            f"this change rebuilds the NLB ({'; '.join(rebuild)}) and agents know the pool only by the "
            f"NLB's own DNS name ({existing.dns_name}), which goes with it. First give the pool a name: "
            "set poolDnsName and hostedZoneId and run pulumi up (the NLB stays; compile masters are "
            "replaced to carry the name); wait until every agent has run Puppet once (runinterval, 30 "
            "minutes by default); then make this change"
        )
    if not (settings.pool_dns_name and settings.hosted_zone_id):
        return
    served = preflight.names_aliasing(settings.hosted_zone_id, existing.dns_name)
    if settings.pool_dns_name not in served:
        held = ", ".join([*sorted(served), f"{existing.dns_name} (the NLB's own)"])
        raise ValueError(
            f"poolDnsName={settings.pool_dns_name!r} is not yet a name of this pool (today: {held}); "
            "given to agents in one step, it would send them to compile masters whose certificates "
            f"lack it, and agents holding an old name would lose it. Move in `pulumi up`s: 1) add "
            f"{settings.pool_dns_name} to additionalPoolDnsNames, keeping poolDnsName as it is; 2) "
            f"poolDnsName={settings.pool_dns_name}, with the name agents had (if it was one of these) "
            "in additionalPoolDnsNames: agents are told the new name; 3) once every agent has run "
            "Puppet (runinterval, 30 minutes by default), remove the old name from "
            "additionalPoolDnsNames"
        )


def parse(raw: Mapping[str, object], secret_keys: set[str] | None = None) -> PoolSettings:
    """Check every key and build the settings; all problems are reported together.

    ``raw`` maps config keys (camelCase) to values. ``secret_keys``: the keys the stack config
    holds as secrets, when ``raw`` is the stack config; None when it is PeCompilerPool's args.
    """
    reader = _Reader(raw, secret_keys)
    pool_dns_name = reader.optional("poolDnsName", lambda k, v: validation.hostname(k, v))
    hosted_zone_id = reader.optional("hostedZoneId", _hosted_zone_id)
    if pool_dns_name and not hosted_zone_id and not reader.errors:
        reader.errors.append("poolDnsName needs hostedZoneId: the Route53 zone of its alias to the NLB")
    settings = PoolSettings(
        primary_host=reader.required("primaryHost", validation.hostname),
        primary_host_key=reader.required("primaryHostKey", ssh_host_key),
        vpc_id=reader.required("vpcId", lambda k, v: validation.aws_id(k, v, "vpc")),
        subnet_ids=reader.required("subnetIds", _subnet_ids),
        load_balancer_subnet_ids=reader.optional(
            "loadBalancerSubnetIds", lambda k, v: _subnet_ids(k, v) if _json(k, v) != [] else []
        )
        or [],
        agent_cidrs=reader.required(
            "agentCidrs", lambda k, v: validation.cidr_list(k, _json(k, v), allow_empty=False, ipv4_only=True)
        ),
        ssh_private_key=reader.secret("sshPrivateKey", _private_key, required=True) or "",
        compile_master_count=reader.integer("compileMasterCount", DEFAULT_COUNT, 1, MAX_COMPILE_MASTERS),
        instance_type=reader.optional("instanceType", _instance_type) or DEFAULT_INSTANCE_TYPE,
        ami_id=reader.required("amiId", lambda k, v: validation.aws_id(k, v, "ami")),
        root_volume_size_gb=reader.integer("rootVolumeSizeGb", DEFAULT_ROOT_VOLUME_GB, *ROOT_VOLUME_GB_RANGE),
        internal=reader.boolean("internal", True),
        pcp_idle_timeout_seconds=reader.integer(
            "pcpIdleTimeoutSeconds",
            pe.DEFAULT_PCP_IDLE_TIMEOUT_SECONDS,
            *pe.PCP_IDLE_TIMEOUT_RANGE,
            pe.PCP_IDLE_TIMEOUT_WHY,
        ),
        agent_idle_timeout_seconds=reader.integer(
            "agentIdleTimeoutSeconds",
            pe.DEFAULT_AGENT_IDLE_TIMEOUT_SECONDS,
            *pe.NLB_IDLE_TIMEOUT_RANGE,
            pe.NLB_IDLE_TIMEOUT_WHY,
        ),
        health_check_path=reader.optional("healthCheckPath", validation.status_path) or pe.STATUS_PATH,
        pcp_health_check_path=reader.optional("pcpHealthCheckPath", validation.status_path)
        or pe.PCP_STATUS_PATH,
        health_check_interval_seconds=reader.integer(
            "healthCheckIntervalSeconds",
            pe.HealthCheckTiming.interval_seconds,
            *pe.HEALTH_CHECK_INTERVAL_RANGE,
            "the NLB's health-check interval range",
        ),
        health_check_healthy_threshold=reader.integer(
            "healthCheckHealthyThreshold",
            pe.HealthCheckTiming.healthy_threshold,
            *pe.HEALTH_CHECK_THRESHOLD_RANGE,
            "the NLB's threshold range",
        ),
        health_check_unhealthy_threshold=reader.integer(
            "healthCheckUnhealthyThreshold",
            pe.HealthCheckTiming.unhealthy_threshold,
            *pe.HEALTH_CHECK_THRESHOLD_RANGE,
            "the NLB's threshold range",
        ),
        health_check_protocol=reader.optional(
            "healthCheckProtocol", lambda k, v: validation.one_of(k, v.upper(), pe.HEALTH_CHECK_PROTOCOLS)
        )
        or "HTTPS",
        pool_dns_name=pool_dns_name,
        hosted_zone_id=hosted_zone_id,
        additional_pool_dns_names=reader.optional(
            "additionalPoolDnsNames",
            lambda k, v: _additional_names(k, _json(k, v), pool_dns_name, hosted_zone_id),
        )
        or [],
        ssh_user=reader.optional("sshUser", ssh_user) or DEFAULT_SSH_USER,
        key_name=reader.optional("keyName", _key_name),
        admin_cidrs=reader.optional(
            "adminCidrs", lambda k, v: validation.not_the_internet(k, validation.cidr_list(k, _json(k, v)))
        )
        or [],
        primary_cidrs=reader.required(
            "primaryCidrs",
            lambda k, v: validation.cidr_list(
                k, _json(k, v), allow_empty=False, ipv4_only=True, why_ipv4=COMPILE_MASTERS_ARE_IPV4
            ),
        ),
        tags=reader.optional("tags", lambda k, v: dict(user_tags(k, _json(k, v)))) or {},
        wait_for_healthy=reader.boolean("waitForHealthy", True),
        agents_use_pool=reader.boolean("agentsUsePool", True),
        wait_for_healthy_timeout_seconds=reader.integer(
            "waitForHealthyTimeoutSeconds", DEFAULT_WAIT_SECONDS, *WAIT_SECONDS_RANGE
        ),
        alarm_topic_arn=reader.optional("alarmTopicArn", sns_topic_arn),
        unhealthy_target_minutes=reader.integer(
            "unhealthyTargetMinutes", DEFAULT_UNHEALTHY_MINUTES, *UNHEALTHY_MINUTES_RANGE
        ),
    )

    settings = _balancing(reader, settings)
    drained = reader.optional("drainedCompileMasters", lambda k, v: _pool_indexes(k, v, settings))
    if drained:
        settings = dataclasses.replace(settings, drained_compile_masters=drained)
    in_rotation = settings.compile_master_count - len(settings.drained_compile_masters)
    floor = reader.optional(
        "healthyTargetsFloor",
        lambda k, v: _whole_number(k, v, 0, in_rotation, "the compile masters in rotation; 0: all but one"),
    )
    if floor:
        settings = dataclasses.replace(settings, healthy_targets_floor=floor)
    reader.errors.extend(_rule_quota_errors(settings))
    if reader.errors:
        raise ConfigError("\n".join(reader.errors))
    return settings


HAPROXY_DEFAULTS: dict[str, object] = {
    "haproxyCount": DEFAULT_HAPROXY_COUNT,
    "haproxyInstanceType": DEFAULT_HAPROXY_INSTANCE_TYPE,
    "haproxyAmiId": "",
}
"""Keys of the least-connections tier, with the defaults Pulumi.yaml gives every stack: another
value with flow-hash is refused, never silently ignored."""


def _balancing(reader: "_Reader", settings: PoolSettings) -> PoolSettings:
    balancing = (
        reader.optional("balancing", lambda k, v: validation.one_of(k, v, pe.BALANCING_MODES)) or pe.FLOW_HASH
    )
    given = [
        key
        for key, default in HAPROXY_DEFAULTS.items()
        if not reader._absent(key) and str(reader.raw[key]) != str(default)
    ]
    if balancing != pe.LEAST_CONNECTIONS:
        if given:
            reader.errors.append(
                f"{', '.join(given)} configure the HAProxy tier of balancing={pe.LEAST_CONNECTIONS}; "
                f"balancing is {balancing}: set balancing={pe.LEAST_CONNECTIONS}, or remove them"
            )
        return settings
    if str(reader.raw.get("healthyTargetsFloor") or 0) != "0":
        reader.errors.append(
            f"healthyTargetsFloor counts compile masters healthy in the NLB's target groups; with balancing="
            f"{pe.LEAST_CONNECTIONS} the NLB's targets are the HAProxy instances, alarmed when fewer than "
            "all but one are healthy: remove healthyTargetsFloor"
        )
    if settings.health_check_protocol != "HTTPS":
        reader.errors.append(
            f"healthCheckProtocol={settings.health_check_protocol} cannot go with balancing="
            f"{pe.LEAST_CONNECTIONS}: HAProxy checks each compile master's status over TLS, verified "
            "with the PE CA, as HTTPS does; use HTTPS"
        )
    return dataclasses.replace(
        settings,
        balancing=balancing,
        haproxy_count=reader.integer(
            "haproxyCount",
            DEFAULT_HAPROXY_COUNT,
            *HAPROXY_COUNT_RANGE,
            "two or more, one per zone: one HAProxy instance alone is a single point of failure",
        ),
        haproxy_instance_type=reader.optional("haproxyInstanceType", _instance_type)
        or DEFAULT_HAPROXY_INSTANCE_TYPE,
        haproxy_ami_id=reader.optional("haproxyAmiId", lambda k, v: validation.aws_id(k, v, "ami")),
    )


OUTPUT_KEYS = frozenset(
    {
        "vpcId",
        "haproxyAmiId",
        "subnetIds",
        "loadBalancerSubnetIds",
        "amiId",
        "agentCidrs",
        "primaryCidrs",
        "adminCidrs",
        "tags",
        "sshPrivateKey",
        "alarmTopicArn",
    }
)
"""Keys whose value may be another resource's output (a VPC's subnets, a topic made alongside):
checked once known. The others decide which resources exist, so they must be known now."""


class _Reader:
    """Reads a pool's values and collects one error line per bad key.

    From the stack config (``secret_keys`` given) every value is a string, as Pulumi hands it
    over; from PeCompilerPool's args (``secret_keys`` None) values are typed and may be outputs.
    """

    def __init__(self, raw: Mapping[str, object], secret_keys: set[str] | None) -> None:
        self.raw = raw
        self.secret_keys = secret_keys
        self.from_config = secret_keys is not None
        self.errors: list[str] = []
        self.errors.extend(RETIRED_KEYS[key] for key in sorted(set(raw) & set(RETIRED_KEYS)))
        unknown = sorted(set(raw) - set(KNOWN_KEYS) - set(RETIRED_KEYS))
        if unknown:
            self.errors.append(
                f"unknown config key(s) {', '.join(unknown)}; known keys: {', '.join(KNOWN_KEYS)}"
            )

    def _check(self, key: str, check: Callable[[str, Any], T]) -> T | None:
        value = self.raw[key]
        if not validation.known(value):
            if key in OUTPUT_KEYS:
                # The same check, on the value once it resolves.
                return validation.checked(value, lambda known: check(key, known))  # type: ignore[return-value]
            self.errors.append(
                f"{key} must be known when the program runs (a plain value, not another resource's "
                "output): it decides which resources the pool declares"
            )
            return None
        try:
            return check(key, value)
        except ValueError as error:
            message = str(error)
            # A check's own error names its key; one from deeper down (int(), json) gets it here.
            self.errors.append(message if message.startswith(key) else f"{key}: {message}")
            return None

    def _absent(self, key: str) -> bool:
        return self.raw.get(key) is None or self.raw.get(key) == ""

    def optional(self, key: str, check: Callable[[str, Any], T]) -> T | None:
        if self._absent(key):
            return None
        return self._check(key, check)

    def required(self, key: str, check: Callable[[str, Any], T]) -> T:
        if self._absent(key):
            why = REQUIRED_HINTS.get(key, KNOWN_KEYS[key])
            how = f"pulumi config set {key} <value>" if self.from_config else f"give {key}"
            self.errors.append(f"{key} is required: {how}  ({why})")
            return None  # type: ignore[return-value]  # reported; parse() raises before use
        return self._check(key, check)  # type: ignore[return-value]

    def integer(self, key: str, default: int, low: int, high: int, why: str = "") -> int:
        value = self.optional(key, lambda k, v: _whole_number(k, v, low, high, why))
        return default if value is None else value

    def boolean(self, key: str, default: bool) -> bool:
        def check(k: str, v: object) -> bool:
            if isinstance(v, bool):
                return v
            if not isinstance(v, str) or v.lower() not in ("true", "false"):
                raise ValueError(f"{k}={validation.shown(v)} must be true or false")
            return v.lower() == "true"

        value = self.optional(key, check)
        return default if value is None else value

    def secret(
        self, key: str, check: Callable[[str, str], str], *, required: bool
    ) -> pulumi.Input[str] | None:
        """A secret value: its errors never quote it."""
        if self._absent(key):
            if required:
                how = f"pulumi config set --secret {key} < FILE" if self.from_config else f"give {key}"
                self.errors.append(f"{key} is required and must be a secret: {how}")
            return None
        if self.secret_keys is not None and key not in self.secret_keys:
            self.errors.append(
                f"{key} is stored in plain text in the stack config; it must be a secret: "
                f"pulumi config rm {key} && pulumi config set --secret {key} < FILE"
            )
            return None
        # Kept a secret where it is used (PrimaryAccess.connection), whichever way it came.
        return self._check(key, check)


def _whole_number(key: str, value: object, low: int, high: int, why: str = "") -> int:
    """A number from the config's text ("3") or from args (3)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{key}={validation.shown(value)} must be a whole number {low}..{high}")
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{key}={validation.shown(value)} must be a whole number {low}..{high}") from None
    return validation.int_in_range(key, number, low, high, why)


def _json(key: str, value: object) -> Any:
    """A list or map: JSON text from the stack config, the value itself from args."""
    if not isinstance(value, str):
        return list(value) if isinstance(value, tuple) else value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise ValueError(
            f'{key}={validation.shown(value)} must be a YAML/JSON list, e.g. ["10.0.0.0/8"]'
        ) from None


def _subnet_ids(key: str, value: str) -> list[str]:
    subnets = _json(key, value)
    if not isinstance(subnets, list) or not subnets:
        raise ValueError(
            f"{key}={validation.shown(value)} must list at least one subnet id (two or more in different AZs)"
        )
    ids = [validation.aws_id(key, subnet, "subnet") for subnet in subnets]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{key}={validation.shown(value)} lists a subnet twice")
    return ids


def _pool_indexes(key: str, value: str, settings: PoolSettings) -> list[int]:
    indexes = _json(key, value)
    count = settings.compile_master_count
    # Digits as ASCII text ("2" from `pulumi config set --path`) or numbers; str.isdigit would
    # take "²", which int() refuses.
    if not isinstance(indexes, list) or not all(
        (isinstance(i, int) and not isinstance(i, bool)) or (isinstance(i, str) and _ASCII_INDEX.fullmatch(i))
        for i in indexes
    ):
        raise ValueError(
            f"{key}={validation.shown(value)} must list pool indexes (the -<index> of a Name tag), "
            "e.g. [0, 2]"
        )
    numbers = sorted({int(i) for i in indexes})
    outside = [i for i in numbers if not 0 <= i < count]
    if outside:
        raise ValueError(
            f"{key}={validation.shown(value)}: the pool has compile masters 0..{count - 1}, not {outside}"
        )
    if len(numbers) == count:
        raise ValueError(
            f"{key}={validation.shown(value)} drains every compile master: the pool would serve no agent"
        )
    return numbers


_ASCII_INDEX = re.compile(r"[0-9]{1,6}")

COMPILE_MASTERS_ARE_IPV4 = (
    "compile masters have IPv4 addresses only (their certnames resolve to A records), so the primary "
    "reaches them over IPv4"
)


def _rule_quota_errors(settings: PoolSettings) -> list[str]:
    """Rules past a security group's quota fail halfway through `pulumi up`: refused now."""
    errors = []
    groups: list[tuple[str, dict[str, tuple[Sequence[int], Sequence[str]]], int]] = [
        ("the NLB's security group", {"agentCidrs": (pe.POOL_PORTS, _plain(settings.agent_cidrs))}, 0),
        (
            "the compile masters' security group",
            {
                "primaryCidrs": (pe.POOL_PORTS, _plain(settings.primary_cidrs)),
                "adminCidrs": ((pe.SSH_PORT,), _plain(settings.admin_cidrs)),
            },
            # Admitted from the NLB's security group on each pool port.
            len(pe.POOL_PORTS),
        ),
    ]
    for group, sources, references in groups:
        try:
            check_inbound_rule_quota(group, sources, group_references=references)
        except ValueError as error:
            errors.append(str(error))
    return errors


def _plain(cidrs: pulumi.Input[Sequence[str]] | None) -> Sequence[str]:
    """A list known now; one that is an output counts as empty here (checked once it is known)."""
    return _known_list(cidrs) or []


def _known_list(values: object) -> list[str] | None:
    """The list of strings, when it is known now (not an output, nor holding one)."""
    if isinstance(values, list) and all(isinstance(value, str) for value in values):
        return values
    return None


_PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")


def _private_key(key: str, value: str) -> str:
    """The text of a private key file; a bad one is described, never quoted."""
    problem = ""
    if not _PRIVATE_KEY.search(value):
        problem = "is not the text of a private key file (-----BEGIN ... PRIVATE KEY-----)"
        first = value.strip().split(maxsplit=1)[0] if value.strip() else ""
        if first.startswith(("ssh-", "ecdsa-")):
            problem += "; it looks like a public key"
        elif first.startswith(("/", "~", "./")) and "\n" not in value.strip():
            problem += "; it looks like a file name: the file's content goes in"
    elif "ENCRYPTED" in value:
        problem = "is protected by a passphrase, which pe-lb cannot give SSH: use a key without one"
    if problem:
        raise ValueError(
            f"{key} (a secret of {len(value)} characters, not shown) {problem}: "
            f"pulumi config set --secret {key} < ~/.ssh/pe-primary"
        )
    return value


def _additional_names(key: str, value: object, pool_dns_name: str | None, zone: str | None) -> list[str]:
    if not isinstance(value, list):
        raise ValueError(f"{key} must be a list of DNS names")
    if value and not zone:
        raise ValueError(f"{key} needs hostedZoneId: the Route53 zone of the names' aliases to the NLB")
    names = [validation.hostname(key, name) for name in value]
    if len(set(names)) != len(names) or pool_dns_name in names:
        raise ValueError(f"{key} must list each name once, and not poolDnsName ({pool_dns_name})")
    return names


def _hosted_zone_id(key: str, value: str) -> str:
    if not re.fullmatch(r"Z[A-Z0-9]{1,31}", value):
        raise ValueError(
            f"{key}={validation.shown(value)} must be a Route53 hosted zone id such as Z0123456789ABCDEFGHIJ"
        )
    return value


def _instance_type(key: str, value: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9-]*\.[a-z0-9]+", value):
        raise ValueError(
            f"{key}={validation.shown(value)} must be an EC2 instance type such as {DEFAULT_INSTANCE_TYPE}"
        )
    return value


def _key_name(key: str, value: str) -> str:
    if len(value) > 255 or not (value.isascii() and value.isprintable()):
        raise ValueError(
            f"{key}={validation.shown(value)} must be the name of an EC2 key pair "
            "(up to 255 printable ASCII characters)"
        )
    return value


KNOWN_KEYS: dict[str, str] = {
    "primaryHost": "FQDN of the PE primary server",
    "primaryHostKey": "the primary's SSH host key: what `ssh-keyscan -t ed25519 <primary>` prints",
    "compileMasterCount": f"number of compile masters, 1..{MAX_COMPILE_MASTERS}",
    "instanceType": "EC2 instance type of the compile masters",
    "amiId": "image for the compile masters: the primary's OS, major release and architecture",
    "rootVolumeSizeGb": "size of each compile master's encrypted root volume",
    "vpcId": "VPC to run in",
    "subnetIds": "subnets for the compile masters (and the NLB, by default), two or more AZs",
    "loadBalancerSubnetIds": "subnets for the NLB, one per AZ (default: subnetIds)",
    "drainedCompileMasters": "pool indexes (the -<index> in the Name tag) kept out of both target groups",
    "agentCidrs": "networks whose agents may reach 8140/8142",
    "internal": "internal (true) or internet-facing (false) NLB",
    "pcpIdleTimeoutSeconds": "TCP idle timeout of the 8142 listener, 900..6000",
    "agentIdleTimeoutSeconds": "TCP idle timeout of the 8140 listener, 60..6000",
    "healthCheckPath": "status path the 8140 group's health check GETs on 8140",
    "pcpHealthCheckPath": "status path the 8142 group's health check GETs on 8140 (the broker's own)",
    "healthCheckIntervalSeconds": "seconds between health checks, 5..300",
    "healthCheckHealthyThreshold": "successes before a compile master is back in rotation, 2..10",
    "healthCheckUnhealthyThreshold": "failures before a compile master leaves rotation, 2..10",
    "healthCheckProtocol": "HTTPS (status endpoint) or TCP",
    "poolDnsName": "stable DNS name for the pool",
    "hostedZoneId": "Route53 zone of poolDnsName",
    "additionalPoolDnsNames": "more names that reach the pool while agents move to or off them",
    "sshUser": "SSH user on the primary for join, leave and pe_repo (sudo -n)",
    "sshPrivateKey": "SSH private key for the primary (secret)",
    "keyName": "EC2 key pair for the compile masters",
    "adminCidrs": "networks admitted to SSH on the compile masters",
    "primaryCidrs": "the primary's addresses, admitted to 8140/8142 on compile masters (join checks)",
    "tags": "tags for every resource",
    "waitForHealthy": "wait (poolctl wait-healthy) before pointing pe_repo at the pool",
    "agentsUsePool": "point PE Agent (server_list, primary_uris, pcp_broker_list) at the pool",
    "waitForHealthyTimeoutSeconds": "how long waitForHealthy waits, 60..3600",
    "alarmTopicArn": "SNS topic ARN every alarm of the pool notifies",
    "healthyTargetsFloor": "alarm below this many healthy compile masters a port; 0: all in rotation but one",
    "unhealthyTargetMinutes": "alarm when a compile master is unhealthy this many minutes, 1..60",
    "balancing": "flow-hash (the NLB balances to the compile masters) or least-connections (HAProxy does)",
    "haproxyCount": "HAProxy instances of least-connections, {}..{}".format(*HAPROXY_COUNT_RANGE),
    "haproxyInstanceType": "EC2 instance type of the HAProxy instances",
    "haproxyAmiId": "image for the HAProxy instances (default: amiId), with the distribution's haproxy",
}
