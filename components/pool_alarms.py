"""CloudWatch alarms that heal the pool's compile masters and page when its capacity is short."""

import re
from collections.abc import Mapping, Sequence
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_aws as aws

from . import pe, validation
from .network import tagged, user_tags
from .primary import caller_depends_on

DEFAULT_UNHEALTHY_MINUTES = pe.DEFAULT_UNHEALTHY_TARGET_MINUTES
UNHEALTHY_MINUTES_RANGE = pe.UNHEALTHY_TARGET_MINUTES_RANGE

_SNS_TOPIC_ARN = re.compile(
    r"arn:aws(-[a-z]+)*:sns:[a-z]{2}(-[a-z]+)+-\d:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?", re.ASCII
)


def sns_topic_arn(key: str, value: object) -> str:
    """An SNS topic's ARN, such as arn:aws:sns:eu-west-1:123456789012:pe-oncall."""
    if not isinstance(value, str) or not _SNS_TOPIC_ARN.fullmatch(value):
        raise ValueError(
            f"{key}={validation.shown(value)} must be an SNS topic ARN such as "
            "arn:aws:sns:eu-west-1:123456789012:pe-oncall"
        )
    return value


class PoolAlarmsArgs(TypedDict):
    """What the alarms watch: the NLB's target groups and the compile masters."""

    pool_name: str
    """Names the pool in every alarm's name (CompileMasterPool's pool tag: project/stack/name), so
    an alarm says which pool, which port and what is wrong; poolctl status finds them by it."""
    load_balancer_arn: pulumi.Input[str]
    """The pool's NLB (PuppetLoadBalancer's arn); region and partition come from it."""
    target_group_arns: pulumi.Input[Mapping[str, pulumi.Input[str]]]
    """Target group per port ("8140", "8142"): PuppetLoadBalancer's targetGroupArns."""
    instance_ids: Sequence[pulumi.Input[str]]
    """The compile masters, in pool order: each gets a recover and a reboot alarm."""
    in_rotation: NotRequired[int]
    """How many compile masters are meant to serve (not drained); the default floor is all but one."""
    healthy_targets_floor: NotRequired[int | None]
    """Alarm when fewer compile masters than this are healthy on a port (default: all in rotation but
    one, at least 1)."""
    unhealthy_target_minutes: NotRequired[int]
    """Alarm when any compile master is unhealthy on a port this many minutes (default 5)."""
    alarm_topic_arn: NotRequired[pulumi.Input[str] | None]
    """SNS topic each alarm notifies when it fires and when it clears (default: none, CloudWatch only)."""
    tags: NotRequired[pulumi.Input[Mapping[str, str]]]
    """Tags for every alarm."""


