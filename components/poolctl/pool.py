"""The pool as AWS sees it: the NLB, its 8140/8142 listeners, target groups and targets, and (with
least-connections balancing) the discovery record in Route53 that the HAProxy instances resolve."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from .. import pe

STATS_URL = f"http://{{address}}:{pe.HAPROXY_STATS_PORT}/;csv"
"""Where an HAProxy instance of the least-connections tier serves its stats as CSV: ``{address}`` is
its private IP."""

HEALTHY = "healthy"
GONE = "unused"
"""A deregistered target reads as unused / Target.NotRegistered once draining is over."""


class PoolError(Exception):
    """A one-line problem for the user: bad input, AWS refusing, or the pool not as expected."""


@dataclass(frozen=True)
class HealthCheck:
    protocol: str
    port: str
    path: str | None
    timing: pe.HealthCheckTiming
    """Interval, timeout and thresholds, with the detection and recovery times they give."""


@dataclass(frozen=True)
class TargetHealth:
    state: str
    reason: str = ""
    description: str = ""

    def __str__(self) -> str:
        return f"{self.state} ({self.reason})" if self.reason else self.state


NOT_REGISTERED = TargetHealth(GONE, "Target.NotRegistered", "Target is not registered to the target group")


@dataclass
class PortGroup:
    """One pool port: its listener and the target group it forwards to."""

    port: int
    protocol: str
    idle_timeout_seconds: int | None
    target_group_arn: str
    target_group_name: str
    target_port: int
    health_check: HealthCheck
    targets: dict[str, TargetHealth] = field(default_factory=dict)


@dataclass(frozen=True)
class Instance:
    instance_id: str
    name: str
    private_ip: str
    availability_zone: str
    state: str
    vpc_id: str = ""
    pool: str = ""
    """Its pe.POOL_TAG: the pool it belongs to (empty when untagged)."""
    role: str = ""
    """Its pe.ROLE_TAG: compile-master, or haproxy for the least-connections tier's instances."""


FOREIGN = "foreign"
"""Rotation of a target that is not tagged as a compile master of this pool."""


@dataclass(frozen=True)
class Discovery:
    """The pool's discovery record: the A record set HAProxy resolves the compile masters from."""

    zone_id: str
    zone_name: str
    name: str
    ttl: int | None
    values: tuple[str, ...]
    """The private IP addresses of the compile masters in rotation, in the record's order."""


@dataclass(frozen=True)
class FiringAlarm:
    """A CloudWatch alarm of the pool in state ALARM."""

    name: str
    reason: str
    since: str


@dataclass
class PoolStatus:
    load_balancer_name: str
    load_balancer_arn: str
    dns_name: str
    scheme: str
    ports: dict[int, PortGroup]
    instances: dict[str, Instance]
    """Every target of the target groups, and every compile master of the pool, registered or not."""
    drained: set[str] = field(default_factory=set)
    """Compile masters the stack keeps out of rotation (drainedCompileMasters)."""
    pool: str | None = None
    """The pool's identity (its pe.POOL_TAG value); None when not known, so membership is not shown."""
    alarms: list[FiringAlarm] = field(default_factory=list)
    """The pool's alarms in state ALARM (poolctl status, when the pool is known)."""
    alarms_unreadable: str = ""
    """Why the alarms could not be read (no cloudwatch:DescribeAlarms), else empty."""

    @property
    def in_rotation(self) -> list[str]:
        return [i for i in self.instances if any(i in group.targets for group in self.ports.values())]

    @property
    def balancing(self) -> str:
        """least-connections when the targets are HAProxy instances (the tier in front of the
        compile masters), else flow-hash (the targets are the compile masters)."""
        haproxy = any(self.instances[i].role == pe.HAPROXY_ROLE for i in self.in_rotation)
        return pe.LEAST_CONNECTIONS if haproxy else pe.FLOW_HASH

    def rotation(self, instance_id: str) -> str:
        """in (registered), drained (by the stack's config), out (neither: should it be?), or foreign
        (a target not tagged as this pool's: another stack's, or no compile master at all)."""
        instance = self.instances.get(instance_id)
        if self.pool is not None and (instance is None or instance.pool != self.pool):
            return FOREIGN
        if instance_id in self.in_rotation:
            return "in"
        return "drained" if instance_id in self.drained else "out"

    def health(self, instance_id: str, port: int) -> TargetHealth:
        return self.ports[port].targets.get(instance_id, NOT_REGISTERED)

    def is_healthy(self, instance_id: str) -> bool:
        return all(self.health(instance_id, port).state == HEALTHY for port in self.ports)

    @property
    def all_healthy(self) -> bool:
        """Every compile master in rotation healthy on every port (what the health gate waits for)."""
        return bool(self.in_rotation) and all(self.is_healthy(i) for i in self.in_rotation)

    @property
    def unexpectedly_out(self) -> list[str]:
        """Compile masters neither in rotation nor drained on purpose."""
        return [i for i in self.instances if self.rotation(i) == "out"]

    @property
    def foreign(self) -> list[str]:
        """Targets of the pool's target groups that are not its compile masters."""
        return [i for i in self.instances if self.rotation(i) == FOREIGN]


