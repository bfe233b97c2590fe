"""balancing = least-connections: the HAProxy tier's graph under mocks, and its inputs refused by key."""

import shlex
from typing import Any

import pytest

from components import pe
from components.haproxy_config import HAPROXY_CA_FILE
from tests import harness
from tests.harness import Graph, Recorded, is_secret, run_main

INSTANCE = "aws:ec2/instance:Instance"
ATTACHMENT = "aws:lb/targetGroupAttachment:TargetGroupAttachment"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
RECORD = "aws:route53/record:Record"
ZONE = "aws:route53/zone:Zone"
COMMAND = "command:remote:Command"
GATE = "command:local:Command"
LEAST = {"balancing": "least-connections"}


@pytest.fixture
def config(stack_config: dict[str, Any]) -> dict[str, Any]:
    return {**stack_config, **LEAST}


def haproxies(graph: Graph) -> list[Recorded]:
    """In index order (registration order follows when outputs resolve)."""
    found = [r for r in graph.of_type(INSTANCE) if r.inputs["tags"].get(pe.ROLE_TAG) == pe.HAPROXY_ROLE]
    return sorted(found, key=lambda r: int(r.name.rsplit("-", 1)[1]))


def instance_id(instance: Recorded) -> str:
    """The mocks' instance id, as its ARN ends."""
    return str(instance.outputs["arn"]).rsplit("/", 1)[1]


def compile_masters(graph: Graph) -> list[Recorded]:
    return [r for r in graph.of_type(INSTANCE) if r.inputs["tags"].get(pe.ROLE_TAG) == pe.COMPILE_MASTER_ROLE]


def test_the_nlb_targets_the_haproxy_instances_not_the_compile_masters(config: dict[str, Any]) -> None:
    graph = run_main(config)
    assert graph.error is None, graph.error
    tier = haproxies(graph)
    assert [r.name for r in tier] == ["pe-lb-haproxy-0", "pe-lb-haproxy-1"]
    targets = {(r.inputs["targetId"], int(r.inputs["port"])) for r in graph.of_type(ATTACHMENT)}
    assert targets == {(instance_id(r), port) for r in tier for port in pe.POOL_PORTS}
    # One per zone, in turn.
    assert [r.inputs["subnetId"] for r in tier] == config["subnetIds"]


def test_haproxy_instances_are_hardened_cattle(config: dict[str, Any]) -> None:
    graph = run_main({**config, "haproxyInstanceType": "c6i.xlarge", "haproxyAmiId": "ami-0fedcba9876543210"})
    pool = graph.outputs["compileMasterPoolTag"]
    for instance in haproxies(graph):
        inputs = instance.inputs
        assert inputs["metadataOptions"]["httpTokens"] == "required"
        assert inputs["rootBlockDevice"]["encrypted"] is True
        assert inputs["associatePublicIpAddress"] is False
        assert inputs["userDataReplaceOnChange"] is True
        assert (inputs["instanceType"], inputs["ami"]) == ("c6i.xlarge", "ami-0fedcba9876543210")
        assert inputs["tags"][pe.POOL_TAG] == pool
        user_data = inputs["userData"]
        assert "balance leastconn" in user_data
        assert f"{pe.discovery_name(pool)}:8140" in user_data
        assert f"nameserver resolver {pe.VPC_RESOLVER}" in user_data
        assert HAPROXY_CA_FILE in user_data and "BEGIN CERTIFICATE" in user_data
        # The CA came from the primary's read, whose answer is a secret (hiera.yaml rides along).
        assert is_secret(instance.raw_inputs["userData"])
        assert "instanceType" in instance.replace_on_changes


def test_the_discovery_record_lists_joined_compile_masters_in_rotation(config: dict[str, Any]) -> None:
    graph = run_main({**config, "drainedCompileMasters": [1]})
    pool = graph.outputs["compileMasterPoolTag"]
    zone = graph.one(ZONE)
    assert zone.inputs["name"] == pe.discovery_zone_name(pool)
    assert zone.inputs["vpcs"] == [{"vpcId": config["vpcId"]}]
    record = graph.one(RECORD)
    assert (record.inputs["name"], record.inputs["type"], record.inputs["ttl"]) == (
        pe.discovery_name(pool),
        "A",
        pe.DISCOVERY_TTL_SECONDS,
    )
    masters = compile_masters(graph)
    assert record.inputs["records"] == sorted(
        m.outputs["privateIp"] for m in masters if not m.name.endswith("-1")
    )
    # A compile master enters the record once joined by the primary.
    for join in (c for c in graph.of_type(COMMAND) if c.name.endswith("-join")):
        assert graph.depends_on(record, join), join.name


def test_compile_masters_admit_haproxy_and_haproxy_comes_after_the_rule_and_the_record(
    config: dict[str, Any],
) -> None:
    graph = run_main(config)
    haproxy_group = "sg-pe-lb-haproxy"  # the mocks' id
    rules = [r for r in graph.of_type(INGRESS) if r.inputs.get("referencedSecurityGroupId") == haproxy_group]
    assert sorted(int(r.inputs["fromPort"]) for r in rules) == list(pe.POOL_PORTS)
    cm_group = "sg-pe-lb-compile-masters"
    assert {r.inputs["securityGroupId"] for r in rules} == {cm_group}
    record = graph.one(RECORD)
    for instance in haproxies(graph):
        assert all(graph.depends_on(instance, rule) for rule in rules)
        # Never booted before its name answers; gone before the record goes.
        assert graph.depends_on(instance, record)
    # Stats and SSH for admins only.
    admin = [
        r
        for r in graph.of_type(INGRESS)
        if r.inputs["securityGroupId"] == haproxy_group and r.inputs.get("cidrIpv4")
    ]
    assert {(int(r.inputs["fromPort"]), r.inputs["cidrIpv4"]) for r in admin} == {
        (pe.SSH_PORT, "192.0.2.0/24"),
        (pe.HAPROXY_STATS_PORT, "192.0.2.0/24"),
    }


