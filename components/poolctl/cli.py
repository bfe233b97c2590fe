"""Command line: status, drain, undrain, wait-healthy, probe; exit codes in EXIT_CODES (and --help)."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, NoReturn, TextIO, overload

import boto3
import botocore.exceptions

from .. import pe
from . import checks, stack, tier
from .pool import (
    FOREIGN,
    GONE,
    HEALTHY,
    STATS_URL,
    Discovery,
    Instance,
    Pool,
    PoolError,
    PoolStatus,
    TargetHealth,
    client_config,
    error_code,
)
from .probe import probe
from .sizing import agent_count, run_interval_seconds, size, sizing_text

EXIT_OK, EXIT_UNHEALTHY, EXIT_ERROR, EXIT_PARTIAL = 0, 1, 2, 3
CHANGING_COMMANDS = ("drain", "undrain")
EXIT_CODES = """exit codes:
  0  done: all healthy, or the drain/undrain made and confirmed
  1  not as it should be: a target unhealthy, out of rotation unasked or not the pool's own (status,
     wait-healthy, probe), or timed out waiting (drain/undrain: the change is made, AWS not done yet)
  2  usage or AWS error: nothing changed (a drain/undrain undoes its own earlier steps first; through
     HAProxy also when not every HAProxy showed the change in time)
  3  stopped part-way: something changed and could not be undone; the message lists exactly what"""

AWS_ERRORS = (PoolError, botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


class UsageError(Exception):
    """A flag or argument argparse refused: one line, exit 2."""


@dataclass(frozen=True)
class Context:
    args: argparse.Namespace
    out: TextIO
    progress: TextIO
    changes: dict[str, str] = field(default_factory=dict)
    """What this command has changed so far, by step, in words: reported if it stops part-way."""
    undone: list[str] = field(default_factory=list)
    """Changes it made and took back after a later step failed."""
    undo_failures: list[str] = field(default_factory=list)
    """Why taking a change back failed (undoing stops there, so ``changes`` stays exact)."""

    def pool(self) -> Pool:
        load_balancer, _ = pool_reference(self.args)
        if not load_balancer:
            raise PoolError("the stack outputs have no loadBalancerArn: pass --load-balancer NAME_OR_ARN")
        return self.open_pool(load_balancer)

    def open_pool(self, load_balancer: str) -> Pool:
        return Pool(
            session(self.args, load_balancer), load_balancer, self.args.endpoint_url, self.args.stats_url
        )

    @overload
    def pool_identity(self, needed_by: None = None) -> str | None: ...
    @overload
    def pool_identity(self, needed_by: str) -> str: ...
    @overload
    def pool_identity(self, needed_by: str | None) -> str | None: ...

    def pool_identity(self, needed_by: str | None = None) -> str | None:
        """The pool's identity (pe.POOL_TAG's value): --pool, else the stack's outputs. Without it
        poolctl cannot tell this pool's compile masters from another stack's, so ``needed_by`` refuses."""
        if self.args.pool:
            return str(self.args.pool)
        from_stack = bool(self.args.stack or self.args.outputs)
        if from_stack and pool_outputs(self.args).get(stack.POOL_OUTPUT):
            return str(pool_outputs(self.args)[stack.POOL_OUTPUT])
        if needed_by is None:
            return None
        flag = (
            f"--pool PROJECT/STACK/COMPONENT (the {pe.POOL_TAG} tag on its compile masters, "
            "e.g. pe-lb/dev/pe-lb)"
        )
        if from_stack:
            raise PoolError(
                f"{needed_by} needs the pool's identity and the stack's outputs have no {stack.POOL_OUTPUT} "
                f"(run `pulumi up` with this pe-lb), or pass {flag}"
            )
        raise PoolError(f"{needed_by} needs the pool's identity: pass {flag}, or --stack STACK")

    def say(self, message: str) -> None:
        print(message, file=self.progress, flush=True)

    @contextmanager
    def step(self, key: str, what: str, *, undo: bool = False) -> Iterator[None]:
        """One change to the pool: afterwards ``changes`` holds ``what`` (or, for an undo, no longer)."""
        try:
            yield
        except KeyboardInterrupt:
            self.changes[key] = f"perhaps {what} (interrupted while doing it)"
            raise
        if undo:
            self.undone.append(self.changes.pop(key))
        else:
            self.changes[key] = what


def run() -> None:
    """The `poolctl` command (and `python -m poolctl`)."""
    sys.exit(main())


def main(argv: list[str] | None = None, out: TextIO | None = None, progress: TextIO | None = None) -> int:
    progress = progress or sys.stderr
    try:
        args = parser().parse_args(argv)
    except UsageError as error:
        print(error, file=progress)
        return EXIT_ERROR
    context = Context(args, out or sys.stdout, progress)
    try:
        result: int = args.run(context)
        return result
    except AWS_ERRORS as error:
        problem = problem_of(error, args)
    except KeyboardInterrupt:
        problem = "interrupted"
    except BrokenPipeError:
        # The reader went away (`poolctl status | head`): stop quietly, as Unix tools do, and keep
        # the interpreter from complaining when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PARTIAL if context.changes else EXIT_ERROR
    if context.changes:
        failures = "".join(f"; undoing failed: {failure}" for failure in context.undo_failures)
        print(
            f"poolctl: {problem}; stopped part-way, changed: {'; '.join(context.changes.values())}{failures}",
            file=context.progress,
        )
        return EXIT_PARTIAL
    if args.command in CHANGING_COMMANDS:
        undone = f" ({', '.join(reversed(context.undone))}: undone)" if context.undone else ""
        problem += f"; nothing changed{undone}"
    print(f"poolctl: {problem}", file=context.progress)
    return EXIT_ERROR


# --- where the pool is ---------------------------------------------------------------------------


def pool_outputs(args: argparse.Namespace) -> dict[str, Any]:
    """The stack's outputs from --outputs or --stack (read once per command); none otherwise."""
    if getattr(args, "read_outputs", None) is None:
        if args.outputs:
            args.read_outputs = stack.read_outputs_file(args.outputs)
        else:
            args.read_outputs = stack.outputs(args.stack) if args.stack else {}
    outputs: dict[str, Any] = args.read_outputs
    return outputs


