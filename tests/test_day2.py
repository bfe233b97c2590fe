"""What the next `pulumi up` does to a running pool: before/after graphs of each config change,
replayed with the engine's rules (tests/engine.py)."""

from typing import Any

import pytest

from tests.engine import Plan, plan
from tests.harness import run_main

INSTANCE = "aws:ec2/instance:Instance"
ATTACHMENT = "aws:lb/targetGroupAttachment:TargetGroupAttachment"
COMMAND = "command:remote:Command"
GATE = "command:local:Command"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
LISTENER = "aws:lb/listener:Listener"
RECORD = "aws:route53/record:Record"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
DNS = {"poolDnsName": "puppet-pool.example.com", "hostedZoneId": "Z0123456789ABC"}


def change(stack_config: dict[str, Any], **after: Any) -> Plan:
    return plan(run_main(stack_config), run_main({**stack_config, **after}))


def test_scaling_out_updates_pe_repo_and_replaces_nothing(stack_config: dict[str, Any]) -> None:
    result = change(stack_config, compileMasterCount=4)
    # Only the health gate, a local command that reverts nothing: it waits again for the new one.
    assert result.names("replace") == {"pe-lb-wait-healthy"}
    assert result.names("create") == {"pe-lb-3", "pe-lb-3-join", "pe-lb-3-8140", "pe-lb-3-8142"}
    # The new compile master goes into the command text: an update, so its delete (unset) never runs.
    assert result.op(COMMAND, "pe-lb-pe-repo") == "update"
    assert result.changed(COMMAND, "pe-lb-pe-repo") == {"create"}
    assert result.op(COMMAND, "pe-lb-pe-agent") == "same"
    assert {result.op(COMMAND, f"pe-lb-{i}-join") for i in range(3)} == {"same"}


def test_scaling_in_removes_one_compile_master_and_replaces_nothing(stack_config: dict[str, Any]) -> None:
    result = change(stack_config, compileMasterCount=2)
    assert result.names("replace") == {"pe-lb-wait-healthy"}
    assert result.names("delete") == {"pe-lb-2", "pe-lb-2-join", "pe-lb-2-8140", "pe-lb-2-8142"}
    assert result.op(COMMAND, "pe-lb-pe-repo") == "update"


@pytest.mark.parametrize(
    "after",
    [{"amiId": "ami-0fedcba9876543210"}, {"instanceType": "m6i.2xlarge"}, {"rootVolumeSizeGb": 100}],
    ids=["image", "instance type", "bigger volume"],
)
def test_a_new_image_or_type_replaces_compile_masters_by_joining_new_ones_first(
    stack_config: dict[str, Any], after: dict[str, Any]
) -> None:
    result = change(stack_config, **after)
    if "rootVolumeSizeGb" in after:
        # EBS grows in place: an update of each instance, nothing replaced or restarted.
        assert result.names("replace") == set()
        assert result.names("update") == {"pe-lb-0", "pe-lb-1", "pe-lb-2"}
        return
    # Every compile master, its join (a new certname) and its attachments: created anew,
    # the old ones deleted at the end (dependents first: out of rotation, leave, terminate).
    assert result.names("replace", INSTANCE) == {"pe-lb-0", "pe-lb-1", "pe-lb-2"}
    assert result.names("replace", COMMAND) == {f"pe-lb-{i}-join" for i in range(3)}
    assert result.names("replace", ATTACHMENT) == {f"pe-lb-{i}-{p}" for i in range(3) for p in (8140, 8142)}
    assert result.names("update", INSTANCE) == set(), "never a stop/start in place"
    # Nothing that reverts on delete is replaced: pe_repo updates, PE Agent stays.
    assert result.op(COMMAND, "pe-lb-pe-repo") == "update"
    assert result.op(COMMAND, "pe-lb-pe-agent") == "same"
    assert result.op(LOAD_BALANCER, "pe-lb-nlb") == "same"
    # The health gate waits again, after the new attachments: the old leave only once the new are healthy.
    assert result.op(GATE, "pe-lb-wait-healthy") == "replace"
    graph = result.after
    gate = graph.one(GATE)
    for attachment in graph.of_type(ATTACHMENT):
        assert graph.depends_on(gate, attachment)


def test_appending_a_subnet_moves_no_compile_master(stack_config: dict[str, Any]) -> None:
    subnets = [*stack_config["subnetIds"], "subnet-0ccccccccccccccc3"]
    result = change(stack_config, subnetIds=subnets)
    # Round-robin would move pe-lb-2 to the new subnet; its placement is kept.
    assert result.after.one(INSTANCE, "pe-lb-2").inputs["subnetId"] == "subnet-0ccccccccccccccc3"
    assert result.names("replace") == set()
    assert result.op(LOAD_BALANCER, "pe-lb-nlb") == "update"


def test_compile_masters_in_private_subnets_and_the_nlb_in_public_ones(stack_config: dict[str, Any]) -> None:
    public = ["subnet-0ccccccccccccccc3", "subnet-0bbbbbbbbbbbbbbb2"]
    graph = run_main({**stack_config, "loadBalancerSubnetIds": public, "internal": False})
    assert graph.one(LOAD_BALANCER).inputs["subnets"] == public
    assert {i.inputs["subnetId"] for i in graph.of_type(INSTANCE)} == set(stack_config["subnetIds"])


