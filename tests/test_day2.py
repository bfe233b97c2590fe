"""What the next `pulumi up` does to a running pool: before/after graphs of each config change
turned into the engine's steps, in its order (tests/engine.py); then each engine rule on a small
graph of its own."""

import dataclasses
from typing import Any

import pytest

from tests.engine import (
    Plan,
    State,
    apply_replace_on_changes,
    changed_paths,
    parse_path,
    plan,
    provider_replaces,
    requires_replacement,
)
from tests.harness import Graph, Recorded, run_main

INSTANCE = "aws:ec2/instance:Instance"
ATTACHMENT = "aws:lb/targetGroupAttachment:TargetGroupAttachment"
COMMAND = "command:remote:Command"
GATE = "command:local:Command"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
LISTENER = "aws:lb/listener:Listener"
RECORD = "aws:route53/record:Record"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
DNS = {"poolDnsName": "puppet-pool.example.com", "hostedZoneId": "Z0123456789ABC"}


def change(stack_config: dict[str, Any], **after: Any) -> Plan:
    return plan(run_main(stack_config), run_main({**stack_config, **after}))


def test_scaling_out_updates_pe_repo_and_replaces_nothing(stack_config: dict[str, Any]) -> None:
    result = change(stack_config, compileMasterCount=4)
    assert result.names("replace") == set()
    # The gate waits for the one it adds, and only for it: a sick compile master elsewhere never blocks it.
    assert result.names("create") == {
        "pe-lb-3", "pe-lb-3-join", "pe-lb-3-8140", "pe-lb-3-8142", "pe-lb-wait-healthy-3",
        "pe-lb-3-recover", "pe-lb-3-reboot",
    }  # fmt: skip
    assert {result.op(GATE, f"pe-lb-wait-healthy-{i}") for i in range(3)} == {"same"}
    # The floor follows the pool (all but one); the alarm keeps its name and history.
    for port in (8140, 8142):
        assert result.op(ALARM, f"pe-lb-{port}-below-floor") == "update"
        assert result.changed(ALARM, f"pe-lb-{port}-below-floor") == {"threshold", "alarmDescription"}
    assert result.changed(DASHBOARD, "pe-lb-dashboard") == {"dashboardBody"}
    # The new compile master goes into the command text: an update, so its delete (unset) never runs.
    assert result.op(COMMAND, "pe-lb-pe-repo") == "update"
    assert result.changed(COMMAND, "pe-lb-pe-repo") == {"create", "update"}
    assert result.op(COMMAND, "pe-lb-pe-agent") == "same"
    assert {result.op(COMMAND, f"pe-lb-{i}-join") for i in range(3)} == {"same"}


def test_scaling_in_removes_one_compile_master_and_replaces_nothing(stack_config: dict[str, Any]) -> None:
    result = change(stack_config, compileMasterCount=2)
    assert result.names("replace") == set()
    assert result.names("delete") == {
        "pe-lb-2", "pe-lb-2-join", "pe-lb-2-8140", "pe-lb-2-8142", "pe-lb-wait-healthy-2",
        "pe-lb-2-recover", "pe-lb-2-reboot",
    }  # fmt: skip
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
    # Each wait of the gate runs again for its new compile master, after the new attachments:
    # the old ones leave only once the new are healthy.
    assert result.names("replace", GATE) == {f"pe-lb-wait-healthy-{i}" for i in range(3)}
    graph = result.after
    for gate in graph.of_type(GATE):
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
    # Every certificate names the NLB's own name too (what agents had before poolDnsName).
    assert result.names("replace", INSTANCE) == {"pe-lb-0", "pe-lb-1", "pe-lb-2"}
    if dns:
        # The pool's name stays: the alias moves (after the gate), no PE setting changes.
        assert result.op(RECORD, "pe-lb-puppet-pool.example.com") == "update"
        # pe_repo waits for the new compile masters' install scripts: its text names them.
        assert result.op(COMMAND, "pe-lb-pe-repo") == "update"
        assert result.op(COMMAND, "pe-lb-pe-agent") == "same"
    else:
        # The pool's address is the NLB's name: agents are told the new one.
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
    # Out of both target groups, and no longer waited for by the gate.
    assert result.names("delete") == {"pe-lb-1-8140", "pe-lb-1-8142", "pe-lb-wait-healthy-1"}
    assert result.names("replace") == set()
    # Still joined to PE, and still a compile master pe_repo waits for.
    assert result.op(COMMAND, "pe-lb-1-join") == "same"
    assert result.op(COMMAND, "pe-lb-pe-repo") == "same"
    assert result.after.outputs["drainedCompileMasterIds"] == [result.after.outputs["compileMasterIds"][1]]
    undrained = plan(result.after, run_main(stack_config))
    # Undrained, it is waited for again: the update waits until it is healthy.
    assert undrained.names("create") == {"pe-lb-1-8140", "pe-lb-1-8142", "pe-lb-wait-healthy-1"}