def pool_reference(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """(load balancer name or ARN, pool address) from the flags or the stack's outputs."""
    address: str | None = getattr(args, "address", None)  # only probe takes --address
    if args.load_balancer:
        return args.load_balancer, address
    if not (args.outputs or args.stack):
        if address:
            return None, address
        raise PoolError("say which pool: --load-balancer NAME_OR_ARN, --stack STACK or --outputs FILE")
    outputs = pool_outputs(args)
    return outputs.get("loadBalancerArn"), address or outputs.get("poolAddress")


def drained_by_the_stack(args: argparse.Namespace) -> set[str]:
    """Compile masters the stack keeps drained (its drainedCompileMasterIds output), if known."""
    if args.load_balancer or not (args.outputs or args.stack):
        return set()
    return set(pool_outputs(args).get("drainedCompileMasterIds") or [])


def session(args: argparse.Namespace, load_balancer: str) -> boto3.Session:
    region = args.region or checks.arn_region(load_balancer) or None
    base = boto3.Session(profile_name=args.profile, region_name=region)
    if not args.role_arn:
        return base
    # As the AWS provider's assumeRoles does: the role's temporary credentials for every call.
    sts = base.client("sts", endpoint_url=args.endpoint_url, config=client_config())
    credentials = sts.assume_role(RoleArn=args.role_arn, RoleSessionName="pe-lb-poolctl")["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=base.region_name,
    )


def problem_of(error: Exception, args: argparse.Namespace) -> str:
    """One line for the user, from poolctl's own errors and botocore's."""
    if isinstance(error, botocore.exceptions.BotoCoreError):
        return aws_problem(error, args)
    if isinstance(error, botocore.exceptions.ClientError):
        return client_problem(error)
    return str(error)


def aws_problem(error: botocore.exceptions.BotoCoreError, args: argparse.Namespace) -> str:
    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return "no AWS credentials found: run `aws configure`, set AWS_PROFILE, or pass --profile"
    if isinstance(error, botocore.exceptions.ProfileNotFound):
        return f"AWS profile {args.profile!r} not found in your AWS config: check --profile"
    if isinstance(error, botocore.exceptions.NoRegionError):
        return "no AWS region: pass --region, set AWS_REGION, or give the load balancer's ARN"
    if isinstance(
        error, botocore.exceptions.EndpointConnectionError | botocore.exceptions.ConnectTimeoutError
    ):
        where = args.endpoint_url or "the AWS endpoint"
        return f"cannot reach {where}: check --endpoint-url, --region and the network"
    return f"AWS call failed: {error}"


def client_problem(error: botocore.exceptions.ClientError) -> str:
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    attempts = error.response.get("ResponseMetadata", {}).get("MaxAttemptsReached")
    if code in ("Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"):
        return (
            "AWS kept throttling poolctl's requests, even after retrying with backoff "
            f"({'all attempts used' if attempts else code}); wait a minute, or raise AWS_MAX_ATTEMPTS"
        )
    if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
        return (
            f"AWS denied the request ({code}): {message}. poolctl needs elasticloadbalancing and ec2 access "
            "(and route53 when the pool balances through HAProxy)"
        )
    return f"AWS refused the request ({code}): {message}"


# --- commands ------------------------------------------------------------------------------------


def cmd_status(context: Context) -> int:
    pool, identity = context.pool(), context.pool_identity()
    status = pool.status(drained_by_the_stack(context.args), identity)
    if identity is not None:
        try:
            status.alarms = pool.firing_alarms(identity)
        except botocore.exceptions.ClientError as error:
            # The pool's state is still worth showing; say what is missing instead of failing.
            status.alarms_unreadable = error_code(error) or "error"
    if status.balancing == pe.LEAST_CONNECTIONS and identity is not None:
        view = tier.read_tier(pool, status, identity)
        if context.args.json:
            emit_json(context, tier_json(view))
        else:
            context.out.write(tier_text(view))
        return EXIT_UNHEALTHY if view.problems or status.alarms else EXIT_OK
    if context.args.json:
        emit_json(context, status_json(status))
    else:
        context.out.write(status_text(status))
    healthy = status.all_healthy and not status.unexpectedly_out and not status.foreign and not status.alarms
    return EXIT_OK if healthy else EXIT_UNHEALTHY


def cmd_drain(context: Context) -> int:
    instance_id = checked_instance_id(context.args.instance_id)
    pool = context.pool()
    identity = context.pool_identity("drain --stack" if context.args.stack else None)
    status = pool.status(pool=identity)
    if status.balancing == pe.LEAST_CONNECTIONS:
        return drain_in_tier(context, pool, status, instance_id)
    if instance_id not in status.in_rotation:
        raise PoolError(
            f"{instance_id} is not a target of {status.load_balancer_name}; "
            f"its compile masters in rotation are: {', '.join(status.in_rotation) or 'none'}"
        )
    if context.args.stack and status.rotation(instance_id) == FOREIGN:
        raise PoolError(
            f"{instance_id} is not a compile master of pool {identity} "
            f"({not_ours(status.instances[instance_id])}): drain it without --stack; "
            f"the stack's {stack.DRAINED_KEY} lists only its own"
        )
    others = [i for i in status.in_rotation if i != instance_id and status.is_healthy(i)]
    if not others and not context.args.force:
        raise PoolError(
            f"refusing to drain {instance_id}: no other compile master is healthy on every port, so agents "
            "would have nowhere to go. Fix the pool first (poolctl status), or pass --force"
        )
    name = status.instances[instance_id].name
    plan = drained_plan(context, name, drain=True)
    ports = ", ".join(map(str, status.ports))
    doing = f"deregistering {instance_id} from the {ports} target groups"
    change(context, pool, instance_id, plan, register=False, doing=doing)
    result = wait_for_instance(context, pool, instance_id, GONE, f"{instance_id} drained")
    if status.rotation(instance_id) == FOREIGN:
        context.say(
            f"{instance_id} is not a compile master of pool {identity}: its `pulumi up` never registers it"
        )
    elif plan is None:
        say_how_to_keep(context, name, drain=True)
    return result


def cmd_undrain(context: Context) -> int:
    instance_id = checked_instance_id(context.args.instance_id)
    pool = context.pool()
    identity = context.pool_identity("undrain")
    instance = pool.instances([instance_id]).get(instance_id)
    if instance is None:
        raise PoolError(f"no EC2 instance {instance_id} in this account and region")
    if instance.pool != identity:
        raise PoolError(
            f"{instance_id} is not a compile master of pool {identity} ({not_ours(instance)}): "
            "undrain registers only the pool's own compile masters"
        )
    vpc = pool.load_balancer().get("VpcId")
    if instance.vpc_id != vpc:
        raise PoolError(f"{instance_id} is in {instance.vpc_id}, not in the load balancer's {vpc}")
    if instance.state != "running":
        raise PoolError(f"{instance_id} is {instance.state or 'not running'}; start it before undrain")
    status = pool.status(pool=identity)
    if status.balancing == pe.LEAST_CONNECTIONS:
        return undrain_in_tier(context, pool, status, instance)
    plan = drained_plan(context, instance.name, drain=False)
    ports = ", ".join(map(str, pool.groups()))
    doing = f"registering {instance_id} ({instance.name or 'no Name tag'}) in the {ports} target groups"
    change(context, pool, instance_id, plan, register=True, doing=doing)
    result = wait_for_instance(context, pool, instance_id, HEALTHY, f"{instance_id} healthy on every port")
    if plan is None:
        say_how_to_keep(context, instance.name, drain=False)
    return result


# --- drain and undrain through the HAProxy tier (balancing least-connections) -----------------------


def drain_in_tier(context: Context, pool: Pool, status: PoolStatus, instance_id: str) -> int:
    """Out of the discovery record; done when every HAProxy has it out of rotation on 8140 (its 8140
    sessions finish there; HAProxy closes its 8142 ones, as the NLB's 8142 group does)."""
    view, record = read_tier_for(context, pool, status, "drain")
    instance = view.compile_masters.get(instance_id)
    if instance is None:
        raise PoolError(
            f"{instance_id} is not a compile master of pool {view.pool} (the targets are HAProxy instances; "
            f"drain takes a compile master out of their discovery record); its compile masters in "
            f"rotation are: {', '.join(view.in_rotation) or 'none'}"
        )
    address = instance.private_ip
    if not view.in_record(instance_id):
        raise PoolError(
            f"{instance_id} ({address or 'no private IP'}) is not in the discovery record {record.name} "
            f"({', '.join(record.values)}); its compile masters in rotation are: "
            f"{', '.join(view.in_rotation) or 'none'}"
        )
    if set(record.values) == {address}:
        raise PoolError(
            f"refusing to drain {instance_id}: it is the only compile master in the discovery record "
            f"{record.name}, which cannot be empty (agents would have nowhere to go; --force does not "
            "change that)"
        )
    confirmable(view, instance_id, "drain")
    others = [i for i in view.in_rotation if i != instance_id and view.is_up(i)]
    if not others and not context.args.force:
        raise PoolError(
            f"refusing to drain {instance_id}: no other compile master in the discovery record is UP on "
            "every HAProxy, so agents would have nowhere to go. Fix the pool first (poolctl status), or "
            "pass --force"
        )
    watch = tier.Watch(address, leaving=True, urls=view.urls)
    watch.remember(view.stats)
    plan = drained_plan(context, instance.name, drain=True)
    doing = f"taking {instance_id} ({address}) out of the discovery record {record.name}"
    undo = change_record(context, pool, view, record, instance_id, plan, add=False, doing=doing)
    goal = f"{instance_id} out of rotation on every HAProxy"
    done, sighting, _ = wait_for(context, watch.read, lambda seen: seen.done, goal, instance_id=instance_id)
    if not done:
        not_confirmed(context, undo, f"not every HAProxy took {instance_id} out of rotation", sighting)
    finishing = sum(sighting.finishing.values())
    if finishing:
        context.say(
            f"{finishing} 8140 sessions still open on {instance_id} finish there (agent runs in flight; "
            "its 8142 ones are closed, and PXP agents reconnect to another broker)"
        )
    if plan is None:
        say_how_to_keep(context, instance.name, drain=True)
    return EXIT_OK


def undrain_in_tier(context: Context, pool: Pool, status: PoolStatus, instance: Instance) -> int:
    """Back in the discovery record; done when every HAProxy has it UP on 8140 and 8142."""
    view, record = read_tier_for(context, pool, status, "undrain")
    instance_id, address = instance.instance_id, instance.private_ip
    if instance.role != pe.COMPILE_MASTER_ROLE:
        raise PoolError(
            f"{instance_id} is not a compile master ({pe.ROLE_TAG} is {instance.role or 'unset'}): "
            "undrain puts only the pool's own compile masters in the discovery record"
        )
    if view.in_record(instance_id):
        raise PoolError(f"{instance_id} ({address}) is in the discovery record {record.name} already")
    confirmable(view, instance_id, "undrain")
    watch = tier.Watch(address, leaving=False, urls=view.urls)
    plan = drained_plan(context, instance.name, drain=False)
    doing = f"putting {instance_id} ({address}) back in the discovery record {record.name}"
    undo = change_record(context, pool, view, record, instance_id, plan, add=True, doing=doing)
    goal = f"{instance_id} UP on every HAProxy"
    done, sighting, _ = wait_for(context, watch.read, lambda seen: seen.done, goal, instance_id=instance_id)
    if not done:
        not_confirmed(context, undo, f"not every HAProxy has {instance_id} UP", sighting)
    if plan is None:
        say_how_to_keep(context, instance.name, drain=False)
    return EXIT_OK


def read_tier_for(
    context: Context, pool: Pool, status: PoolStatus, command: str
) -> tuple[tier.TierStatus, Discovery]:
    """The tier, with its discovery record (a drain or undrain changes nothing without it). ``status``
    was read with the pool's identity when known, which this needs."""
    identity = context.pool_identity(f"{command} through the HAProxy tier (balancing least-connections)")
    view = tier.read_tier(pool, status, identity)
    if view.discovery is None:
        raise PoolError(view.discovery_problem)
    return view, view.discovery


def confirmable(view: tier.TierStatus, instance_id: str, command: str) -> None:
    """Every HAProxy must be readable now: a change no HAProxy can be seen to make is not made."""
    if not view.stats:
        raise PoolError(
            f"no running HAProxy instance of pool {view.pool} among the targets: nothing to {command} "
            f"{instance_id} from (poolctl status)"
        )
    if view.unread:
        reasons = "; ".join(f"{h}: {view.stats[h].error}" for h in view.unread)
        raise PoolError(
            f"cannot {command} {instance_id}: the stats of HAProxy {', '.join(view.unread)} cannot be read "
            f"({reasons}), so poolctl could not see the change made there. Run poolctl from an address "
            f"adminCidrs admits to port {pe.HAPROXY_STATS_PORT}, or fix that HAProxy first (poolctl status)"
        )


def change_record(
    context: Context,
    pool: Pool,
    view: tier.TierStatus,
    record: Discovery,
    instance_id: str,
    plan: DrainedPlan | None,
    *,
    add: bool,
    doing: str,
) -> list[Callable[[], None]]:
    """The stack's config first, then the discovery record; returns how to undo both, last first.
    A failing step undoes the steps before it, as change() does."""
    address = view.compile_masters[instance_id].private_ip
    undo: list[Callable[[], None]] = []
    try:
        if plan is not None:
            keep_in_stack(context, plan, undo)
        context.say(doing)
        what = (
            f"added {address} ({instance_id}) to the discovery record {record.name}"
            if add
            else f"removed {address} ({instance_id}) from the discovery record {record.name}"
        )
        values = [*record.values, address] if add else [v for v in record.values if v != address]
        with context.step("record", what):
            pool.set_discovery(record, values, f"poolctl {'undrain' if add else 'drain'} {instance_id}")
        context.say(f"  {record.name} = {', '.join(values)}")
        undo.append(partial(take_back_record, context, pool, view.pool, address, add, what))
    except AWS_ERRORS:
        undo_steps(context, undo)
        raise
    return undo


def take_back_record(
    context: Context, pool: Pool, identity: str, address: str, added: bool, what: str
) -> None:
    """Read the record again and take back only this address: a change made meanwhile stays."""
    with context.step("record", what, undo=True):
        record = pool.discovery(identity)
        if added and address in record.values:
            pool.set_discovery(record, [v for v in record.values if v != address], f"poolctl: undo {what}")
        elif not added and address not in record.values:
            pool.set_discovery(record, [*record.values, address], f"poolctl: undo {what}")


def not_confirmed(
    context: Context, undo: list[Callable[[], None]], what: str, sighting: tier.Sighting
) -> NoReturn:
    """The wait ended without every HAProxy showing the change: take it back, newest step first, so
    the pool is as it was (exit 2), or say exactly what is changed (exit 3)."""
    undo_steps(context, undo)
    raise PoolError(f"{what} within {context.args.timeout:g}s ({sighting.line()})")


def undo_steps(context: Context, undo: list[Callable[[], None]]) -> None:
    """Each undo, last first; the first that fails stops it, so ``context.changes`` stays exact."""
    for step in reversed(undo):
        try:
            step()
        except AWS_ERRORS as error:
            context.undo_failures.append(problem_of(error, context.args))
            break


def not_ours(instance: Instance) -> str:
    if instance.pool:
        return f"its {pe.POOL_TAG} tag is {instance.pool!r}"
    return f"it has no {pe.POOL_TAG} tag; `pulumi up` tags the stack's own"


@dataclass(frozen=True)
class DrainedPlan:
    """drainedCompileMasters before and after: the stack's desired state, else `pulumi up` undoes it."""

    stack: str
    name: str
    current: list[int]
    wanted: list[int]
    drain: bool

    def holds(self, value: list[int] | None) -> str:
        shown = "unknown (`pulumi config get` failed)" if value is None else str(value)
        return f"stack {self.stack}: {stack.DRAINED_KEY} = {shown} (was {self.current})"


def drained_plan(context: Context, name: str, *, drain: bool) -> DrainedPlan | None:
    """With --stack and a pool index in the Name tag: the config change to make (read now)."""
    index = stack.pool_index(name)
    if not context.args.stack or index is None:
        return None
    current = stack.drained(context.args.stack)
    if drain:
        wanted = current if index in current else [*current, index]
    else:
        wanted = [i for i in current if i != index]
    return DrainedPlan(context.args.stack, name, current, wanted, drain)


def keep_in_stack(context: Context, plan: DrainedPlan, undo: list[Callable[[], None]]) -> None:
    """Write the stack's drainedCompileMasters (the desired state), first of a drain's or undrain's
    steps, with its undo."""
    if plan.wanted != plan.current:
        write_drained(context, plan, plan.wanted, plan.current)
        undo.append(lambda: write_drained(context, plan, plan.current, plan.wanted))
    verb = "out of" if plan.drain else "back in"
    context.say(
        f"stack {plan.stack}: {stack.DRAINED_KEY} = {plan.wanted}, so `pulumi refresh` and "
        f"`pulumi up` keep {plan.name} {verb} rotation"
    )


def change(
    context: Context, pool: Pool, instance_id: str, plan: DrainedPlan | None, *, register: bool, doing: str
) -> None:
    """The stack's config first, then each target group (``doing`` says so when it starts). A
    failing step undoes the steps before it, last first, so the pool is as it was, or
    ``context.changes`` says exactly what is not."""
    undo: list[Callable[[], None]] = []
    try:
        if plan is not None:
            keep_in_stack(context, plan, undo)
        context.say(doing)
        forward, backward = (pool.register, pool.deregister) if register else (pool.deregister, pool.register)
        for port in pool.groups():
            what = (
                f"registered {instance_id} in the {port} target group"
                if register
                else f"deregistered {instance_id} from the {port} target group"
            )
            with context.step(str(port), what):
                forward(instance_id, port)
            undo.append(partial(take_back, context, backward, instance_id, port, what))
    except AWS_ERRORS:
        undo_steps(context, undo)
        raise


def take_back(
    context: Context, backward: Callable[[str, int], None], instance_id: str, port: int, what: str
) -> None:
    with context.step(str(port), what, undo=True):
        backward(instance_id, port)


def write_drained(context: Context, plan: DrainedPlan, value: list[int], now: list[int]) -> None:
    """Write the stack's drainedCompileMasters, keeping ``context.changes`` true to what it holds."""
    try:
        stack.set_drained(plan.stack, value, now)
    except stack.DrainedWriteError as error:
        record_config(context, plan, error.now)
        raise
    except KeyboardInterrupt:
        context.changes["config"] = f"perhaps {plan.holds(value)} (interrupted while writing it)"
        raise
    record_config(context, plan, value)


def record_config(context: Context, plan: DrainedPlan, holds: list[int] | None) -> None:
    if holds != plan.current:
        context.changes["config"] = plan.holds(holds)
    elif "config" in context.changes:
        context.undone.append(context.changes.pop("config"))


def say_how_to_keep(context: Context, name: str, *, drain: bool) -> None:
    """Without --stack: what to set, else `pulumi refresh` and `pulumi up` undo it."""
    index = stack.pool_index(name)
    verb = "out of" if drain else "back in"
    where = (
        f"pool index {index}" if index is not None else f"the pool index in its Name tag ({name or 'none'})"
    )
    action = "add" if drain else "remove"
    context.say(
        f"to keep it {verb} rotation across `pulumi refresh` and `pulumi up`, {action} {where} "
        f"{'to' if drain else 'from'} the stack's {stack.DRAINED_KEY} (poolctl does it with --stack)"
    )


def cmd_wait_healthy(context: Context) -> int:
    pool = context.pool()
    instances = context.args.instances
    if instances:
        ready, what = (
            (lambda status: all(status.is_healthy(i) for i in instances)),
            (f"{', '.join(instances)} healthy in every target group"),
        )
    else:
        # Through the HAProxy tier the targets are its HAProxy instances: they are what is waited for.
        targets = "HAProxy instance" if pool.status().balancing == pe.LEAST_CONNECTIONS else "compile master"
        ready, what = (lambda status: status.all_healthy), f"every {targets} healthy"
    done, _, _ = wait_for(context, pool.status, ready, what)
    return EXIT_OK if done else EXIT_UNHEALTHY


def cmd_size(context: Context) -> int:
    """Needs no AWS: PE's figures only."""
    sizing = size(context.args.agents, context.args.run_interval)
    if context.args.json:
        emit_json(context, {**asdict(sizing), "figures": asdict(pe.CompilerSizing())})
    else:
        context.out.write(sizing_text(sizing))
    return EXIT_OK


def cmd_probe(context: Context) -> int:
    load_balancer, address = pool_reference(context.args)
    if not address:
        if not load_balancer:
            raise PoolError("no pool address: pass --address, or --load-balancer/--stack/--outputs")
        address = context.open_pool(load_balancer).load_balancer()["DNSName"]
    result = probe(
        address, cacert=context.args.cacert, connect_to=context.args.connect_to, port=context.args.port
    )
    if context.args.json:
        emit_json(context, {**asdict(result), "ok": result.ok})
    else:
        chain = (
            "verified against " + context.args.cacert
            if result.chain_verified
            else "not verified (no --cacert)"
        )
        lines = [
            f"GET {result.url}" + (f" via {context.args.connect_to}" if context.args.connect_to else ""),
            f"  status:      {result.status if result.status is not None else 'no answer'}",
            f"  body:        {result.body or '-'}",
            f"  certificate: names {', '.join(result.certificate_names) or '-'}",
            f"  pool name:   {'valid' if result.name_valid else 'NOT valid'} for {address}",
            f"  chain:       {chain}",
            f"  installer:   {result.installer_url} "
            + (
                f"names {address}"
                if result.installer_names_pool
                else f"does NOT name {address}"
                if result.installer_status == 200
                else f"HTTP {result.installer_status}"
            ),
            *(f"  problem:     {problem}" for problem in result.problems),
        ]
        context.out.write("\n".join(lines) + "\n")
    return EXIT_OK if result.ok else EXIT_UNHEALTHY


def wait_for_instance(context: Context, pool: Pool, instance_id: str, state: str, goal: str) -> int:
    """Wait until the instance is in ``state`` in every pool port's target group."""
    done, _, _ = wait_for(
        context,
        lambda: pool.target_health(instance_id),
        lambda health: all(h.state == state for h in health.values()),
        goal,
        instance_id=instance_id,
    )
    return EXIT_OK if done else EXIT_UNHEALTHY


HEARTBEAT_SECONDS = 30
"""A progress line at least this often while waiting, so a caller (and a CI log) sees life."""


def wait_for(
    context: Context,
    read: Callable[[], Any],
    done: Callable[[Any], bool],
    goal: str,
    instance_id: str | None = None,
) -> tuple[bool, Any, float]:
    """Poll ``read`` until ``done``, printing progress when it changes and every 30 s; False on timeout."""
    started = time.monotonic()
    last, last_said = "", started
    while True:
        value = read()
        now = time.monotonic()
        elapsed = now - started
        line = progress_line(value)
        if line != last or now - last_said >= HEARTBEAT_SECONDS:
            context.say(f"  [{elapsed:5.0f}s] {line}")
            last, last_said = line, now
        finished = done(value)
        if finished:
            context.say(f"{goal} after {elapsed:.0f}s")
        elif elapsed >= context.args.timeout:
            context.say(f"timed out after {context.args.timeout:g}s waiting for {goal}: {line}")
        if finished or elapsed >= context.args.timeout:
            if context.args.json:
                emit_json(context, wait_json(goal, finished, elapsed, value, instance_id))
            return finished, value, elapsed
        # Wake by the next heartbeat at the latest.
        time.sleep(max(0.01, min(context.args.interval, last_said + HEARTBEAT_SECONDS - now)))


def wait_json(goal: str, done: bool, elapsed: float, value: Any, instance_id: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {"goal": goal, "done": done, "elapsedSeconds": round(elapsed, 1)}
    if instance_id:
        result["instanceId"] = instance_id
    if isinstance(value, PoolStatus):
        result["pool"] = status_json(value)
    elif isinstance(value, tier.Sighting):
        result["haproxies"] = value.as_json()
    else:
        result["health"] = {str(port): asdict(health) for port, health in value.items()}
    return result


def emit_json(context: Context, data: Any) -> None:
    """One key style (camelCase) for every command's --json."""
    json.dump(camel_keys(data), context.out, indent=2)
    context.out.write("\n")


def camel_keys(data: Any) -> Any:
    if isinstance(data, dict):
        return {_camel(str(key)): camel_keys(value) for key, value in data.items()}
    if isinstance(data, list):
        return [camel_keys(value) for value in data]
    return data


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def progress_line(value: Any) -> str:
    if isinstance(value, tier.Sighting):
        return value.line()
    if isinstance(value, PoolStatus):
        parts = []
        for port in value.ports:
            healthy = sum(value.health(i, port).state == HEALTHY for i in value.instances)
            parts.append(f"{port}: {healthy}/{len(value.instances)} healthy")
        sick = [f"{i} {value.health(i, p)} on {p}" for i in value.instances for p in value.ports
                if value.health(i, p).state != HEALTHY]  # fmt: skip
        return "; ".join(parts) + (f" (waiting for {', '.join(sick)})" if sick else "")
    health: dict[int, TargetHealth] = value
    return ", ".join(f"{port}: {state}" for port, state in health.items())


def checked_instance_id(instance_id: str) -> str:
    try:
        return checks.instance_id(instance_id)
    except ValueError as error:
        raise PoolError(f"INSTANCE_ID {error}") from None


# --- output --------------------------------------------------------------------------------------


def status_text(status: PoolStatus) -> str:
    lines = header_lines(status)
    ports = list(status.ports)
    # Each port's column names its own check: 8140 puppetserver's status, 8142 the broker's.
    header = ["INSTANCE", "NAME", "PRIVATE IP", "AZ", "ROTATION",
              *(f"{p} {check_label(status.ports[p])}" for p in ports)]  # fmt: skip
    rows = [
        [i.instance_id, i.name or "-", i.private_ip or "-", i.availability_zone or "-",
         status.rotation(i.instance_id), *(str(status.health(i.instance_id, port)) for port in ports)]
        for i in status.instances.values()
    ]  # fmt: skip
    lines += ["", *table(header, rows)]
    healthy = sum(status.is_healthy(i) for i in status.in_rotation)
    lines.append(
        f"\n{healthy} of {len(status.in_rotation)} compile masters in rotation healthy on every port"
    )
    if status.drained:
        lines.append(f"{len(status.drained)} drained on purpose (drainedCompileMasters)")
    if status.unexpectedly_out:
        lines.append(
            f"{len(status.unexpectedly_out)} out of rotation and not drained by the stack: "
            f"{', '.join(status.unexpectedly_out)} (poolctl undrain, or `pulumi up`)"
        )
    if status.foreign:
        lines.append(
            f"{len(status.foreign)} in the target groups but not compile masters of pool {status.pool} "
            f"(no {pe.POOL_TAG}={status.pool} tag): {', '.join(status.foreign)} "
            "(poolctl drain takes them out)"
        )
    lines += alarm_lines(status)
    if status.pool is None:
        lines.append(
            "only targets shown: without the pool's identity (--pool PROJECT/STACK/COMPONENT, or the "
            f"stack's {stack.POOL_OUTPUT} output) its compile masters out of rotation are not listed, "
            "nor targets told from its own, nor its alarms"
        )
        if status.balancing == pe.LEAST_CONNECTIONS:
            lines.append(
                "the targets are HAProxy instances (balancing least-connections): with the pool's "
                "identity, status shows the compile masters behind them and the discovery record"
            )
    return "\n".join(lines) + "\n"


def header_lines(status: PoolStatus) -> list[str]:
    """The load balancer, its listeners and their health checks."""
    lines = [f"Load balancer {status.load_balancer_name} ({status.scheme}) {status.dns_name}"]
    for port, group in status.ports.items():
        idle = f"{group.idle_timeout_seconds} s" if group.idle_timeout_seconds else "default"
        lines.append(
            f"  listener {port}: {group.protocol}, TCP idle timeout {idle} -> {group.target_group_name}"
        )
    for port, group in status.ports.items():
        timing = group.health_check.timing
        lines.append(
            f"  health check {port}: {check_label(group)} "
            f"every {timing.interval_seconds} s (timeout {timing.timeout_seconds} s), "
            f"out after {timing.unhealthy_threshold} failures = {timing.failure_detection_seconds} s, "
            f"back after {timing.healthy_threshold} = {timing.recovery_seconds} s"
        )
    return lines


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[c]) for row in [header, *rows]) for c in range(len(header))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in [header, *rows]]  # fmt: skip