def client_config() -> botocore.config.Config:
    # Standard retry mode backs off on throttling; AWS_MAX_ATTEMPTS still sets the attempts.
    return botocore.config.Config(retries={"mode": "standard"}, connect_timeout=5, read_timeout=30)


class Pool:
    """Reads and changes the pool through the ELBv2, EC2 and Route53 APIs."""

    def __init__(
        self,
        session: boto3.Session,
        load_balancer: str,
        endpoint_url: str | None = None,
        stats_url: str = STATS_URL,
    ) -> None:
        config = client_config()
        self.elb: Any = session.client("elbv2", endpoint_url=endpoint_url, config=config)
        self.ec2: Any = session.client("ec2", endpoint_url=endpoint_url, config=config)
        self.cloudwatch: Any = session.client("cloudwatch", endpoint_url=endpoint_url, config=config)
        self.route53: Any = session.client("route53", endpoint_url=endpoint_url, config=config)
        self.stats_url = stats_url
        """Where each HAProxy's stats are read from (STATS_URL; only tests point it elsewhere)."""
        self.reference = load_balancer
        self._groups: dict[int, PortGroup] | None = None
        self._load_balancer: dict[str, Any] | None = None

    def load_balancer(self) -> dict[str, Any]:
        if self._load_balancer is None:
            by = "LoadBalancerArns" if self.reference.startswith("arn:") else "Names"
            try:
                found = self.elb.describe_load_balancers(**{by: [self.reference]})["LoadBalancers"]
            except botocore.exceptions.ClientError as error:
                if error_code(error) == "LoadBalancerNotFound":
                    raise PoolError(
                        f"no load balancer {self.reference!r} in this account and region "
                        "(check --load-balancer, --region and --profile)"
                    ) from None
                raise
            balancer = found[0]
            if balancer.get("Type") != "network":
                raise PoolError(
                    f"{balancer['LoadBalancerName']} is an {balancer.get('Type')} load balancer, "
                    "not a network load balancer: poolctl manages the NLB that pe-lb builds"
                )
            self._load_balancer = balancer
        return self._load_balancer

    def groups(self) -> dict[int, PortGroup]:
        """The listener and target group of each pool port (8140, 8142), without targets."""
        if self._groups is None:
            balancer = self.load_balancer()
            listeners = self.elb.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]
            by_port = {listener["Port"]: listener for listener in listeners}
            missing = [port for port in pe.POOL_PORTS if port not in by_port]
            if missing:
                raise PoolError(
                    f"{balancer['LoadBalancerName']} has no listener on {', '.join(map(str, missing))} "
                    f"(listeners: {', '.join(map(str, sorted(by_port))) or 'none'}); is this the pe-lb NLB?"
                )
            self._groups = {port: self._group(port, by_port[port]) for port in pe.POOL_PORTS}
        return self._groups

    def _group(self, port: int, listener: dict[str, Any]) -> PortGroup:
        forward = [a for a in listener.get("DefaultActions", []) if a.get("TargetGroupArn")]
        if not forward:
            raise PoolError(f"the {port} listener forwards to no target group")
        arn = forward[0]["TargetGroupArn"]
        try:
            group = self.elb.describe_target_groups(TargetGroupArns=[arn])["TargetGroups"][0]
        except botocore.exceptions.ClientError as error:
            if error_code(error) == "TargetGroupNotFound":
                raise _missing_group(port, arn) from None
            raise
        attributes = self.elb.describe_listener_attributes(ListenerArn=listener["ListenerArn"])["Attributes"]
        idle = next((a["Value"] for a in attributes if a["Key"] == "tcp.idle_timeout.seconds"), None)
        return PortGroup(
            port=port,
            protocol=listener["Protocol"],
            idle_timeout_seconds=int(idle) if idle else None,
            target_group_arn=arn,
            target_group_name=group["TargetGroupName"],
            target_port=int(group["Port"]),
            health_check=HealthCheck(
                protocol=group["HealthCheckProtocol"],
                port=str(group["HealthCheckPort"]),
                path=group.get("HealthCheckPath"),
                timing=pe.HealthCheckTiming(
                    interval_seconds=int(group["HealthCheckIntervalSeconds"]),
                    timeout_seconds=int(group["HealthCheckTimeoutSeconds"]),
                    healthy_threshold=int(group["HealthyThresholdCount"]),
                    unhealthy_threshold=int(group["UnhealthyThresholdCount"]),
                ),
            ),
        )

    def status(self, drained: set[str] | None = None, pool: str | None = None) -> PoolStatus:
        """Targets and their health; with ``pool`` (its identity) also its compile masters out of
        rotation, and which targets are not its own."""
        balancer = self.load_balancer()
        groups = self.groups()
        for group in groups.values():
            group.targets = {
                d["Target"]["Id"]: _health(d)
                for d in self._describe_health(group, None)
                if d["Target"]["Id"].startswith("i-")
            }
        registered = {i for group in groups.values() for i in group.targets}
        members = self._members(pool) if pool is not None else set()
        ids = sorted(registered | members)
        return PoolStatus(
            drained=set(drained or ()) & set(ids),
            pool=pool,
            load_balancer_name=balancer["LoadBalancerName"],
            load_balancer_arn=balancer["LoadBalancerArn"],
            dns_name=balancer["DNSName"],
            scheme=balancer.get("Scheme", ""),
            ports=groups,
            instances=self.instances(ids),
        )

    def firing_alarms(self, pool: str) -> list[FiringAlarm]:
        """The pool's alarms (PoolAlarms: named after the pool) in state ALARM, oldest first."""
        pages = self.cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmNamePrefix=pe.alarm_name_prefix(pool), StateValue="ALARM", AlarmTypes=["MetricAlarm"]
        )
        alarms = [
            FiringAlarm(
                name=alarm["AlarmName"],
                reason=alarm.get("StateReason", ""),
                since=str(alarm.get("StateUpdatedTimestamp", "")),
            )
            for page in pages
            for alarm in page.get("MetricAlarms", [])
            # Asked of CloudWatch, and checked: moto (the tests' AWS) ignores the StateValue filter.
            if alarm.get("StateValue") == "ALARM"
        ]
        return sorted(alarms, key=lambda alarm: (alarm.since, alarm.name))

    def _members(self, pool: str) -> set[str]:
        """The pool's compile masters, registered or not: drained ones must show, not vanish. By the
        pool's own tag: another pe-lb stack's compile masters may share the VPC and the role tag; and
        by the role tag, since the pool's HAProxy instances carry its pool tag too."""
        filters = [
            {"Name": f"tag:{pe.POOL_TAG}", "Values": [pool]},
            {"Name": f"tag:{pe.ROLE_TAG}", "Values": [pe.COMPILE_MASTER_ROLE]},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
        ]
        pages = self.ec2.get_paginator("describe_instances").paginate(Filters=filters)
        return {item["InstanceId"] for page in pages for r in page["Reservations"] for item in r["Instances"]}

    def instances(self, ids: list[str]) -> dict[str, Instance]:
        if not ids:
            return {}
        try:
            reservations = self.ec2.describe_instances(InstanceIds=ids)["Reservations"]
        except botocore.exceptions.ClientError as error:
            if error_code(error).startswith("InvalidInstanceID"):
                raise PoolError(f"no EC2 instance {', '.join(ids)} in this account and region") from None
            raise
        found = {}
        for reservation in reservations:
            for item in reservation["Instances"]:
                tags = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
                found[item["InstanceId"]] = Instance(
                    instance_id=item["InstanceId"],
                    name=tags.get("Name", ""),
                    private_ip=item.get("PrivateIpAddress", ""),
                    availability_zone=item.get("Placement", {}).get("AvailabilityZone", ""),
                    state=item.get("State", {}).get("Name", ""),
                    vpc_id=item.get("VpcId", ""),
                    pool=tags.get(pe.POOL_TAG, ""),
                    role=tags.get(pe.ROLE_TAG, ""),
                )
        return found

    def discovery(self, pool: str) -> Discovery:
        """The pool's discovery record: in the private hosted zone pe.discovery_zone_name(pool),
        tagged with the pool's identity and associated with the NLB's VPC (where HAProxy asks)."""
        zone_name = pe.discovery_zone_name(pool)
        zones = [zone for zone in self._zones_named(zone_name) if zone.get("Config", {}).get("PrivateZone")]
        ours = [zone for zone in zones if self._zone_tags(zone["Id"]).get(pe.POOL_TAG) == pool]
        if not ours:
            raise PoolError(
                f"no private hosted zone {zone_name} tagged {pe.POOL_TAG}={pool} (the pool's discovery "
                "record): is the stack's balancing least-connections, and its `pulumi up` done?"
            )
        vpc = self.load_balancer().get("VpcId")
        in_vpc = [zone for zone in ours if vpc in self._zone_vpcs(zone["Id"])]
        if len(in_vpc) != 1:
            ids = ", ".join(_zone_id(zone["Id"]) for zone in (in_vpc or ours))
            why = "more than one is" if in_vpc else "none is"
            raise PoolError(
                f"private hosted zones {zone_name} of pool {pool}: {ids}; {why} associated with the "
                f"load balancer's VPC {vpc}, where its HAProxy instances resolve the compile masters"
            )
        return self._record(_zone_id(in_vpc[0]["Id"]), zone_name, pe.discovery_name(pool))

    def _zones_named(self, zone_name: str) -> list[dict[str, Any]]:
        """Hosted zones with exactly this name (AWS lists zones from the name on, in name order)."""
        found: list[dict[str, Any]] = []
        kwargs = {"DNSName": zone_name}
        while True:
            page = self.route53.list_hosted_zones_by_name(**kwargs)
            same = [zone for zone in page["HostedZones"] if zone["Name"].rstrip(".") == zone_name]
            found += same
            if not page.get("IsTruncated") or len(same) < len(page["HostedZones"]):
                return found
            kwargs = {"DNSName": page["NextDNSName"], "HostedZoneId": page["NextHostedZoneId"]}

    def _zone_tags(self, zone_id: str) -> dict[str, str]:
        tags = self.route53.list_tags_for_resource(ResourceType="hostedzone", ResourceId=_zone_id(zone_id))
        return {tag["Key"]: tag["Value"] for tag in tags["ResourceTagSet"].get("Tags", [])}

    def _zone_vpcs(self, zone_id: str) -> set[str]:
        zone = self.route53.get_hosted_zone(Id=_zone_id(zone_id))
        return {vpc["VPCId"] for vpc in zone.get("VPCs", [])}

    def _record(self, zone_id: str, zone_name: str, name: str) -> Discovery:
        answer = self.route53.list_resource_record_sets(
            HostedZoneId=zone_id, StartRecordName=name, StartRecordType="A", MaxItems="1"
        )
        found = [
            record
            for record in answer["ResourceRecordSets"]
            if record["Name"].rstrip(".") == name and record["Type"] == "A"
        ]
        if not found:
            raise PoolError(
                f"the pool's zone {zone_name} ({zone_id}) has no A record {name}; run `pulumi up`"
            )
        values = tuple(value["Value"] for value in found[0].get("ResourceRecords", []))
        return Discovery(zone_id, zone_name, name, found[0].get("TTL"), values)

    def set_discovery(self, discovery: Discovery, values: list[str], why: str) -> None:
        """The record with exactly ``values`` (one UPSERT: it never stands empty or half-written)."""
        if not values:
            raise PoolError(f"{discovery.name} cannot be left without any address")
        self.route53.change_resource_record_sets(
            HostedZoneId=discovery.zone_id,
            ChangeBatch={
                "Comment": why,
                "Changes": [
                    {
                        "Action": "UPSERT",
                        "ResourceRecordSet": {
                            "Name": discovery.name,
                            "Type": "A",
                            "TTL": pe.DISCOVERY_TTL_SECONDS,
                            "ResourceRecords": [{"Value": value} for value in values],
                        },
                    }
                ],
            },
        )

    def target_health(self, instance_id: str) -> dict[int, TargetHealth]:
        """The instance's health in each pool port's target group (unused when not registered)."""
        result = {}
        for port, group in self.groups().items():
            described = self._describe_health(group, instance_id)
            result[port] = _health(described[0]) if described else NOT_REGISTERED
        return result

    def deregister(self, instance_id: str, port: int) -> None:
        """Out of one pool port's target group (one call: drain/undrain undo it port by port)."""
        group = self.groups()[port]
        target = {"Id": instance_id, "Port": group.target_port}
        self.elb.deregister_targets(TargetGroupArn=group.target_group_arn, Targets=[target])

    def register(self, instance_id: str, port: int) -> None:
        group = self.groups()[port]
        target = {"Id": instance_id, "Port": group.target_port}
        self.elb.register_targets(TargetGroupArn=group.target_group_arn, Targets=[target])

    def _describe_health(self, group: PortGroup, instance_id: str | None) -> list[dict[str, Any]]:
        targets = {} if instance_id is None else {"Targets": [{"Id": instance_id, "Port": group.target_port}]}
        try:
            descriptions: list[dict[str, Any]] = self.elb.describe_target_health(
                TargetGroupArn=group.target_group_arn, **targets
            )["TargetHealthDescriptions"]
        except botocore.exceptions.ClientError as error:
            if error_code(error) == "InvalidTarget":
                return []
            if error_code(error) == "TargetGroupNotFound":
                raise _missing_group(group.port, group.target_group_arn) from None
            raise
        return descriptions


def _zone_id(zone_id: str) -> str:
    """Z0123... from Route53's /hostedzone/Z0123..."""
    return zone_id.rsplit("/", 1)[-1]


def _missing_group(port: int, arn: str) -> PoolError:
    return PoolError(
        f"the target group of the {port} listener ({arn}) does not exist; "
        "run `pulumi refresh` and `pulumi up` to recreate it"
    )


def _health(description: dict[str, Any]) -> TargetHealth:
    health = description["TargetHealth"]
    return TargetHealth(health["State"], health.get("Reason", ""), health.get("Description", ""))


def error_code(error: botocore.exceptions.ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
