"""Waits, during `pulumi up`, until the compile masters an update adds are healthy in both target groups."""

import shlex
from collections.abc import Sequence
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_command as command

from . import validation
from .primary import caller_depends_on

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
    instance_ids: NotRequired[pulumi.Input[Sequence[pulumi.Input[str]]]]
    """The compile masters to wait for, in pool order (CompileMasterPool's), each until healthy in
    both target groups. Given as a list, each gets a wait of its own, named by its pool index and
    made again only when its instance is new: an update waits for what it adds or replaces, and a
    sick compile master elsewhere never blocks it (nor its replacement). Without it, one wait for
    every compile master in rotation."""
    drained: NotRequired[Sequence[int]]
    """Pool indexes not waited for: the compile masters kept out of rotation (CompileMasterPool's
    drained)."""
    timeout_seconds: NotRequired[int]
    """Fail the deployment if the pool is not healthy after this long (default 900)."""
    rerun_on: NotRequired[pulumi.Input[Sequence[Any]]]
    """Without instance_ids: values whose change makes the whole-pool wait run again."""


class PoolHealthGate(pulumi.ComponentResource):
    """`poolctl wait-healthy`, run locally where `pulumi up` runs, that later steps can depend on.

    The command names no path of the deploying machine (`poolctl` from PATH: pip install pe-lb;
    `make up` puts this project's .venv/bin first), so the same stack deployed from another
    machine or folder shows no diff.
    """

    def __init__(
        self, name: str, args: PoolHealthGateArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        timeout = validation.int_in_range(
            "timeout_seconds", args.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS), *TIMEOUT_SECONDS_RANGE
        )
        instance_ids = args.get("instance_ids")
        if instance_ids is not None and args.get("rerun_on") is not None:
            raise ValueError(
                "rerun_on is for the whole-pool wait: with instance_ids each wait reruns on its own"
            )
        depends_on = caller_depends_on(opts)
        super().__init__("pe-lb:index:PoolHealthGate", name, None, opts)
        account = args.get("aws") or {}
        settings = pulumi.Output.all(
            args["load_balancer_arn"],
            account.get("aws_region"),
            account.get("aws_profile"),
            account.get("aws_role_arn"),
        )

        def wait(resource_name: str, instances: pulumi.Input[Any], triggers: list[Any]) -> None:
            create = pulumi.Output.all(settings, instances).apply(
                lambda values: wait_healthy_command(
                    values[0][0], timeout, *values[0][1:], instances=values[1]
                )
            )
            command.local.Command(
                resource_name,
                create=create,
                triggers=triggers,
                opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
            )

        drained = set(args.get("drained", []))
        if isinstance(instance_ids, list | tuple):
            for index, instance_id in enumerate(instance_ids):
                if index in drained:
                    continue
                one = pulumi.Output.from_input(instance_id).apply(lambda value: [value])
                wait(f"{name}-wait-healthy-{index}", one, [args["load_balancer_arn"], instance_id])
        elif instance_ids is not None:
            wait(f"{name}-wait-healthy", instance_ids, [args["load_balancer_arn"], instance_ids])
        else:
            wait(f"{name}-wait-healthy", [], [args["load_balancer_arn"], args.get("rerun_on", [])])
        self.register_outputs({})


POOLCTL_MISSING = (
    'command -v poolctl >/dev/null || { echo "pe-lb: poolctl is not on PATH where pulumi up runs: '
    'pip install pe-lb there (make up puts .venv/bin first)" >&2; exit 127; }'
)


def wait_healthy_command(
    load_balancer_arn: str,
    timeout_seconds: int,
    region: str | None = None,
    profile: str | None = None,
    role_arn: str | None = None,
    *,
    instances: Sequence[str] = (),
) -> str:
    """The command line: poolctl from PATH, the provider's account, the instances waited for."""
    argv = [
        "poolctl",
        "wait-healthy",
        "--load-balancer",
        load_balancer_arn,
        "--timeout",
        str(timeout_seconds),
    ]
    for instance in instances:
        argv += ["--instance", instance]
    for flag, value in (("--region", region), ("--profile", profile), ("--role-arn", role_arn)):
        if value:
            argv += [flag, value]
    return f"{POOLCTL_MISSING}; {shlex.join(argv)}"
