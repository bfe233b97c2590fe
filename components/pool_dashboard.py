"""A CloudWatch dashboard per pool: its targets, flows and compile masters on one page."""

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import pulumi
import pulumi_aws as aws

from . import pe, validation
from .pool_alarms import arn_location, load_balancer_dimension, target_group_dimension

INSTANCES_PER_GRAPH = 50
"""Compile masters per graph: 100 status-check metrics at most, well within what a graph shows."""

CONSOLE_DOMAINS = {
    "aws": "console.aws.amazon.com",
    "aws-cn": "console.amazonaws.cn",
    "aws-us-gov": "console.amazonaws-us-gov.com",
}
"""The CloudWatch console's domain in each partition."""


class PoolDashboardArgs(TypedDict):
    """What the dashboard shows: the NLB, its target groups and the compile masters."""

    dashboard_name: str
    """The dashboard's name: letters, digits, - and _ (up to 255)."""
    load_balancer_arn: pulumi.Input[str]
    """The pool's NLB (PuppetLoadBalancer's arn); region and partition come from it."""
    target_group_arns: pulumi.Input[Mapping[str, pulumi.Input[str]]]
    """Target group per port ("8140", "8142"): PuppetLoadBalancer's targetGroupArns."""
    instance_ids: Sequence[pulumi.Input[str]]
    """The compile masters, in pool order."""


class PoolDashboard(pulumi.ComponentResource):
    """Healthy and unhealthy targets per port, new and active flows, processed bytes, TCP resets
    from targets, and each compile master's CPU and status checks."""

    dashboard_name: pulumi.Output[str]
    """The dashboard's name."""
    url: pulumi.Output[str]
    """The dashboard in the CloudWatch console."""

    def __init__(
        self, name: str, args: PoolDashboardArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        dashboard_name = args["dashboard_name"]
        if not isinstance(dashboard_name, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,255}", dashboard_name):
            raise ValueError(
                f"dashboard_name={validation.shown(dashboard_name)} must be 1..255 letters, digits, - and _"
            )
        super().__init__("pe-lb:index:PoolDashboard", name, None, opts)
        body = pulumi.Output.all(
            args["load_balancer_arn"],
            pulumi.Output.from_input(args["target_group_arns"]),
            pulumi.Output.all(*args["instance_ids"]),
        ).apply(lambda values: json.dumps(dashboard_body(values[0], values[1], values[2]), sort_keys=True))
        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=dashboard_name,
            dashboard_body=body,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.dashboard_name = dashboard.dashboard_name
        self.url = pulumi.Output.all(args["load_balancer_arn"], dashboard.dashboard_name).apply(
            lambda values: dashboard_url(values[0], values[1])
        )
        self.register_outputs({"dashboardName": self.dashboard_name, "url": self.url})


def dashboard_url(load_balancer_arn: str, dashboard_name: str) -> str:
    partition, region = arn_location(load_balancer_arn)
    domain = CONSOLE_DOMAINS.get(partition, CONSOLE_DOMAINS["aws"])
    return f"https://{region}.{domain}/cloudwatch/home?region={region}#dashboards/dashboard/{dashboard_name}"


def dashboard_body(
    load_balancer_arn: str, target_group_arns: Mapping[str, str], instance_ids: Sequence[str]
) -> dict[str, Any]:
    """The dashboard's widgets, two per row, each a minute's resolution."""
    _, region = arn_location(load_balancer_arn)
    load_balancer = load_balancer_dimension(load_balancer_arn)
    nlb = "AWS/NetworkELB"

    def widget(title: str, metrics: list[list[Any]], stat: str) -> dict[str, Any]:
        return {
            "type": "metric",
            "width": 12,
            "height": 6,
            "properties": {
                "title": title,
                "region": region,
                "metrics": metrics,
                "stat": stat,
                "period": pe.AlarmTiming.period_seconds,
                "view": "timeSeries",
            },
        }

    targets = [
        widget(
            f"Port {port}: healthy and unhealthy compile masters",
            [
                [nlb, metric, "TargetGroup", target_group_dimension(target_group_arns[str(port)]),
                 "LoadBalancer", load_balancer, {"label": label, "stat": stat}]
                # The low point of healthy, the high point of unhealthy: a short failure shows.
                for metric, label, stat in (("HealthyHostCount", "healthy", "Minimum"),
                                            ("UnHealthyHostCount", "unhealthy", "Maximum"))
            ],
            "Minimum",
        )
        for port in pe.POOL_PORTS
    ]  # fmt: skip
    load_balancer_widgets = [
        widget(
            "New and active flows (agent connections)",
            # New flows summed over the minute, active ones (open at once) at their average.
            [
                [nlb, "NewFlowCount", "LoadBalancer", load_balancer, {"stat": "Sum"}],
                [nlb, "ActiveFlowCount", "LoadBalancer", load_balancer, {"stat": "Average"}],
            ],
            "Sum",
        ),
        widget("Processed bytes", [[nlb, "ProcessedBytes", "LoadBalancer", load_balancer]], "Sum"),
        widget(
            "TCP resets from compile masters, clients and the NLB",
            [
                [nlb, metric, "LoadBalancer", load_balancer]
                for metric in ("TCP_Target_Reset_Count", "TCP_Client_Reset_Count", "TCP_ELB_Reset_Count")
            ],
            "Sum",
        ),
    ]
    instances = []
    # A graph holds a bounded number of metrics: compile masters in groups of INSTANCES_PER_GRAPH.
    for first in range(0, len(instance_ids), INSTANCES_PER_GRAPH):
        group = list(enumerate(instance_ids))[first : first + INSTANCES_PER_GRAPH]
        which = f" {first}-{first + len(group) - 1}" if len(instance_ids) > INSTANCES_PER_GRAPH else ""
        instances += [
            widget(
                f"Compile masters{which}: CPU %",
                [["AWS/EC2", "CPUUtilization", "InstanceId", instance, {"label": f"{index}"}]
                 for index, instance in group],
                "Average",
            ),
            widget(
                f"Compile masters{which}: failed status checks (system, instance)",
                [["AWS/EC2", f"StatusCheckFailed_{check}", "InstanceId", instance, {"label": f"{i} {check}"}]
                 for i, instance in group for check in ("System", "Instance")],
                "Maximum",
            ),
        ]  # fmt: skip
    return {"widgets": [*targets, *load_balancer_widgets, *instances]}
