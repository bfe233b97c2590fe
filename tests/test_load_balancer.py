"""PuppetLoadBalancer on its own, as a user's program would declare it."""

from typing import Any

import pulumi
import pytest

from components import PuppetLoadBalancer, PuppetLoadBalancerArgs, pe
from tests.harness import VPC_CIDR, Graph, run

TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
LISTENER = "aws:lb/listener:Listener"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"


def base_args(**overrides: Any) -> PuppetLoadBalancerArgs:
    args: dict[str, Any] = {
        "vpc_id": "vpc-0123456789abcdef0",
        "subnet_ids": ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"],
        "agent_cidrs": ["10.0.0.0/8", "192.168.0.0/16"],
    }
    args.update(overrides)
    return args  # type: ignore[return-value]


def declare(**overrides: Any) -> Graph:
    return run(lambda: PuppetLoadBalancer("pool", base_args(**overrides)))


def test_network_load_balancer_cross_zone_with_its_own_security_group() -> None:
    graph = declare()
    nlb = graph.one("aws:lb/loadBalancer:LoadBalancer").inputs
    assert nlb["loadBalancerType"] == "network"
    assert nlb["internal"] is True
    assert nlb["enableCrossZoneLoadBalancing"] is True
    assert nlb["securityGroups"] == ["sg-pool-nlb"]
    assert "name" not in nlb


def test_children_are_parented_to_the_component() -> None:
    graph = declare()
    component = graph.one("pe-lb:index:PuppetLoadBalancer")
    for resource in graph.resources:
        if resource is not component:
            assert resource.parent == component.urn, resource.name


def test_listeners_are_tcp_pass_through_with_tuned_idle_timeouts() -> None:
    graph = declare(pcp_idle_timeout_seconds=1800, agent_idle_timeout_seconds=400)
    listeners = {listener.inputs["port"]: listener.inputs for listener in graph.of_type(LISTENER)}
    assert set(listeners) == {8140, 8142}
    for listener in listeners.values():
        assert listener["protocol"] == "TCP"
        assert "certificateArn" not in listener and "sslPolicy" not in listener
        assert listener["defaultActions"][0]["type"] == "forward"
    assert listeners[8142]["tcpIdleTimeoutSeconds"] == 1800
    assert listeners[8140]["tcpIdleTimeoutSeconds"] == 400


def test_default_pcp_idle_timeout_outlasts_the_broker() -> None:
    graph = declare()
    pcp = next(x.inputs for x in graph.of_type(LISTENER) if x.inputs["port"] == 8142)
    assert pcp["tcpIdleTimeoutSeconds"] > pe.PCP_BROKER_IDLE_SECONDS


def test_each_listener_forwards_to_the_target_group_of_its_port() -> None:
    graph = declare()
    groups = {tg.inputs["port"]: tg for tg in graph.of_type(TARGET_GROUP)}
    for listener in graph.of_type(LISTENER):
        arn = listener.inputs["defaultActions"][0]["targetGroupArn"]
        assert arn.endswith(f"/{groups[listener.inputs['port']].name}/abc")


def test_each_target_group_checks_its_own_service_on_8140() -> None:
    graph = declare()
    groups = graph.of_type(TARGET_GROUP)
    assert sorted(tg.inputs["port"] for tg in groups) == [8140, 8142]
    paths = {tg.inputs["port"]: tg.inputs["healthCheck"]["path"] for tg in groups}
    # puppetserver's aggregate status for 8140; the broker's own for 8142, so a broker that
    # lost the orchestrator leaves only the 8142 group.
    assert paths == {8140: "/status/v1/simple", 8142: "/status/v1/simple/broker-service"}
    for group in groups:
        inputs = group.inputs
        assert inputs["protocol"] == "TCP" and inputs["targetType"] == "instance"
        assert "name" not in inputs and "namePrefix" not in inputs  # autonamed: survives replacement
        check = inputs["healthCheck"]
        assert check["protocol"] == "HTTPS"
        assert check["port"] == "8140"
        assert check["matcher"] == "200"
        assert check["interval"] * check["unhealthyThreshold"] <= 20
        assert check["interval"] * check["healthyThreshold"] <= 30
        assert 5 <= check["interval"] <= 300
        assert 2 <= check["healthyThreshold"] <= 10 and 2 <= check["unhealthyThreshold"] <= 10
        assert check["timeout"] < check["interval"]


def test_pcp_target_group_drops_connections_of_leaving_or_sick_brokers() -> None:
    graph = declare()
    groups = {tg.inputs["port"]: tg.inputs for tg in graph.of_type(TARGET_GROUP)}
    pcp, agent = groups[8142], groups[8140]
    assert pcp["connectionTermination"] is True
    assert pcp["targetHealthStates"] == [{"enableUnhealthyConnectionTermination": True}]
    assert agent["connectionTermination"] is False
    assert agent["deregistrationDelay"] >= 120
    assert pcp["deregistrationDelay"] < agent["deregistrationDelay"]


def test_tcp_health_check_option_checks_each_groups_own_port() -> None:
    graph = declare(health_check_protocol="TCP")
    for group in graph.of_type(TARGET_GROUP):
        check = group.inputs["healthCheck"]
        assert check["protocol"] == "TCP" and check["port"] == str(int(group.inputs["port"]))
        # Sent empty: an HTTPS group switched to TCP must not keep its path and matcher.
        assert check["path"] == "" and check["matcher"] == ""


