"""The pool as AWS sees it: the NLB, its 8140/8142 listeners, target groups and targets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.config
import botocore.exceptions

from .. import pe

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


FOREIGN = "foreign"
"""Rotation of a target that is not tagged as a compile master of this pool."""


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
    """Reads and changes the pool through the ELBv2 and EC2 APIs."""

    def __init__(self, session: boto3.Session, load_balancer: str, endpoint_url: str | None = None) -> None:
        config = client_config()
        self.elb: Any = session.client("elbv2", endpoint_url=endpoint_url, config=config)
        self.ec2: Any = session.client("ec2", endpoint_url=endpoint_url, config=config)
        self.cloudwatch: Any = session.client("cloudwatch", endpoint_url=endpoint_url, config=config)
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
        pool's own tag: another pe-lb stack's compile masters may share the VPC and the role tag."""
        filters = [
            {"Name": f"tag:{pe.POOL_TAG}", "Values": [pool]},
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
                )
        return found

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
