"""Waits, during `pulumi up`, until every compile master in rotation is healthy in both target groups."""

import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_command as command

from . import validation

PACKAGE = __package__ or "components"
"""This package's import name: `pe_lb` installed, `components` in pe-lb's own folder."""
PACKAGE_PARENT = Path(__file__).resolve().parent.parent
"""Where `python -m <package>.poolctl` finds the package, whichever way it was installed."""
DEFAULT_TIMEOUT_SECONDS = 900
TIMEOUT_SECONDS_RANGE = (60, 3600)


class AwsAccountArgs(TypedDict):
    """How poolctl reaches the account the AWS provider deploys to."""

    aws_region: NotRequired[pulumi.Input[str] | None]
    """AWS region, as the AWS provider has it (default: the load balancer's)."""
    aws_profile: NotRequired[pulumi.Input[str] | None]
    """AWS profile, as the AWS provider has it (aws:profile)."""
    aws_role_arn: NotRequired[pulumi.Input[str] | None]
    """Role to assume, as the AWS provider does (aws:assumeRoles); credentials otherwise come from the
    environment pulumi runs in, as the provider's do."""


class PoolHealthGateArgs(TypedDict):
    aws: NotRequired[AwsAccountArgs]
    """The account poolctl reads, as the AWS provider has it; credentials otherwise from the environment."""
    load_balancer_arn: pulumi.Input[str]
    """The pool's NLB; poolctl reads its 8140 and 8142 target groups (region from the ARN)."""
    timeout_seconds: NotRequired[int]
    """Fail the deployment if the pool is not healthy after this long (default 900)."""
    rerun_on: NotRequired[pulumi.Input[Sequence[Any]]]
    """Values whose change makes the gate wait again, e.g. compile master ids."""


class PoolHealthGate(pulumi.ComponentResource):
    """A local `poolctl wait-healthy` that later steps can depend on.

    It runs with the interpreter running the Pulumi program, which has what poolctl needs
    (boto3 is a dependency of pe-lb), wherever the program lives.
    """

    def __init__(
        self, name: str, args: PoolHealthGateArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        timeout = validation.int_in_range(
            "timeout_seconds", args.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS), *TIMEOUT_SECONDS_RANGE
        )
        super().__init__("pe-lb:index:PoolHealthGate", name, None, opts)
        account = args.get("aws") or {}
        create = pulumi.Output.all(
            args["load_balancer_arn"],
            account.get("aws_region"),
            account.get("aws_profile"),
            account.get("aws_role_arn"),
        ).apply(lambda values: wait_healthy_command(values[0], timeout, *values[1:]))
        command.local.Command(
            f"{name}-wait-healthy",
            create=create,
            dir=str(PACKAGE_PARENT),
            triggers=[args["load_balancer_arn"], args.get("rerun_on", [])],
            # A component's depends_on does not reach its children.
            opts=pulumi.ResourceOptions(parent=self, depends_on=opts.depends_on if opts else None),
        )
        self.register_outputs({})


def wait_healthy_command(
    load_balancer_arn: str,
    timeout_seconds: int,
    region: str | None = None,
    profile: str | None = None,
    role_arn: str | None = None,
) -> str:
    """The command line: this interpreter, this package's poolctl, the provider's account settings."""
    argv = [sys.executable, "-m", f"{PACKAGE}.poolctl", "wait-healthy", "--load-balancer", load_balancer_arn]
    argv += ["--timeout", str(timeout_seconds)]
    for flag, value in (("--region", region), ("--profile", profile), ("--role-arn", role_arn)):
        if value:
            argv += [flag, value]
    return shlex.join(argv)
