"""PoolAlarms and PoolDashboard as the program declares them: metrics, dimensions, thresholds, actions."""

import json
from typing import Any

import pytest

from components import pe
from components.compiler_pool import dashboard_name
from components.pool_alarms import ec2_action_arn
from components.pool_dashboard import dashboard_url
from tests.harness import Graph, Recorded, run_main

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
INSTANCE = "aws:ec2/instance:Instance"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:pe-oncall"
NLB = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/pe-lb-nlb/abc"


def alarms(graph: Graph) -> dict[str, Recorded]:
    return {alarm.name: alarm for alarm in graph.of_type(ALARM)}


def test_each_compile_master_is_recovered_on_a_failed_system_check_and_rebooted_on_an_instance_check(
    stack_config: dict[str, Any],
) -> None:
    graph = run_main({**stack_config, "alarmTopicArn": TOPIC})
    by_name = alarms(graph)
    instances = {i.name: i for i in graph.of_type(INSTANCE)}
    for index, instance_id in enumerate(graph.outputs["compileMasterIds"]):
        recover, reboot = by_name[f"pe-lb-{index}-recover"].inputs, by_name[f"pe-lb-{index}-reboot"].inputs
        assert (recover["namespace"], recover["metricName"]) == ("AWS/EC2", "StatusCheckFailed_System")
        assert (reboot["namespace"], reboot["metricName"]) == ("AWS/EC2", "StatusCheckFailed_Instance")
        for alarm, action, minutes in ((recover, "recover", 2), (reboot, "reboot", 3)):
            assert alarm["dimensions"] == {"InstanceId": instance_id}
            assert alarm["statistic"] == "Maximum" and alarm["period"] == 60
            assert (alarm["comparisonOperator"], alarm["threshold"]) == ("GreaterThanThreshold", 0)
            assert alarm["evaluationPeriods"] == minutes
            # The region's own ARN format, from the NLB's ARN; the topic hears it too.
            assert alarm["alarmActions"] == [f"arn:aws:automate:eu-west-1:ec2:{action}", TOPIC]
            assert alarm["okActions"] == [TOPIC]
            assert alarm["name"].startswith("pe-lb/test/pe-lb compile master ")
    assert len(by_name) == 3 * 2 + 2 * len(pe.POOL_PORTS)
    # EC2's own auto-recovery is stated, not left to the account's default.
    assert all(i.inputs["maintenanceOptions"] == {"autoRecovery": "default"} for i in instances.values())


@pytest.mark.parametrize(
    ("extra", "floor"),
    [
        ({}, 2),
        ({"healthyTargetsFloor": 3}, 3),
        ({"drainedCompileMasters": [0]}, 1),
        ({"compileMasterCount": 1}, 1),
        # The NLB's targets are the HAProxy instances: all of them but one.
        ({"balancing": "least-connections", "haproxyCount": 3, "compileMasterCount": 5}, 2),
        ({"balancing": "least-connections", "drainedCompileMasters": [0]}, 1),
    ],
)
def test_each_port_pages_below_the_floor_and_on_a_compile_master_that_stays_unhealthy(
    stack_config: dict[str, Any], extra: dict[str, Any], floor: int
) -> None:
    graph = run_main({**stack_config, **extra})
    by_name = alarms(graph)
    groups = {group.name: group for group in graph.of_type(TARGET_GROUP)}
    for port in pe.POOL_PORTS:
        below, unhealthy = (
            by_name[f"pe-lb-{port}-below-floor"].inputs,
            by_name[f"pe-lb-{port}-unhealthy"].inputs,
        )
        dimensions = {
            "LoadBalancer": "net/pe-lb-nlb/abc",
            "TargetGroup": f"targetgroup/pe-lb-{port}/abc",
        }
        assert groups[f"pe-lb-{port}"].outputs["arn"].endswith(f":targetgroup/pe-lb-{port}/abc")
        assert (below["namespace"], below["metricName"], below["dimensions"]) == (
            "AWS/NetworkELB", "HealthyHostCount", dimensions,
        )  # fmt: skip
        assert (below["statistic"], below["comparisonOperator"], below["threshold"]) == (
            "Minimum", "LessThanThreshold", floor,
        )  # fmt: skip
        assert below["treatMissingData"] == "breaching", "no data: nothing reports healthy"
        assert (unhealthy["metricName"], unhealthy["dimensions"]) == ("UnHealthyHostCount", dimensions)
        assert (unhealthy["comparisonOperator"], unhealthy["threshold"]) == ("GreaterThanThreshold", 0)
        assert unhealthy["evaluationPeriods"] == 5 and unhealthy["treatMissingData"] == "notBreaching"
        # Names say the pool, the port and what is wrong; without a topic, no actions.
        assert below["name"] == f"pe-lb/test/pe-lb port {port}: too few healthy compile masters"
        assert unhealthy["name"] == f"pe-lb/test/pe-lb port {port}: a compile master stays unhealthy"
        assert not below.get("alarmActions") and not unhealthy.get("okActions")


