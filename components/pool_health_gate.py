"""Waits, during `pulumi up`, until every compile master is healthy in both target groups."""

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_command as command

from components import validation

PROJECT_DIR = Path(__file__).resolve().parent.parent
"""Where the poolctl package lives, beside components/."""
DEFAULT_TIMEOUT_SECONDS = 900
TIMEOUT_SECONDS_RANGE = (60, 3600)


class PoolHealthGateArgs(TypedDict):
    load_balancer_arn: pulumi.Input[str]
    """The pool's NLB; poolctl reads its 8140 and 8142 target groups (region from the ARN)."""
    timeout_seconds: NotRequired[int]
    """Fail the deployment if the pool is not healthy after this long (default 900)."""
    aws_profile: NotRequired[str | None]
    """AWS profile for poolctl, when the provider uses one from stack config."""
    rerun_on: NotRequired[Sequence[pulumi.Input[Any]]]
    """Values whose change makes the gate wait again, e.g. compile master ids."""


class PoolHealthGate(pulumi.ComponentResource):
    """A local `python -m poolctl wait-healthy` that later steps can depend on."""

    def __init__(
        self, name: str, args: PoolHealthGateArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        timeout = validation.int_in_range(
            "timeout_seconds", args.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS), *TIMEOUT_SECONDS_RANGE
        )
        super().__init__("pe-lb:index:PoolHealthGate", name, None, opts)
        arn = pulumi.Output.from_input(args["load_balancer_arn"])
        profile = args.get("aws_profile")
        command.local.Command(
            f"{name}-wait-healthy",
            create=arn.apply(lambda value: wait_healthy_command(value, timeout, profile)),
            dir=str(PROJECT_DIR),
            triggers=[arn, *args.get("rerun_on", [])],
            # A component's depends_on does not reach its children.
            opts=pulumi.ResourceOptions(parent=self, depends_on=opts.depends_on if opts else None),
        )
        self.register_outputs({})


def wait_healthy_command(load_balancer_arn: str, timeout_seconds: int, profile: str | None = None) -> str:
    """The command line; the interpreter running Pulumi has boto3 (requirements.txt)."""
    argv = [sys.executable, "-m", "poolctl", "wait-healthy", "--load-balancer", load_balancer_arn]
    argv += ["--timeout", str(timeout_seconds)]
    if profile:
        argv += ["--profile", profile]
    return shlex.join(argv)