def alarm_lines(status: PoolStatus) -> list[str]:
    lines = [f"ALARM since {alarm.since}: {alarm.name} ({alarm.reason})" for alarm in status.alarms]
    if status.alarms_unreadable:
        lines.append(
            f"alarms not read ({status.alarms_unreadable}): allow cloudwatch:DescribeAlarms to see them here"
        )
    return lines


def tier_text(view: tier.TierStatus) -> str:
    """The least-connections tier: the HAProxy instances (the NLB's targets), the discovery record,
    and each compile master as the HAProxy instances see it."""
    status = view.nlb
    lines = header_lines(status)
    ports = list(status.ports)
    header = ["INSTANCE", "NAME", "PRIVATE IP", "AZ", "ROTATION",
              *(f"{p} {check_label(status.ports[p])}" for p in ports), "STATS"]  # fmt: skip
    rows = [
        [i, status.instances[i].name or "-", status.instances[i].private_ip or "-",
         status.instances[i].availability_zone or "-", view.target_rotation(i),
         *(str(status.health(i, port)) for port in ports), stats_cell(view, i)]
        for i in view.targets
    ]  # fmt: skip
    lines += [
        "",
        "HAProxy instances (balancing least-connections: the targets of the target groups; finishing: "
        "sessions on compile masters out of rotation)",
    ]
    lines += table(header, rows)
    lines.append("")
    if view.discovery is not None:
        record = view.discovery
        ttl = f"TTL {record.ttl} s" if record.ttl is not None else "no TTL"
        lines.append(
            f"Discovery record {record.name} (zone {record.zone_id}, {ttl}): {', '.join(record.values)}"
        )
    else:
        lines.append(f"Discovery record not read: {view.discovery_problem}")
    columns = [(f"{port} {tier.BACKENDS[port]}", "SESSIONS", "QUEUED") for port in ports]
    header = ["INSTANCE", "NAME", "PRIVATE IP", "AZ", "ROTATION", *(c for port in columns for c in port)]
    rows = [
        [i, cm.name or "-", cm.private_ip or "-", cm.availability_zone or "-", view.rotation(i),
         *(cell for port in ports
           for cell in (view.state(i, port), str(view.sessions(i, port)), str(view.queued(i, port))))]
        for i, cm in view.compile_masters.items()
    ]  # fmt: skip
    read = len(view.stats) - len(view.unread)
    lines += ["", f"Compile masters as {read} HAProxy instances see them (sessions and queued: their sum)"]
    lines += table(header, rows)
    up = sum(view.is_up(i) for i in view.in_rotation)
    lines.append(
        f"\n{up} of {len(view.in_rotation)} compile masters in rotation UP on every HAProxy, "
        f"on {' and '.join(map(str, ports))}"
    )
    healthy = sum(status.is_healthy(i) for i in view.haproxies)
    lines.append(f"{healthy} of {len(view.haproxies)} HAProxy instances healthy on every port")
    if view.drained:
        lines.append(f"{len(view.drained)} drained on purpose (drainedCompileMasters)")
    if view.unexpectedly_out:
        lines.append(
            f"{len(view.unexpectedly_out)} out of rotation and not drained by the stack: "
            f"{', '.join(view.unexpectedly_out)} (poolctl undrain, or `pulumi up`)"
        )
    if view.stray_addresses:
        lines.append(
            f"the discovery record holds {', '.join(view.stray_addresses)}, no compile master's of pool "
            f"{view.pool} (`pulumi up` rewrites the record)"
        )
    if view.unread:
        lines.append(
            f"stats of {len(view.unread)} HAProxy instances not read: {', '.join(view.unread)} (poolctl "
            f"reads them on port {pe.HAPROXY_STATS_PORT} of their private addresses: from adminCidrs only)"
        )
    if view.foreign:
        lines.append(
            f"{len(view.foreign)} in the target groups but not HAProxy instances of pool {view.pool} "
            f"({pe.ROLE_TAG}={pe.HAPROXY_ROLE}, {pe.POOL_TAG}={view.pool}): {', '.join(view.foreign)} "
            "(`pulumi up` does not register them: deregister them with `aws elbv2 deregister-targets`)"
        )
    lines += alarm_lines(status)
    return "\n".join(lines) + "\n"


