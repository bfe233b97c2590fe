"""PoolHealthGate on its own: the local poolctl command and its checks."""

import shlex
import sys

import pulumi

from components import PoolHealthGate
from tests.harness import run

ARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/pe-lb/abc"


def test_runs_poolctl_wait_healthy_with_this_interpreter_and_profile() -> None:
    graph = run(
        lambda: PoolHealthGate(
            "gate",
            {
                "load_balancer_arn": pulumi.Output.from_input(ARN),
                "timeout_seconds": 120,
                "aws_profile": "ops",
            },
        )
    )
    command = graph.one("command:local:Command")
    assert shlex.split(command.inputs["create"]) == [
        sys.executable, "-m", "poolctl", "wait-healthy", "--load-balancer", ARN, "--timeout", "120",
        "--profile", "ops",
    ]  # fmt: skip
    assert command.inputs["triggers"] == [ARN]
    assert command.parent == graph.one("pe-lb:index:PoolHealthGate").urn


def test_refuses_a_timeout_out_of_range() -> None:
    graph = run(
        lambda: PoolHealthGate("gate", {"load_balancer_arn": ARN, "timeout_seconds": 5}), expect_error=True
    )
    assert "timeout_seconds=5 must be 60..3600" in str(graph.error)
    assert graph.resources == []
