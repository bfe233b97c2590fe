"""PoolHealthGate on its own: the local poolctl commands and their checks."""

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pulumi

from components import PoolHealthGate
from components.pool_health_gate import POOLCTL_MISSING
from tests.harness import PROJECT_DIR, run

ARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/pe-lb/abc"
ROLE = "arn:aws:iam::123456789012:role/deployer"


def account() -> Any:
    """The provider's account settings, the role as an Output (made inside the program, never at import)."""
    return {"aws_region": "eu-west-1", "aws_profile": "ops", "aws_role_arn": pulumi.Output.from_input(ROLE)}


def poolctl_argv(create: str) -> list[str]:
    prefix, line = create.rsplit("; ", 1)
    assert prefix == POOLCTL_MISSING
    return shlex.split(line)


def test_one_wait_per_compile_master_named_by_nothing_of_this_machine() -> None:
    ids = ["i-0aaaaaaaaaaaaaaa1", "i-0bbbbbbbbbbbbbbb2"]
    graph = run(
        lambda: PoolHealthGate(
            "gate",
            {
                "load_balancer_arn": pulumi.Output.from_input(ARN),
                "timeout_seconds": 120,
                "aws": account(),
                "instance_ids": [pulumi.Output.from_input(ids[0]), ids[1]],
            },
        )
    )
    commands = sorted(graph.of_type("command:local:Command"), key=lambda c: c.name)
    assert [command.name for command in commands] == ["gate-wait-healthy-0", "gate-wait-healthy-1"]
    for command, instance in zip(commands, ids, strict=True):
        assert poolctl_argv(command.inputs["create"]) == [
            "poolctl", "wait-healthy", "--load-balancer", ARN, "--timeout", "120",
            "--instance", instance, "--region", "eu-west-1", "--profile", "ops",
            "--role-arn", "arn:aws:iam::123456789012:role/deployer",
        ]  # fmt: skip
        # Made again only when its compile master is new (or the NLB is): what an update adds.
        assert command.inputs["triggers"] == [ARN, instance]
        assert "dir" not in command.inputs and "interpreter" not in command.inputs
        assert command.parent == graph.one("pe-lb:index:PoolHealthGate").urn
    plaintext = graph.plaintext()
    assert str(PROJECT_DIR) not in plaintext and sys.executable not in plaintext


def test_without_instance_ids_one_wait_for_the_whole_pool() -> None:
    graph = run(lambda: PoolHealthGate("gate", {"load_balancer_arn": ARN, "rerun_on": ["x"]}))
    command = graph.one("command:local:Command")
    assert "--instance" not in poolctl_argv(command.inputs["create"])
    assert command.inputs["triggers"] == [ARN, ["x"]]


def test_a_missing_poolctl_is_said_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        ["/bin/sh", "-c", f"{POOLCTL_MISSING}; poolctl wait-healthy"],
        env={"PATH": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 127
    assert result.stderr.strip() == (
        "pe-lb: poolctl is not on PATH where pulumi up runs: pip install pe-lb there "
        "(make up puts .venv/bin first)"
    )


def test_refuses_a_timeout_out_of_range() -> None:
    graph = run(
        lambda: PoolHealthGate("gate", {"load_balancer_arn": ARN, "timeout_seconds": 5}), expect_error=True
    )
    assert "timeout_seconds=5 must be 60..3600" in str(graph.error)
    assert graph.resources == []


def test_rerun_on_with_instance_ids_is_refused() -> None:
    graph = run(
        lambda: PoolHealthGate("gate", {"load_balancer_arn": ARN, "instance_ids": ["i-0a"], "rerun_on": [1]}),
        expect_error=True,
    )
    assert "rerun_on is for the whole-pool wait" in str(graph.error)
    assert graph.resources == []


def test_a_drained_compile_master_is_not_waited_for_and_the_others_keep_their_names() -> None:
    graph = run(
        lambda: PoolHealthGate(
            "gate", {"load_balancer_arn": ARN, "instance_ids": ["i-0a", "i-0b", "i-0c"], "drained": [1]}
        )
    )
    waits = {command.name: command for command in graph.of_type("command:local:Command")}
    assert sorted(waits) == ["gate-wait-healthy-0", "gate-wait-healthy-2"]
    assert waits["gate-wait-healthy-2"].inputs["triggers"] == [ARN, "i-0c"]