@pytest.mark.parametrize("dns", [{}, DNS], ids=["NLB name", "poolDnsName"])
def test_an_nlb_rebuild_brings_new_target_groups(stack_config: dict[str, Any], dns: dict[str, str]) -> None:
    result = plan(run_main({**stack_config, **dns}), run_main({**stack_config, **dns, "internal": False}))
    assert result.op(LOAD_BALANCER, "pe-lb-nlb") == "replace"
    # Target groups go with the NLB (replace_with), or the new listeners would find them taken.
    assert result.names("replace", TARGET_GROUP) == {"pe-lb-8140", "pe-lb-8142"}
    assert result.names("replace", LISTENER) == {"pe-lb-8140", "pe-lb-8142"}
    assert result.names("replace", ATTACHMENT) == {f"pe-lb-{i}-{p}" for i in range(3) for p in (8140, 8142)}
    if dns:
        # The pool's name stays: certificates stay valid, no compile master or PE setting changes.
        assert result.op(RECORD, "pe-lb-pool") == "update"
        assert result.names("replace", INSTANCE) == set()
        assert result.op(COMMAND, "pe-lb-pe-repo") == "same"
        assert result.op(COMMAND, "pe-lb-pe-agent") == "same"
    else:
        # The pool's address is the NLB's name: every certificate names the old one.
        assert result.names("replace", INSTANCE) == {"pe-lb-0", "pe-lb-1", "pe-lb-2"}
        assert result.op(COMMAND, "pe-lb-pe-repo") == "replace"
        assert result.op(COMMAND, "pe-lb-pe-agent") == "replace"


def test_swapping_an_nlb_subnet_rebuilds_it_and_adding_one_does_not(stack_config: dict[str, Any]) -> None:
    base = {
        **stack_config,
        **DNS,
        "loadBalancerSubnetIds": ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"],
    }
    swapped = plan(
        run_main(base),
        run_main({**base, "loadBalancerSubnetIds": ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0ccccccccccccccc3"]}),
    )
    assert swapped.op(LOAD_BALANCER, "pe-lb-nlb") == "replace"
    assert swapped.names("replace", TARGET_GROUP) == {"pe-lb-8140", "pe-lb-8142"}
    added = [*base["loadBalancerSubnetIds"], "subnet-0ccccccccccccccc3"]
    grown = plan(run_main(base), run_main({**base, "loadBalancerSubnetIds": added}))
    assert grown.op(LOAD_BALANCER, "pe-lb-nlb") == "update"
    assert grown.names("replace") == set()


def test_a_new_pool_address_replaces_only_what_names_it(stack_config: dict[str, Any]) -> None:
    result = plan(
        run_main({**stack_config, **DNS}),
        run_main({**stack_config, **DNS, "poolDnsName": "pool2.example.com"}),
    )
    # Certificates name the pool: new compile masters; pe_repo and PE Agent get the new address
    # (new create first, then the old delete removes only the old address).
    assert result.names("replace", INSTANCE) == {"pe-lb-0", "pe-lb-1", "pe-lb-2"}
    assert result.op(COMMAND, "pe-lb-pe-repo") == "replace"
    assert result.op(COMMAND, "pe-lb-pe-agent") == "replace"
    assert result.op(LOAD_BALANCER, "pe-lb-nlb") == "same"


def test_removing_the_first_agent_cidr_touches_only_its_rules(stack_config: dict[str, Any]) -> None:
    before = {**stack_config, "agentCidrs": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}
    result = plan(run_main(before), run_main({**before, "agentCidrs": ["172.16.0.0/12", "192.168.0.0/16"]}))
    assert result.names("delete") == {"pe-lb-agents-8140-10.0.0.0-8", "pe-lb-agents-8142-10.0.0.0-8"}
    assert result.names("update") == set() and result.names("replace") == set()


def test_switching_the_health_check_to_tcp_updates_the_target_groups(stack_config: dict[str, Any]) -> None:
    result = change(stack_config, healthCheckProtocol="TCP")
    assert result.names("update") == {"pe-lb-8140", "pe-lb-8142"}
    assert result.names("replace") == set()
    checks = {tg.inputs["port"]: tg.inputs["healthCheck"] for tg in result.after.of_type(TARGET_GROUP)}
    assert all(check["path"] == "" and check["matcher"] == "" for check in checks.values())


def test_draining_a_compile_master_takes_only_it_out_of_rotation(stack_config: dict[str, Any]) -> None:
    result = change(stack_config, drainedCompileMasters=[1])
    assert result.names("delete") == {"pe-lb-1-8140", "pe-lb-1-8142"}
    assert result.names("replace") == set()
    # Still joined to PE, and still a compile master pe_repo waits for.
    assert result.op(COMMAND, "pe-lb-1-join") == "same"
    assert result.op(COMMAND, "pe-lb-pe-repo") == "same"
    assert result.after.outputs["drainedCompileMasterIds"] == [result.after.outputs["compileMasterIds"][1]]
    undrained = plan(result.after, run_main(stack_config))
    assert undrained.names("create") == {"pe-lb-1-8140", "pe-lb-1-8142"}