class PoolAlarms(pulumi.ComponentResource):
    """Per compile master, EC2 recovery and reboot on failed status checks; per port, alarms that page.

    Declare it with ``depends_on`` the pool's health gate: alarms are made, and moved to a rebuilt
    NLB's target groups, once their targets serve, so a planned change pages nobody.

    Recovery keeps the instance id, private IP and volumes, so the compile master keeps its
    certname and rejoins the pool with no work on the primary.
    """

    alarm_names: pulumi.Output[list[str]]
    """Every alarm's name."""

    def __init__(self, name: str, args: PoolAlarmsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        in_rotation = validation.int_in_range(
            "in_rotation", args.get("in_rotation", len(args["instance_ids"])), 1, len(args["instance_ids"])
        )
        floor = args.get("healthy_targets_floor")
        floor = (
            max(1, in_rotation - 1)
            if floor is None
            else validation.int_in_range("healthy_targets_floor", floor, 1, in_rotation)
        )
        minutes = validation.int_in_range(
            "unhealthy_target_minutes",
            args.get("unhealthy_target_minutes", DEFAULT_UNHEALTHY_MINUTES),
            *UNHEALTHY_MINUTES_RANGE,
        )
        pool_name = args["pool_name"]
        if not isinstance(pool_name, str) or not pool_name or len(pool_name) > 160:
            raise ValueError(f"pool_name={validation.shown(pool_name)} must be 1..160 characters")
        tags = user_tags("tags", args.get("tags"))
        topic = args.get("alarm_topic_arn")
        notify: pulumi.Input[Sequence[pulumi.Input[str]]] = (
            [validation.checked(topic, lambda value: sns_topic_arn("alarm_topic_arn", value))]
            if topic
            else []
        )
        depends_on = caller_depends_on(opts)
        super().__init__("pe-lb:index:PoolAlarms", name, None, opts)
        timing = pe.AlarmTiming()
        load_balancer_arn = pulumi.Output.from_input(args["load_balancer_arn"])
        names: list[pulumi.Output[str]] = []
        prefix = pe.alarm_name_prefix(pool_name)

        def alarm(suffix: str, alarm_name: str, **settings: object) -> None:
            resource = aws.cloudwatch.MetricAlarm(
                f"{name}-{suffix}",
                # Stable across thresholds and instances (those update in place), so an alarm's
                # history survives scaling and replacement.
                name=alarm_name,
                period=timing.period_seconds,
                tags=tagged(tags, f"{name}-{suffix}", **{pe.POOL_TAG: pool_name}),
                # CloudWatch keys alarms by name: a replacement made first would find the name taken
                # (the provider refuses an existing alarm on create), so the old one goes first.
                opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on, delete_before_replace=True),
                **settings,
            )
            names.append(resource.name)

        for index, instance_id in enumerate(args["instance_ids"]):
            for check, action, minutes_failed, what in (
                (
                    "System",
                    "recover",
                    timing.system_check_minutes,
                    "host failed its status check: recovering",
                ),
                (
                    "Instance",
                    "reboot",
                    timing.instance_check_minutes,
                    "OS failed its status check: rebooting",
                ),
            ):
                alarm(
                    f"{index}-{action}",
                    f"{prefix}compile master {index}: {what}",
                    alarm_description=(
                        f"StatusCheckFailed_{check} for {minutes_failed} minutes: EC2 {action}s the instance "
                        "(same id, IP and volumes, so the same certname; it rejoins with no PE work). If "
                        "it repeats, replace it: pulumi up --replace on its aws:ec2/instance:Instance."
                    ),
                    namespace="AWS/EC2",
                    metric_name=f"StatusCheckFailed_{check}",
                    dimensions={"InstanceId": instance_id},
                    statistic="Maximum",
                    comparison_operator="GreaterThanThreshold",
                    threshold=0,
                    evaluation_periods=minutes_failed,
                    alarm_actions=_with_ec2_action(load_balancer_arn, action, notify),
                    ok_actions=notify,
                )

        target_groups = pulumi.Output.from_input(args["target_group_arns"])
        for port in pe.POOL_PORTS:
            dimensions = _target_group_dimensions(load_balancer_arn, target_groups, port)
            alarm(
                f"{port}-below-floor",
                f"{prefix}port {port}: too few healthy compile masters",
                alarm_description=(
                    f"Fewer than {floor} compile masters pass the {port} health check: agents are served "
                    "by fewer than planned. Run poolctl status; replace the unhealthy ones (pulumi up "
                    "--replace) or add capacity (compileMasterCount)."
                ),
                namespace="AWS/NetworkELB",
                metric_name="HealthyHostCount",
                dimensions=dimensions,
                statistic="Minimum",
                comparison_operator="LessThanThreshold",
                threshold=floor,
                evaluation_periods=timing.below_floor_minutes,
                # No data: the NLB reports no healthy target at all.
                treat_missing_data="breaching",
                alarm_actions=notify,
                ok_actions=notify,
            )
            alarm(
                f"{port}-unhealthy",
                f"{prefix}port {port}: a compile master stays unhealthy",
                alarm_description=(
                    f"A compile master in the {port} target group has failed its health check for "
                    f"{minutes} minutes: out of rotation, not restarting. Run poolctl status and probe it; "
                    "replace it if it does not recover."
                ),
                namespace="AWS/NetworkELB",
                metric_name="UnHealthyHostCount",
                dimensions=dimensions,
                statistic="Maximum",
                comparison_operator="GreaterThanThreshold",
                threshold=0,
                evaluation_periods=minutes,
                treat_missing_data="notBreaching",
                alarm_actions=notify,
                ok_actions=notify,
            )
        self.alarm_names = pulumi.Output.all(*names)
        self.register_outputs({"alarmNames": self.alarm_names})


def _with_ec2_action(
    load_balancer_arn: pulumi.Output[str], action: str, notify: pulumi.Input[Sequence[pulumi.Input[str]]]
) -> pulumi.Output[list[str]]:
    return pulumi.Output.all(load_balancer_arn, notify).apply(
        lambda values: [ec2_action_arn(values[0], action), *values[1]]
    )


def _target_group_dimensions(
    load_balancer_arn: pulumi.Output[str], target_groups: pulumi.Output[Any], port: int
) -> pulumi.Output[dict[str, str]]:
    return pulumi.Output.all(load_balancer_arn, target_groups).apply(
        lambda values: {
            "LoadBalancer": load_balancer_dimension(values[0]),
            "TargetGroup": target_group_dimension(values[1][str(port)]),
        }
    )


def ec2_action_arn(load_balancer_arn: str, action: str) -> str:
    """CloudWatch's EC2 action in the NLB's partition and region: arn:aws:automate:eu-west-1:ec2:recover."""
    partition, region = arn_location(load_balancer_arn)
    return f"arn:{partition}:automate:{region}:ec2:{action}"


def arn_location(arn: str) -> tuple[str, str]:
    """An ARN's partition and region."""
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn":
        raise ValueError(f"{arn!r} is not an ARN")
    return parts[1], parts[3]


def load_balancer_dimension(load_balancer_arn: str) -> str:
    """The LoadBalancer dimension of NLB metrics: net/<name>/<id>, the ARN after ':loadbalancer/'."""
    return load_balancer_arn.split(":loadbalancer/", 1)[-1]


def target_group_dimension(target_group_arn: str) -> str:
    """The TargetGroup dimension of NLB metrics: targetgroup/<name>/<id>, the ARN's last field."""
    return target_group_arn.rsplit(":", 1)[-1]
