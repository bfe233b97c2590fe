"""The whole program (__main__.py) under mocks, with a stack config like Pulumi.dev.yaml."""

import itertools
import shlex
from typing import Any

import pytest

from components import pe
from tests.conftest import HOST_KEY, SSH_KEY
from tests.harness import Graph, run_main

INSTANCE = "aws:ec2/instance:Instance"
ATTACHMENT = "aws:lb/targetGroupAttachment:TargetGroupAttachment"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
LISTENER = "aws:lb/listener:Listener"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
COMMAND = "command:remote:Command"


@pytest.fixture
def graph(stack_config: dict[str, Any]) -> Graph:
    return run_main(stack_config)


def test_every_compile_master_is_in_both_target_groups(graph: Graph) -> None:
    target_groups = {tg.inputs["port"]: tg.name for tg in graph.of_type(TARGET_GROUP)}
    instances = graph.of_type(INSTANCE)
    assert len(instances) == 3
    for instance in instances:
        attachments = [a for a in graph.of_type(ATTACHMENT) if instance.urn in a.dependencies]
        assert sorted(a.inputs["port"] for a in attachments) == list(pe.POOL_PORTS)
        for attachment in attachments:
            arn = attachment.inputs["targetGroupArn"]
            assert arn.endswith(f"/{target_groups[attachment.inputs['port']]}/abc")


def pe_repo(graph: Graph) -> Any:
    return graph.one(COMMAND, "pe-lb-pe-repo")


def test_pe_repo_command_waits_for_the_load_balancer_and_every_join(graph: Graph) -> None:
    run = pe_repo(graph)
    assert graph.depends_on(run, graph.one(LOAD_BALANCER))
    for listener in graph.of_type(LISTENER):
        assert graph.depends_on(run, listener)
    joins = [command for command in graph.of_type(COMMAND) if command.name.endswith("-join")]
    assert len(joins) == 3
    for join in joins:
        assert graph.depends_on(run, join)
    for attachment in graph.of_type(ATTACHMENT):
        assert graph.depends_on(run, attachment)


def test_pe_agent_points_at_the_pool_after_every_join(graph: Graph) -> None:
    agent = graph.one(COMMAND, "pe-lb-pe-agent")
    assert shlex.split(agent.inputs["create"].split("; ")[1])[4:] == [
        "agent-set",
        graph.outputs["poolAddress"],
        "--owner",
        "pe-lb/test/pe-lb-pe-agent",
    ]
    for join in (command for command in graph.of_type(COMMAND) if command.name.endswith("-join")):
        assert graph.depends_on(agent, join)


def test_agents_use_pool_false_leaves_pe_agent_alone(stack_config: dict[str, Any]) -> None:
    graph = run_main({**stack_config, "agentsUsePool": False})
    assert [c for c in graph.of_type(COMMAND) if c.name == "pe-lb-pe-agent"] == []
    assert graph.one(COMMAND, "pe-lb-pe-repo")


def test_secrets_never_appear_in_plain_text(graph: Graph) -> None:
    plaintext = graph.plaintext()
    assert SSH_KEY not in plaintext and "mock-ssh-key" not in plaintext
    # ...yet it reaches every command on the primary, which checks the primary's host key.
    for command in graph.of_type(COMMAND):
        assert command.inputs["connection"]["privateKey"] == SSH_KEY
        assert command.inputs["connection"]["hostKey"] == HOST_KEY


def test_outputs(graph: Graph) -> None:
    nlb_dns = "pe-lb-nlb-abc.elb.eu-west-1.amazonaws.com"
    assert graph.outputs["poolAddress"] == nlb_dns
    assert graph.outputs["loadBalancerDnsName"] == nlb_dns
    assert set(graph.outputs["targetGroupArns"]) == {"8140", "8142"}
    assert len(graph.outputs["compileMasterIds"]) == 3
    assert len(graph.outputs["compileMasterPrivateIps"]) == 3
    assert graph.outputs["compileMasterCertnames"] == [
        f"{instance_id}.eu-west-1.compute.internal" for instance_id in graph.outputs["compileMasterIds"]
    ]
    assert graph.outputs["agentInstallCommand"] == (
        f"curl --insecure https://{nlb_dns}:8140/packages/current/install.bash | sudo bash"
    )