def stats_cell(view: tier.TierStatus, instance_id: str) -> str:
    stats = view.stats.get(instance_id)
    if stats is None:
        if instance_id in view.haproxies:
            return f"not read ({view.nlb.instances[instance_id].state or 'not running'})"
        return "-"
    if stats.error:
        return f"NOT READ: {stats.error}"
    finishing = view.finishing(instance_id)
    return "read" + "".join(f", {count} finishing on {port}" for port, count in finishing.items() if count)


def check_label(group: Any) -> str:
    """What a target group's health check asks, e.g. HTTPS :8140/status/v1/simple/broker-service."""
    check = group.health_check
    return f"{check.protocol} :{check.port}{check.path or ''}"


def status_json(status: PoolStatus) -> dict[str, Any]:
    return {
        "balancing": status.balancing,
        **load_balancer_json(status),
        "compileMasters": [
            {
                "instanceId": i.instance_id,
                "name": i.name,
                "rotation": status.rotation(i.instance_id),
                "privateIp": i.private_ip,
                "availabilityZone": i.availability_zone,
                "health": health_json(status, i.instance_id),
            }
            for i in status.instances.values()
        ],
        "pool": status.pool,
        "healthy": status.all_healthy,
        "outOfRotation": status.unexpectedly_out,
        "foreign": status.foreign,
        "alarms": [asdict(alarm) for alarm in status.alarms],
        "alarmsUnreadable": status.alarms_unreadable or None,
    }