def test_a_new_image_deletes_the_old_compile_masters_last_dependents_first(
    stack_config: dict[str, Any],
) -> None:
    result = change(stack_config, amiId="ami-0fedcba9876543210")
    ops = [step.op for step in result.steps]
    first_delete = ops.index("delete-replaced")
    assert all(op.startswith("delete") for op in ops[first_delete:]), "every delete after every create"
    assert first_delete > result.step("update", COMMAND, "pe-lb-pe-repo")
    for index in range(3):
        # Out of rotation, then the leave, then the instance: ScheduleDeletes' reverse order.
        out = max(
            result.step("delete-replaced", ATTACHMENT, f"pe-lb-{index}-{port}") for port in (8140, 8142)
        )
        leave = result.step("delete-replaced", COMMAND, f"pe-lb-{index}-join")
        assert out < leave < result.step("delete-replaced", INSTANCE, f"pe-lb-{index}")
        # Create-before-delete: the new one joins and enters rotation before any old one leaves.
        assert result.step("create-replacement", ATTACHMENT, f"pe-lb-{index}-8140") < first_delete


def test_dependents_of_a_replacement_change_only_where_its_new_outputs_do(
    stack_config: dict[str, Any],
) -> None:
    result = plan(run_main({**stack_config, **DNS}), run_main({**stack_config, **DNS, "internal": False}))
    # The new NLB has a new DNS name and ARN: the alias follows it, the listeners are new.
    assert result.changed(RECORD, "pe-lb-puppet-pool.example.com") == {"aliases"}
    assert result.names("replace", LISTENER) == {"pe-lb-8140", "pe-lb-8142"}
    # What only depends on it (the rules naming its security group, the pool's commands) is the same.
    assert result.op(INGRESS, "pe-lb-from-nlb-8140") == "same"


# ---- each engine rule on a graph of its own

URN = "urn:pulumi:test::pe-lb::"


def resource(type_token: str, name: str, inputs: dict[str, Any], **options: Any) -> Recorded:
    """A registered resource; ``uses`` maps an input to the resources its value comes from."""
    uses: dict[str, list[Recorded]] = options.pop("uses", {})
    property_dependencies = {key: [r.urn for r in used] for key, used in uses.items()}
    return Recorded(
        urn=f"{URN}{type_token}::{name}",
        type=type_token,
        name=name,
        raw_inputs=inputs,
        parent=f"{URN}pulumi:pulumi:Stack::pe-lb-test",
        dependencies=sorted({urn for urns in property_dependencies.values() for urn in urns}),
        custom=True,
        property_dependencies=property_dependencies,
        outputs=dict(inputs),
        **options,
    )


def command(name: str, create: str, triggers: list[Any] | None, **options: Any) -> Recorded:
    """A pulumi-command command, with the ``triggers[*]`` rule its SDK sets."""
    return resource(
        COMMAND, name, {"create": create, "triggers": triggers}, replace_on_changes=["triggers[*]"], **options
    )


def ops(result: Plan) -> list[str]:
    return [f"{step.op} {step.name}" for step in result.steps if step.op != "same"]


@pytest.mark.parametrize("delete_before_replace", [False, True], ids=["create-before-delete", "delete-first"])
def test_a_replacement_and_its_dependents(delete_before_replace: bool) -> None:
    def graph(setting: str) -> Graph:
        first = command("first", f"set {setting}", [setting], delete_before_replace=delete_before_replace)
        # Its id in a trigger: replaced when the id changes; unknown, replaced by a delete-first.
        second = command("second", "use first-id", ["first-id"], uses={"triggers": [first]})
        # Its id in a plain input: an update when the id changes; never deleted first.
        third = resource(
            RECORD, "third", {"name": "pool", "aliases": [{"name": "first-id"}]}, uses={"aliases": [first]}
        )
        return Graph([first, second, third])

    result = plan(graph("old"), graph("new"))
    if not delete_before_replace:
        assert ops(result) == [
            "create-replacement first", "replace first",
            "create-replacement second", "replace second",
            "update third",
            "delete-replaced second", "delete-replaced first",
        ]  # fmt: skip
    else:
        # calculateDependentReplacements: second, whose trigger would be unknown, goes first;
        # third (an alias is no ForceNew input) waits, then is updated.
        assert ops(result) == [
            "delete-replaced second", "delete-replaced first", "replace first", "create-replacement first",
            "replace second", "create-replacement second",
            "update third",
        ]  # fmt: skip