def test_alarms_are_deleted_before_they_are_made_again(stack_config: dict[str, Any]) -> None:
    """CloudWatch keys an alarm by its name: made first, the new one would find the name taken."""
    assert all(alarm.delete_before_replace for alarm in run_main(stack_config).of_type(ALARM))


def test_unhealthy_minutes_come_from_the_stack_config(stack_config: dict[str, Any]) -> None:
    by_name = alarms(run_main({**stack_config, "unhealthyTargetMinutes": 12}))
    assert by_name["pe-lb-8140-unhealthy"].inputs["evaluationPeriods"] == 12


def test_the_dashboard_shows_targets_flows_bytes_resets_and_each_compile_master(
    stack_config: dict[str, Any],
) -> None:
    graph = run_main(stack_config)
    dashboard = graph.one(DASHBOARD)
    assert dashboard.inputs["dashboardName"] == "pe-lb-test-pe-lb"
    body = json.loads(dashboard.inputs["dashboardBody"])
    metrics = [
        (metric[0], metric[1], tuple(metric[2:6]) if metric[0] == "AWS/NetworkELB" else metric[3])
        for widget in body["widgets"]
        for metric in widget["properties"]["metrics"]
    ]
    names = {(namespace, name) for namespace, name, _ in metrics}
    assert names == {
        ("AWS/NetworkELB", "HealthyHostCount"), ("AWS/NetworkELB", "UnHealthyHostCount"),
        ("AWS/NetworkELB", "NewFlowCount"), ("AWS/NetworkELB", "ActiveFlowCount"),
        ("AWS/NetworkELB", "ProcessedBytes"), ("AWS/NetworkELB", "TCP_Target_Reset_Count"),
        ("AWS/NetworkELB", "TCP_Client_Reset_Count"), ("AWS/NetworkELB", "TCP_ELB_Reset_Count"),
        ("AWS/EC2", "CPUUtilization"), ("AWS/EC2", "StatusCheckFailed_System"),
        ("AWS/EC2", "StatusCheckFailed_Instance"),
    }  # fmt: skip
    for port in pe.POOL_PORTS:
        dimensions = ("TargetGroup", f"targetgroup/pe-lb-{port}/abc", "LoadBalancer", "net/pe-lb-nlb/abc")
        assert ("AWS/NetworkELB", "HealthyHostCount", dimensions) in metrics
    cpu = {dim for namespace, name, dim in metrics if name == "CPUUtilization"}
    assert cpu == set(graph.outputs["compileMasterIds"])
    assert {widget["properties"]["region"] for widget in body["widgets"]} == {"eu-west-1"}
    assert graph.outputs["dashboardUrl"].endswith("#dashboards/dashboard/pe-lb-test-pe-lb")


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        (
            NLB,
            "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#dashboards/dashboard/d",
        ),
        (
            "arn:aws-us-gov:elasticloadbalancing:us-gov-west-1:1:loadbalancer/net/x/y",
            "https://us-gov-west-1.console.amazonaws-us-gov.com/cloudwatch/home?region=us-gov-west-1"
            "#dashboards/dashboard/d",
        ),
        (
            "arn:aws-cn:elasticloadbalancing:cn-north-1:1:loadbalancer/net/x/y",
            "https://cn-north-1.console.amazonaws.cn/cloudwatch/home?region=cn-north-1#dashboards/dashboard/d",
        ),
    ],
)
def test_urls_and_actions_follow_the_partition(arn: str, expected: str) -> None:
    assert dashboard_url(arn, "d") == expected
    actions = {
        NLB: "arn:aws:automate:eu-west-1:ec2:recover",
        "arn:aws-us-gov:elasticloadbalancing:us-gov-west-1:1:loadbalancer/net/x/y": (
            "arn:aws-us-gov:automate:us-gov-west-1:ec2:recover"
        ),
        "arn:aws-cn:elasticloadbalancing:cn-north-1:1:loadbalancer/net/x/y": (
            "arn:aws-cn:automate:cn-north-1:ec2:recover"
        ),
    }
    assert ec2_action_arn(arn, "recover") == actions[arn]


def test_dashboard_names_keep_to_cloudwatchs_characters() -> None:
    assert dashboard_name("my.project/prod eu/pe-lb") == "my-project-prod-eu-pe-lb"


def test_a_large_pool_is_graphed_in_groups() -> None:
    from components.pool_dashboard import INSTANCES_PER_GRAPH, dashboard_body

    ids = [f"i-{n:017x}" for n in range(120)]
    groups = {
        "8140": "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/a/b",
        "8142": "arn:x:y:z:1:targetgroup/c/d",
    }
    body = dashboard_body(NLB, groups, ids)
    cpu = [w for w in body["widgets"] if "CPU" in w["properties"]["title"]]
    assert [w["properties"]["title"] for w in cpu] == [
        "Compile masters 0-49: CPU %", "Compile masters 50-99: CPU %", "Compile masters 100-119: CPU %",
    ]  # fmt: skip
    assert max(len(w["properties"]["metrics"]) for w in body["widgets"]) == 2 * INSTANCES_PER_GRAPH
    graphed = [m[3] for w in cpu for m in w["properties"]["metrics"]]
    assert graphed == ids