def health_json(status: PoolStatus, instance_id: str) -> dict[str, Any]:
    return {
        str(port): {**asdict(status.health(instance_id, port)), "check": check_label(group)}
        for port, group in status.ports.items()
    }


def tier_json(view: tier.TierStatus) -> dict[str, Any]:
    status = view.nlb
    return {
        "balancing": pe.LEAST_CONNECTIONS,
        **load_balancer_json(status),
        "haproxies": [
            {
                "instanceId": i,
                "name": status.instances[i].name,
                "rotation": view.target_rotation(i),
                "privateIp": status.instances[i].private_ip,
                "availabilityZone": status.instances[i].availability_zone,
                "state": status.instances[i].state,
                "health": health_json(status, i),
                "statsUrl": view.stats[i].url if i in view.stats else None,
                "statsError": (view.stats[i].error or None) if i in view.stats else None,
                "finishingSessions": (
                    {str(port): count for port, count in view.finishing(i).items()}
                    if i in view.stats and not view.stats[i].error
                    else None
                ),
            }
            for i in view.targets
        ],
        "discovery": asdict(view.discovery) if view.discovery else None,
        "discoveryProblem": view.discovery_problem or None,
        "compileMasters": [
            {
                "instanceId": i,
                "name": cm.name,
                "rotation": view.rotation(i),
                "inRecord": view.in_record(i),
                "privateIp": cm.private_ip,
                "availabilityZone": cm.availability_zone,
                "up": view.is_up(i),
                "backends": {
                    str(port): {
                        "backend": backend,
                        "state": view.state(i, port),
                        "sessions": view.sessions(i, port),
                        "queued": view.queued(i, port),
                        "haproxies": {h: tier.slot_json(slot) for h, slot in view.seen(i, port).items()},
                    }
                    for port, backend in tier.BACKENDS.items()
                },
            }
            for i, cm in view.compile_masters.items()
        ],
        "pool": view.pool,
        "healthy": view.all_healthy,
        "outOfRotation": view.unexpectedly_out,
        "foreign": view.foreign,
        "strayAddresses": view.stray_addresses,
        "statsUnread": view.unread,
        "alarms": [asdict(alarm) for alarm in status.alarms],
        "alarmsUnreadable": status.alarms_unreadable or None,
    }