def test_pool_dns_name_is_the_address_every_name_is_in_the_certificates_and_the_record_waits(
    stack_config: dict[str, Any],
) -> None:
    graph = run_main(
        {
            **stack_config,
            "poolDnsName": "puppet-pool.example.com",
            "hostedZoneId": "Z0123456789ABC",
            "additionalPoolDnsNames": ["next-pool.example.com"],
        }
    )
    assert graph.outputs["poolAddress"] == "puppet-pool.example.com"
    assert "puppet-pool.example.com:8140/packages" in graph.outputs["agentInstallCommand"]
    nlb_dns = graph.outputs["loadBalancerDnsName"]
    records = {record.inputs["name"]: record for record in graph.of_type("aws:route53/record:Record")}
    assert sorted(records) == ["next-pool.example.com", "puppet-pool.example.com"]
    names = ",".join(sorted(["puppet-pool.example.com", "next-pool.example.com", nlb_dns]))
    for instance in graph.of_type(INSTANCE):
        assert f"PE_POOL_NAMES={names}" in instance.inputs["userData"]
    gates = graph.of_type("command:local:Command")
    for record in records.values():
        assert record.inputs["aliases"][0]["name"] == nlb_dns
        assert record.parent == graph.one("pe-lb:index:PoolDnsNames").urn
        # The names move to an NLB only once the pool behind it serves (an NLB rebuild).
        assert all(graph.depends_on(record, gate) for gate in gates)
        for attachment in graph.of_type(ATTACHMENT):
            assert graph.depends_on(record, attachment)
        assert graph.depends_on(pe_repo(graph), record)
    # The record pe-lb 0.5 made inside PuppetLoadBalancer is taken over, never remade.
    assert records["puppet-pool.example.com"].aliases == [
        "urn:pulumi:test::pe-lb::pe-lb:index:PuppetLoadBalancer$aws:route53/record:Record::pe-lb-pool"
    ]
    assert records["next-pool.example.com"].aliases == []
    join_arguments = shlex.split(graph.one(COMMAND, "pe-lb-0-join").inputs["create"].split("; ")[1])
    flags = itertools.pairwise(join_arguments)
    assert [value for flag, value in flags if flag == "--pool-address"] == names.split(",")


def test_without_pool_dns_name_certificates_name_the_nlb(graph: Graph) -> None:
    nlb_dns = graph.outputs["loadBalancerDnsName"]
    for instance in graph.of_type(INSTANCE):
        assert f"PE_POOL_NAMES={nlb_dns}\n" in instance.inputs["userData"]
    assert graph.of_type("aws:route53/record:Record") == []


def test_component_types_and_parents(graph: Graph) -> None:
    components = {c.type for c in graph.resources if not c.custom}
    assert components == {
        "pe-lb:index:PeCompilerPool",
        "pe-lb:index:PoolAlarms",
        "pe-lb:index:PoolDashboard",
        "pe-lb:index:PuppetLoadBalancer",
        "pe-lb:index:CompileMasterPool",
        "pe-lb:index:PeRepoPoolAddress",
        "pe-lb:index:PeAgentPoolAddress",
        "pe-lb:index:PoolHealthGate",
    }, "PoolDnsNames only with a hosted zone"
    for resource in graph.resources:
        if resource.custom:
            assert graph.by_urn(resource.parent).type.startswith("pe-lb:index:"), resource.name


def test_wait_for_healthy_gates_the_pe_repo_command_one_wait_per_compile_master_in_rotation(
    stack_config: dict[str, Any],
) -> None:
    graph = run_main(
        {
            **stack_config,
            "waitForHealthy": True,
            "waitForHealthyTimeoutSeconds": 600,
            "drainedCompileMasters": [1],
        }
    )
    waits = {gate.name: gate for gate in graph.of_type("command:local:Command")}
    assert sorted(waits) == ["pe-lb-wait-healthy-0", "pe-lb-wait-healthy-2"], "never a drained one"
    for index in (0, 2):
        gate = waits[f"pe-lb-wait-healthy-{index}"]
        argv = shlex.split(gate.inputs["create"].rsplit("; ", 1)[1])
        assert argv[:2] == ["poolctl", "wait-healthy"]
        assert argv[argv.index("--load-balancer") + 1] == graph.outputs["loadBalancerArn"]
        assert argv[argv.index("--timeout") + 1] == "600"
        assert argv[argv.index("--instance") + 1] == graph.outputs["compileMasterIds"][index]
        for attachment in graph.of_type(ATTACHMENT):
            assert graph.depends_on(gate, attachment)
        assert graph.depends_on(pe_repo(graph), gate)


def test_the_health_gate_is_on_by_default_and_can_be_turned_off(
    graph: Graph, stack_config: dict[str, Any]
) -> None:
    assert len(graph.of_type("command:local:Command")) == 3
    assert run_main({**stack_config, "waitForHealthy": False}).of_type("command:local:Command") == []