def test_the_gate_waits_for_the_haproxy_instances_before_pe_repo(config: dict[str, Any]) -> None:
    graph = run_main(config)
    waited = set()
    for gate in (g for g in graph.of_type(GATE) if "wait-healthy" in g.name):
        argv = shlex.split(gate.inputs["create"].rsplit("; ", 1)[1])
        waited |= {argv[i + 1] for i, flag in enumerate(argv) if flag == "--instance"}
    assert waited == {instance_id(r) for r in haproxies(graph)}
    pe_repo = graph.one(COMMAND, "pe-lb-pe-repo")
    assert all(graph.depends_on(pe_repo, gate) for gate in graph.of_type(GATE) if "wait-healthy" in gate.name)


def test_an_haproxy_instance_that_goes_is_drained_first(config: dict[str, Any]) -> None:
    graph = run_main(config)
    for index, instance in enumerate(haproxies(graph)):
        drain = graph.one(GATE, f"pe-lb-haproxy-{index}-drain")
        assert drain.inputs["delete"] == f"sleep {pe.PUPPETSERVER_DEREGISTRATION_DELAY_SECONDS}"
        assert "create" not in drain.inputs and drain.inputs["triggers"] == [instance_id(instance)]
        assert graph.depends_on(drain, instance)
        for port in pe.POOL_PORTS:
            assert graph.depends_on(graph.one(ATTACHMENT, f"pe-lb-haproxy-{index}-{port}"), drain)


def test_the_pool_outputs_say_how_it_balances(config: dict[str, Any], stack_config: dict[str, Any]) -> None:
    graph = run_main(config)
    pool = graph.outputs["compileMasterPoolTag"]
    assert graph.outputs["balancing"] == "least-connections"
    assert graph.outputs["discoveryName"] == pe.discovery_name(pool)
    assert graph.outputs["haproxyInstanceIds"] == [instance_id(r) for r in haproxies(graph)]
    flow = run_main(stack_config)
    assert (flow.outputs["balancing"], flow.outputs["discoveryName"], flow.outputs["haproxyInstanceIds"]) == (
        "flow-hash",
        "",
        [],
    )
    assert not haproxies(flow) and not flow.of_type(ZONE)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"balancing": "round-robin"},
            "balancing='round-robin' must be one of: flow-hash, least-connections",
        ),
        ({**LEAST, "haproxyCount": 1}, "haproxyCount=1 must be 2..20 (two or more, one per zone"),
        ({"haproxyCount": 3}, "haproxyCount configure the HAProxy tier of balancing=least-connections"),
        ({"haproxyAmiId": "ami-0fedcba9876543210"}, "haproxyAmiId configure the HAProxy tier"),
        ({**LEAST, "haproxyAmiId": "ubuntu"}, "haproxyAmiId"),
        ({**LEAST, "healthCheckProtocol": "TCP"}, "healthCheckProtocol=TCP cannot go with balancing"),
        ({**LEAST, "healthyTargetsFloor": 2}, "healthyTargetsFloor counts compile masters"),
    ],
)
def test_bad_balancing_inputs_are_refused_naming_the_key(
    stack_config: dict[str, Any], extra: dict[str, Any], message: str
) -> None:
    graph = run_main({**stack_config, **extra}, expect_error=True)
    assert message in str(graph.error)
    assert not graph.of_type(INSTANCE)


def test_haproxy_checks_and_times_out_as_the_target_groups_do(config: dict[str, Any]) -> None:
    graph = run_main(
        {
            **config,
            "healthCheckIntervalSeconds": 30,
            "healthCheckHealthyThreshold": 4,
            "healthCheckUnhealthyThreshold": 3,
            "pcpIdleTimeoutSeconds": 1500,
            "agentIdleTimeoutSeconds": 900,
            "healthCheckPath": "/status/v1/simple/server",
        }
    )
    user_data = haproxies(graph)[0].inputs["userData"]
    assert "inter 30s fall 3 rise 4" in user_data
    assert "timeout tunnel 1500s" in user_data and "timeout client 900s" in user_data
    assert "option httpchk GET /status/v1/simple/server" in user_data
    assert f"option httpchk GET {pe.PCP_STATUS_PATH}" in user_data
    assert "timeout check 5s" in user_data


@pytest.mark.parametrize("attribute", ["support", "hostnames"])
def test_a_vpc_without_dns_for_private_zones_is_refused_at_preview(
    config: dict[str, Any], monkeypatch: pytest.MonkeyPatch, attribute: str
) -> None:
    monkeypatch.setitem(harness.VPC_DNS, attribute, False)
    graph = run_main(config, expect_error=True)
    off = {"support": "DNS resolution", "hostnames": "DNS hostnames"}[attribute]
    assert f"vpcId='vpc-0123456789abcdef0' has {off} off: balancing=least-connections" in str(graph.error)
    assert not graph.of_type(INSTANCE)