def test_an_output_that_stays_the_same_changes_nothing_downstream() -> None:
    def graph(internal: bool) -> Graph:
        nlb = resource(LOAD_BALANCER, "nlb", {"internal": internal, "subnets": ["a", "b"]})
        nlb.outputs.update(zoneId="Z2IFOLAFXWLO4F", dnsName="nlb-abc.elb.amazonaws.com", arn="arn:nlb/abc")
        record = resource(
            RECORD,
            "pool",
            {"name": "pool", "aliases": [{"zoneId": "Z2IFOLAFXWLO4F"}]},
            uses={"aliases": [nlb]},
        )
        return Graph([nlb, record])

    result = plan(graph(True), graph(False))
    assert result.op(LOAD_BALANCER, "nlb") == "replace"
    # A new NLB keeps its hosted zone: the engine diffs the real value, nothing changed.
    assert result.op(RECORD, "pool") == "same"


def test_pending_deletes_of_a_failed_update_go_at_the_end_of_the_next() -> None:
    def graph(setting: str) -> Graph:
        return Graph([command("first", f"set {setting}", [setting]), command("other", f"echo {setting}", [])])

    result = plan(graph("old"), graph("new"))
    state = result.before.copy()
    for step in result.steps[:2]:  # create-replacement first, replace first; then the update stops
        state.apply(step)
    assert [r.name for r in state.pending_delete] == ["first"]
    again = plan(state, graph("new"))
    assert ops(again) == ["update other", "delete-replaced first"]
    assert again.next_state().pending_delete == []
    assert [r.name for r in again.next_state().resources] == ["first", "other"]


def test_command_triggers_replace_on_any_change() -> None:
    old = command("run", "true", ["a", "b"])
    for triggers in (["a", "c"], ["a"], ["a", "b", "c"], None):
        new = command("run", "true", triggers)
        assert requires_replacement(old, new, changed_paths(old.inputs, new.inputs)), triggers
    assert not changed_paths(old.inputs, command("run", "true", ["a", "b"]).inputs)
    # The engine's `triggers[*]` matches only paths inside the list; the whole list added or
    # removed is the provider's (its schema marks `triggers` replaceOnChanges).
    assert parse_path("triggers[*]") == ("triggers", "*")
    assert apply_replace_on_changes(["triggers[*]"], [("triggers", 1)])
    assert not apply_replace_on_changes(["triggers[*]"], [("triggers",)])
    assert provider_replaces(old, old, [("triggers",)])
    assert not provider_replaces(old, old, [("triggers", 0)])


@pytest.mark.parametrize(
    ("type_token", "path", "replaces"),
    [
        (RECORD, ("type",), False),
        (RECORD, ("name",), True),
        (INSTANCE, ("associatePublicIpAddress",), True),
        (INSTANCE, ("privateDnsNameOptions", "hostnameType"), True),
        (INSTANCE, ("rootBlockDevice", "volumeSize"), False),
        (INSTANCE, ("rootBlockDevice", "encrypted"), True),
        (INSTANCE, ("instanceType",), False),
    ],
)
def test_what_the_aws_provider_replaces_for(type_token: str, path: tuple[str, ...], replaces: bool) -> None:
    old = resource(type_token, "r", {})
    assert provider_replaces(old, old, [path]) == replaces


def test_a_state_applies_a_replacement_as_the_engine_does() -> None:
    before = Graph([command("first", "set old", ["old"])])
    result = plan(before, Graph([command("first", "set new", ["new"])]))
    assert [r.name for r in result.next_state().resources] == ["first"]
    assert State.of(before).resources[0].outputs["id"] == "first-id"
    assert result.next_state().resources[0].outputs["id"] != "first-id", "a replacement has a new id"


def test_a_stack_deployed_before_alarms_gets_them_without_touching_a_compile_master(
    stack_config: dict[str, Any],
) -> None:
    """pe-lb before PeCompilerPool declared no maintenance options, alarms or dashboard: the next
    `up` updates each instance in place (ModifyInstanceMaintenanceOptions: no stop, no new
    certificate) and creates the rest."""
    graph = run_main(stack_config)
    dropped = "maintenanceOptions"
    before = dataclasses.replace(
        graph,
        resources=[
            dataclasses.replace(r, raw_inputs={k: v for k, v in r.raw_inputs.items() if k != dropped})
            for r in graph.resources
            if r.type not in (ALARM, DASHBOARD)
        ],
    )
    result = plan(before, run_main(stack_config))
    assert result.names("replace") == set() and result.names("delete") == set()
    assert {result.op(INSTANCE, f"pe-lb-{i}") for i in range(3)} == {"update"}
    assert {result.changed(INSTANCE, f"pe-lb-{i}") for i in range(3)} == {frozenset({"maintenanceOptions"})}
    assert {s.type for s in result.steps if s.op == "create"} == {ALARM, DASHBOARD}