def test_custom_paths_and_faster_failover() -> None:
    graph = declare(
        health_check_path="/status/v1/simple/server",
        pcp_health_check_path="/status/v1/simple/broker-service",
        health_check_interval_seconds=5,
        health_check_healthy_threshold=2,
        health_check_unhealthy_threshold=2,
    )
    checks = {tg.inputs["port"]: tg.inputs["healthCheck"] for tg in graph.of_type(TARGET_GROUP)}
    assert checks[8140]["path"] == "/status/v1/simple/server"
    for check in checks.values():
        # Out of rotation in 10 s, the NLB's floor; each check may take 4 s.
        assert (check["interval"], check["unhealthyThreshold"], check["healthyThreshold"]) == (5, 2, 2)
        assert check["timeout"] == 4


def test_agents_reach_only_8140_and_8142_from_agent_cidrs() -> None:
    graph = declare()
    rules = [r.inputs for r in graph.of_type(INGRESS)]
    assert sorted((r["fromPort"], r.get("cidrIpv4") or r.get("cidrIpv6")) for r in rules) == [
        (8140, "10.0.0.0/8"),
        (8140, "192.168.0.0/16"),
        (8142, "10.0.0.0/8"),
        (8142, "192.168.0.0/16"),
    ]
    assert all(r["fromPort"] == r["toPort"] and r["ipProtocol"] == "tcp" for r in rules)


def test_nlb_sends_only_to_the_vpc_on_pool_ports() -> None:
    graph = declare()
    egress = [r.inputs for r in graph.of_type(EGRESS)]
    assert sorted(r["fromPort"] for r in egress) == [8140, 8142]
    assert {r["cidrIpv4"] for r in egress} == {VPC_CIDR}


def test_no_dns_record_without_pool_dns_name() -> None:
    graph = declare()
    assert graph.of_type("aws:route53/record:Record") == []


def test_alias_record_with_pool_dns_name() -> None:
    graph = declare(pool_dns_name="puppet-pool.example.com", hosted_zone_id="Z0123456789ABCDEFGHIJ")
    record = graph.one("aws:route53/record:Record").inputs
    assert record["name"] == "puppet-pool.example.com" and record["type"] == "A"
    assert record["zoneId"] == "Z0123456789ABCDEFGHIJ"
    assert record["aliases"] == [
        {
            "name": "pool-nlb-abc.elb.eu-west-1.amazonaws.com",
            "zoneId": "Z2IFOLAFXWLO4F",
            "evaluateTargetHealth": True,
        }
    ]


def test_tags_reach_every_taggable_resource() -> None:
    graph = declare(tags={"team": "puppet"})
    taggable = [r for r in graph.resources if r.custom and "tags" in r.inputs]
    assert len(taggable) >= 6
    assert all(r.inputs["tags"]["team"] == "puppet" for r in taggable)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"pcp_idle_timeout_seconds": 350}, "pcp_idle_timeout_seconds=350 must be 900..6000"),
        ({"agent_idle_timeout_seconds": 30}, "agent_idle_timeout_seconds=30 must be 60..6000"),
        ({"agent_cidrs": []}, "agent_cidrs must list at least one CIDR block"),
        ({"health_check_protocol": "HTTP"}, "health_check_protocol='HTTP' must be one of: HTTPS, TCP"),
        ({"health_check_interval_seconds": 4}, "health_check_interval_seconds=4 must be 5..300"),
        ({"health_check_unhealthy_threshold": 1}, "health_check_unhealthy_threshold=1 must be 2..10"),
        ({"health_check_healthy_threshold": 11}, "health_check_healthy_threshold=11 must be 2..10"),
        ({"pcp_health_check_path": "broker"}, "pcp_health_check_path='broker' must be an absolute URL path"),
        ({"hosted_zone_id": "Z0123456789ABC"}, "hosted_zone_id needs pool_dns_name: the record's name"),
    ],
)
def test_component_refuses_bad_arguments_before_declaring_anything(
    overrides: dict[str, Any], message: str
) -> None:
    graph = run(lambda: PuppetLoadBalancer("pool", base_args(**overrides)), expect_error=True)
    assert isinstance(graph.error, ValueError)
    assert message in str(graph.error)
    assert graph.resources == []


def test_subnets_and_agent_cidrs_given_as_outputs_work() -> None:
    graph = run(
        lambda: PuppetLoadBalancer(
            "pool",
            base_args(
                subnet_ids=pulumi.Output.from_input(["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"]),
                agent_cidrs=pulumi.Output.from_input(["10.0.0.0/8"]),
            ),
        )
    )
    assert graph.one("aws:lb/loadBalancer:LoadBalancer").inputs["subnets"] == [
        "subnet-0aaaaaaaaaaaaaaa1",
        "subnet-0bbbbbbbbbbbbbbb2",
    ]
    assert graph.one("aws:ec2/managedPrefixList:ManagedPrefixList").inputs["maxEntries"] == 1
    assert sorted(r.inputs["fromPort"] for r in graph.of_type(INGRESS)) == [8140, 8142]
