"""PeCompilerPool: the whole pool as one resource, the same graph as the parts wired by hand."""

import json
from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from components import PeCompilerPool, pool_config
from tests import harness
from tests.conftest import HOST_KEY, SSH_KEY
from tests.engine import plan
from tests.harness import PROJECT_DIR, Graph, Recorded, config_string, redact, run, run_file, run_main

WIRED_BY_HAND = PROJECT_DIR / "tests" / "programs" / "wired_by_hand.py"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
NEW_IN_POOL = {ALARM, DASHBOARD}
"""What PeCompilerPool adds to the parts: a pool that heals and speaks up."""
DNS = {"poolDnsName": "puppet-pool.example.com", "hostedZoneId": "Z0123456789ABC"}


def key(resource: Recorded) -> tuple[str, str]:
    return resource.type, resource.name


def edges(graph: Graph, resource: Recorded) -> set[tuple[str, str]]:
    by_urn = {r.urn: r for r in graph.resources}
    return {key(by_urn[urn]) for urn in resource.dependencies if urn in by_urn}


@pytest.mark.parametrize(
    "extra", [{}, DNS, {"waitForHealthy": False, "agentsUsePool": False}], ids=["plain", "dns", "bare"]
)
def test_the_pool_declares_what_the_parts_wired_by_hand_did_with_the_same_dependencies(
    stack_config: dict[str, Any], extra: dict[str, Any]
) -> None:
    config = {**stack_config, **extra}
    by_hand, pool = run_file(WIRED_BY_HAND, config), run_main(config)
    # Registration order follows when outputs resolve; the order the engine keeps is the dependencies.
    ours = {key(r): r for r in pool.resources if r.custom and r.type not in NEW_IN_POOL}
    theirs = {key(r): r for r in by_hand.resources if r.custom}
    assert sorted(ours) == sorted(theirs)
    for name, mine in ours.items():
        assert mine.inputs == theirs[name].inputs, name
        assert edges(pool, mine) == edges(by_hand, theirs[name]), name
    assert {r.type for r in pool.resources if r.custom} - {
        type_token for type_token, _ in theirs
    } == NEW_IN_POOL


@pytest.mark.parametrize("extra", [{}, DNS], ids=["plain", "dns"])
def test_moving_a_stack_to_the_pool_replaces_nothing(
    stack_config: dict[str, Any], extra: dict[str, Any]
) -> None:
    """The parts answer to their old place at the top of the stack (aliases): the engine takes every
    resource over in place; only the alarms and the dashboard are new."""
    config = {**stack_config, **extra}
    steps = plan(run_file(WIRED_BY_HAND, config), run_main(config))
    assert steps.names("delete") == set()
    assert steps.names("replace") == set()
    assert steps.names("update") == set()
    created = [s for s in steps.steps if s.op == "create"]
    assert created and {s.type for s in created} == NEW_IN_POOL


def test_without_the_aliases_the_move_would_replace_the_pool(stack_config: dict[str, Any]) -> None:
    """What the aliases prevent: the same program with its parts' aliases removed recreates the NLB."""

    def without(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if args.type_.startswith("pe-lb:index:") and args.opts.aliases:
            args.opts.aliases = []
            return pulumi.ResourceTransformationResult(args.props, args.opts)
        return None

    steps = plan(run_file(WIRED_BY_HAND, stack_config), run_main(stack_config, transformation=without))
    assert "pe-lb-nlb" in steps.names("delete") and "pe-lb-nlb" in steps.names("create")


def program_with(args: Callable[[], dict[str, Any]]) -> Callable[[], None]:
    """A program declaring one PeCompilerPool; ``args`` is called inside it (Outputs need the runtime)."""

    def program() -> None:
        PeCompilerPool("pool", args())  # type: ignore[arg-type]

    return program


def base_args() -> dict[str, Any]:
    return {
        "primary_host": "puppet.example.com",
        "primary_host_key": HOST_KEY,
        "ssh_private_key": SSH_KEY,
        "vpc_id": "vpc-0123456789abcdef0",
        "subnet_ids": ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"],
        "agent_cidrs": ["10.0.0.0/8"],
        "primary_cidrs": ["10.0.1.10/32"],
        "ami_id": "ami-0123456789abcdef0",
    }


def test_outputs_of_other_resources_are_taken_and_checked_once_known() -> None:
    """A VPC made in the same program hands its subnets over as one Output."""
    subnets = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"]
    graph = run(program_with(lambda: {**base_args(), "subnet_ids": pulumi.Output.from_input(subnets)}))
    instances = graph.of_type("aws:ec2/instance:Instance")
    assert sorted(i.inputs["subnetId"] for i in instances) == subnets
    # The SSH key, given as plain text, is a secret wherever it is used.
    assert all(SSH_KEY not in json.dumps(redact(r.raw_inputs)) for r in graph.resources)


@pytest.mark.parametrize(
    "bad",
    [
        {"subnetIds": ["sg-0aaaaaaaaaaaaaaa1"]},
        {"compileMasterCount": 501},
        {"drainedCompileMasters": [0, 1]},
        {"adminCidrs": ["0.0.0.0/0"]},
        {"tags": {"team": "a\nb"}},
        {"internal": "yes"},
    ],
)
def test_args_and_stack_config_get_the_same_message(
    stack_config: dict[str, Any], bad: dict[str, Any]
) -> None:
    """One set of checks: a typed value (args; a later Output is checked by the same function
    once known) and the same value as config text are refused with the same words."""
    typed = {**stack_config, "compileMasterCount": 2, **bad}
    text = {key: config_string(value) for key, value in typed.items()}
    with pytest.raises(pool_config.ConfigError) as from_args:
        pool_config.parse(typed)
    with pytest.raises(pool_config.ConfigError) as from_config:
        pool_config.parse(text, {"sshPrivateKey"})
    # The value as given: text from the config is quoted, a list from args is not.
    assert str(from_args.value).replace("'", "") == str(from_config.value).replace("'", "")
    assert next(iter(bad)) in str(from_args.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"compile_master_count": 0}, "compileMasterCount=0 must be 1..500"),
        ({"instance_type": "huge"}, "instanceType='huge' must be an EC2 instance type"),
        ({"alarm_topic_arn": "pe-oncall"}, "alarmTopicArn='pe-oncall' must be an SNS topic ARN"),
        (
            {"healthy_targets_floor": 3},
            "healthyTargetsFloor=3 must be 0..2 (the compile masters in rotation; 0: all but one)",
        ),
        ({"unhealthy_target_minutes": 0}, "unhealthyTargetMinutes=0 must be 1..60"),
        ({"compile_master_count": "an output"}, "compileMasterCount must be known when the program runs"),
        ({"primary_host_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nabc"}, "primaryHostKey=<"),
    ],
)
def test_bad_args_are_refused_as_the_stack_config_refuses_them_before_anything_is_declared(
    change: dict[str, Any], message: str
) -> None:
    def args() -> dict[str, Any]:
        if change.get("compile_master_count") == "an output":
            # Made inside the program: an Output made at import hangs the mocked runtime.
            return {**base_args(), "compile_master_count": pulumi.Output.from_input(2)}
        return {**base_args(), **change}

    graph = run(program_with(args), expect_error=True)
    assert isinstance(graph.error, pool_config.ConfigError)
    assert message in str(graph.error)
    assert graph.resources == []