def load_balancer_json(status: PoolStatus) -> dict[str, Any]:
    return {
        "loadBalancer": {
            "name": status.load_balancer_name,
            "arn": status.load_balancer_arn,
            "dnsName": status.dns_name,
            "scheme": status.scheme,
        },
        "listeners": {
            str(port): {
                "protocol": group.protocol,
                "tcpIdleTimeoutSeconds": group.idle_timeout_seconds,
                "targetGroupArn": group.target_group_arn,
                "healthCheck": {
                    "protocol": group.health_check.protocol,
                    "port": group.health_check.port,
                    "path": group.health_check.path,
                    **asdict(group.health_check.timing),
                    "failureDetectionSeconds": group.health_check.timing.failure_detection_seconds,
                    "recoverySeconds": group.health_check.timing.recovery_seconds,
                },
            }
            for port, group in status.ports.items()
        },
    }


# --- arguments -----------------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (no usage block): poolctl's errors are one line each."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def flag(check: Callable[[str], Any]) -> Callable[[str], Any]:
    """A checks.* function as an argparse type: its message, after the flag's name."""

    def convert(value: str) -> Any:
        try:
            return check(value)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = check.__name__
    return convert


def parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    where = common.add_argument_group("which pool and account")
    where.add_argument(
        "--load-balancer", metavar="NAME_OR_ARN", type=flag(checks.load_balancer), help="the pool's NLB"
    )
    where.add_argument(
        "--stack",
        type=flag(checks.stack),
        help="read the NLB from `pulumi stack output --json --stack STACK`",
    )
    where.add_argument(
        "--outputs", metavar="FILE", type=flag(nonempty), help="JSON saved from `pulumi stack output --json`"
    )
    where.add_argument(
        "--pool",
        metavar="PROJECT/STACK/COMPONENT",
        type=flag(checks.pool),
        help=f"the pool's compile masters: instances tagged {pe.POOL_TAG}=this (default: the stack's "
        f"{stack.POOL_OUTPUT} output)",
    )
    where.add_argument(
        "--region", type=flag(checks.region), help="AWS region (default: from the ARN or your AWS config)"
    )
    where.add_argument("--profile", type=flag(checks.profile), help="AWS profile")
    where.add_argument(
        "--role-arn",
        type=flag(checks.role_arn),
        help="IAM role to assume for every call (as the AWS provider's assumeRoles)",
    )
    where.add_argument(
        "--endpoint-url",
        type=flag(checks.endpoint_url),
        help="AWS API endpoint, e.g. an emulator on http://127.0.0.1:5000",
    )
    where.add_argument("--json", action="store_true", help="machine-readable output")
    # Tests only, as --endpoint-url points poolctl at an AWS emulator: the HAProxy instances'
    # private addresses (moto's) are not on the test machine, so the tests serve each one's stats
    # from a local server, told apart by the {address} this puts in the URL. Hidden: in a VPC the
    # stats are always at STATS_URL.
    where.add_argument("--stats-url", type=flag(checks.stats_url), default=STATS_URL, help=argparse.SUPPRESS)

    waiting = Parser(add_help=False)
    waiting.add_argument(
        "--timeout", type=positive_seconds, default=900.0, help="give up after S seconds (900)"
    )
    waiting.add_argument("--interval", type=positive_seconds, default=5.0, help=argparse.SUPPRESS)

    top = Parser(
        prog="poolctl",
        description="See, drain and wait for the PE compile-master pool.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, parents: list[Parser], help: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            parents=parents,
            help=help,
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    status = command("status", [common], "health of every compile master on 8140/8142")
    status.set_defaults(run=cmd_status)
    drain = command("drain", [common, waiting], "take a compile master out, gently")
    drain.add_argument("instance_id", metavar="INSTANCE_ID")
    drain.add_argument("--force", action="store_true", help="drain even the last healthy compile master")
    drain.set_defaults(run=cmd_drain)
    undrain = command("undrain", [common, waiting], "put a compile master back")
    undrain.add_argument("instance_id", metavar="INSTANCE_ID")
    undrain.set_defaults(run=cmd_undrain)
    wait = command("wait-healthy", [common, waiting], "block until all targets are healthy")
    wait.add_argument(
        "--instance",
        dest="instances",
        metavar="INSTANCE_ID",
        action="append",
        type=flag(checks.instance_id),
        default=[],
        help="wait only for this compile master, healthy in every target group (repeatable): "
        "the health gate waits for what an update adds, so a sick one elsewhere never blocks it",
    )
    wait.set_defaults(run=cmd_wait_healthy)
    check = command("probe", [common], "GET the status endpoint through the pool")
    check.add_argument(
        "--cacert",
        metavar="PUPPET_CA",
        type=flag(checks.ca_file),
        help="PE CA certificate to verify the chain against",
    )
    check.add_argument(
        "--address",
        type=flag(checks.host),
        help="pool address to check (default: poolAddress, else the NLB's name)",
    )
    check.add_argument(
        "--connect-to",
        metavar="HOST",
        type=flag(checks.host),
        help="connect here instead, still checking the pool name",
    )
    check.add_argument(
        "--port", type=flag(checks.port), default=pe.PUPPETSERVER_PORT, help=f"port ({pe.PUPPETSERVER_PORT})"
    )
    check.set_defaults(run=cmd_probe)
    sizing = command("size", [], "how many compile masters, of which type, for N agents (PE's figures)")
    sizing.add_argument("--agents", required=True, type=flag(agent_count), help="how many agents")
    sizing.add_argument(
        "--run-interval",
        type=flag(run_interval_seconds),
        default=pe.CompilerSizing.run_interval_minutes * 60,
        help="Puppet's runinterval, e.g. 30m (default), 1h, 1800s",
    )
    sizing.add_argument("--json", action="store_true", help="machine-readable output")
    sizing.set_defaults(run=cmd_size)
    return top


def nonempty(value: str) -> str:
    if not value:
        raise ValueError("'' is empty")
    return value


def positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be a finite number of seconds above 0")
    return seconds
