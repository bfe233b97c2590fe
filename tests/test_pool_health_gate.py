"""PoolHealthGate on its own: the local poolctl command and its checks."""

import shlex
import sys

import pulumi

from components import PoolHealthGate
from components.pool_health_gate import PACKAGE_PARENT
from tests.harness import run

ARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/pe-lb/abc"


def test_runs_its_own_packages_poolctl_with_this_interpreter_and_the_providers_account() -> None:
    graph = run(
        lambda: PoolHealthGate(
            "gate",
            {
                "load_balancer_arn": pulumi.Output.from_input(ARN),
                "timeout_seconds": 120,
                "aws": {
                    "aws_region": "eu-west-1",
                    "aws_profile": "ops",
                    "aws_role_arn": pulumi.Output.from_input("arn:aws:iam::123456789012:role/deployer"),
                },
            },
        )
    )
    command = graph.one("command:local:Command")
    assert shlex.split(command.inputs["create"]) == [
        sys.executable, "-m", "components.poolctl", "wait-healthy",
        "--load-balancer", ARN, "--timeout", "120",
        "--region", "eu-west-1", "--profile", "ops", "--role-arn", "arn:aws:iam::123456789012:role/deployer",
    ]  # fmt: skip
    # Run from the folder that holds the package, wherever the caller's program lives.
    assert command.inputs["dir"] == str(PACKAGE_PARENT)
    assert command.inputs["triggers"] == [ARN, []]
    assert command.parent == graph.one("pe-lb:index:PoolHealthGate").urn


def test_refuses_a_timeout_out_of_range() -> None:
    graph = run(
        lambda: PoolHealthGate("gate", {"load_balancer_arn": ARN, "timeout_seconds": 5}), expect_error=True
    )
    assert "timeout_seconds=5 must be 60..3600" in str(graph.error)
    assert graph.resources == []