def test_a_missing_arg_is_named_without_config_advice() -> None:
    args = base_args()
    del args["ami_id"]
    graph = run(program_with(lambda: args), expect_error=True)
    assert "amiId is required: give amiId" in str(graph.error)
    assert "pulumi config" not in str(graph.error).split("amiId is required")[1].split("\n")[0]


def test_the_schema_takes_the_stack_config_keys_as_inputs(schema: dict[str, Any]) -> None:
    pool = schema["resources"]["pe-lb:index:PeCompilerPool"]
    assert set(pool["inputProperties"]) == set(pool_config.KNOWN_KEYS) | {"aws"}
    assert set(pool["requiredInputs"]) == {
        "primaryHost", "primaryHostKey", "sshPrivateKey", "vpcId", "subnetIds", "agentCidrs", "primaryCidrs",
        "amiId",
    }  # fmt: skip
    assert set(pool["properties"]) == {
        "poolAddress", "loadBalancerArn", "loadBalancerDnsName", "targetGroupArns", "compileMasterIds",
        "compileMasterPrivateIps", "compileMasterCertnames", "compileMasterPoolTag",
        "drainedCompileMasterIds", "agentInstallCommand", "alarmNames", "dashboardUrl", "balancing",
        "haproxyInstanceIds", "discoveryName",
    }  # fmt: skip
    for name, spec in {**pool["inputProperties"], **pool["properties"]}.items():
        assert spec.get("description"), name


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    from tests.packaging import component_schema

    return component_schema()


def test_stack_outputs_come_from_the_pool(stack_config: dict[str, Any]) -> None:
    graph = run_main(stack_config)
    assert graph.outputs["dashboardUrl"] == (
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1"
        "#dashboards/dashboard/pe-lb-test-pe-lb"
    )
    assert len(graph.outputs["alarmNames"]) == 3 * 2 + 2 * 2
    assert graph.outputs["compileMasterPoolTag"] == "pe-lb/test/pe-lb"
    assert json.dumps(graph.outputs["compileMasterIds"]).count("i-") == 3


def test_a_stack_with_a_pool_under_another_name_is_warned_at_preview(
    stack_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parts wired by hand as "pool-lb" and so on (the YAML example before PeCompilerPool): a pool
    named otherwise would be a second one, not the same one taken over."""
    monkeypatch.setattr(harness, "TAGGED_POOLS", ["pe-lb/test/compile-masters", "pe-lb/other-stack/pe-lb"])
    (warning,) = [w for w in run_main(stack_config).warnings if "already has a pe-lb pool" in w]
    assert "named compile-masters" in warning and "none named 'pe-lb'" in warning
    assert "other-stack" not in warning
    monkeypatch.setattr(harness, "TAGGED_POOLS", ["pe-lb/test/pe-lb"])
    assert not [w for w in run_main(stack_config).warnings if "already has a pe-lb pool" in w]
