"""The Pulumi stack behind the pool: its outputs, and drainedCompileMasters in its config."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from . import checks
from .pool import PoolError

DRAINED_KEY = "drainedCompileMasters"
POOL_INDEX = re.compile(r"-(\d+)$")
"""The pool index at the end of a compile master's Name tag (pe-lb-2 is index 2)."""
POOL_OUTPUT = "compileMasterPoolTag"
"""The stack output holding the pool's identity: the pe.POOL_TAG value on its compile masters."""

OUTPUT_CHECKS: dict[str, Callable[[Any], Any]] = {
    "loadBalancerArn": checks.load_balancer_arn,
    "poolAddress": checks.host,
    "compileMasterIds": checks.instance_ids,
    "drainedCompileMasterIds": checks.instance_ids,
    POOL_OUTPUT: checks.pool,
}
"""The outputs poolctl reads, each checked before use."""


class DrainedWriteError(PoolError):
    """Writing drainedCompileMasters failed; ``now`` is what the config holds after poolctl tried
    to put the previous value back (None when even reading it failed)."""

    def __init__(self, message: str, now: list[int] | None) -> None:
        super().__init__(message)
        self.now = now


def pool_index(name: str) -> int | None:
    match = POOL_INDEX.search(name)
    return int(match.group(1)) if match else None


def pulumi(*argv: str) -> subprocess.CompletedProcess[str]:
    if not shutil.which("pulumi"):
        raise PoolError(
            "--stack needs the Pulumi CLI, which is not installed; pass --load-balancer NAME_OR_ARN, "
            "or --outputs FILE saved with `pulumi stack output --json`"
        )
    return subprocess.run(["pulumi", *argv], capture_output=True, text=True, check=False)


def failed(argv: tuple[str, ...], run: subprocess.CompletedProcess[str]) -> PoolError:
    # The CLI's message on one line: poolctl's errors are one line each.
    return PoolError(
        f"`pulumi {' '.join(argv)}` failed: {' '.join(run.stderr.split()) or f'exit {run.returncode}'}"
    )


def outputs(stack: str) -> dict[str, Any]:
    argv = ("stack", "output", "--json", "--stack", stack)
    run = pulumi(*argv)
    if run.returncode != 0:
        raise failed(argv, run)
    return read_outputs(run.stdout, f"--stack {stack} (`pulumi stack output --json`)")


def read_outputs_file(path: str) -> dict[str, Any]:
    source = f"--outputs {path}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PoolError(
            f"{source}: no such file (save one with `pulumi stack output --json > FILE`)"
        ) from None
    except OSError as error:
        raise PoolError(f"{source}: cannot read it ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise PoolError(
            f"{source}: not UTF-8 text, so not the JSON of `pulumi stack output --json`"
        ) from None
    return read_outputs(text, source)


def read_outputs(text: str, source: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as error:
        raise PoolError(f"{source} is not the JSON of `pulumi stack output --json`: {error}") from None
    if not isinstance(parsed, dict):
        raise PoolError(f"{source} is not the JSON of `pulumi stack output --json` (not an object)")
    for key, check in OUTPUT_CHECKS.items():
        if key in parsed:
            try:
                check(parsed[key])
            except ValueError as error:
                raise PoolError(f"{source}: output {key}: {error}") from None
    return parsed


def drained(stack: str) -> list[int]:
    """The stack's drainedCompileMasters, in its order (empty when unset)."""
    argv = ("config", "get", DRAINED_KEY, "--json", "--stack", stack)
    run = pulumi(*argv)
    if run.returncode != 0:
        if "not found" in run.stderr:
            return []
        raise failed(argv, run)
    try:
        answer = json.loads(run.stdout)
        value = answer.get("objectValue")
        if value is None:
            value = json.loads(answer.get("value") or "[]")
        if not isinstance(value, list) or not all(isinstance(i, int) and i >= 0 for i in value):
            raise ValueError
    except (ValueError, AttributeError):
        raise PoolError(
            f"`pulumi {' '.join(argv)}` gave {run.stdout.strip()!r}, not a list of pool indexes"
        ) from None
    return value


def set_drained(stack: str, wanted: list[int], current: list[int]) -> None:
    """Write drainedCompileMasters (``current`` is what it holds now). If a step fails, put
    ``current`` back and raise DrainedWriteError saying what the config holds."""
    try:
        _write(stack, wanted, current)
    except PoolError as error:
        with suppress(PoolError):
            now = drained(stack)
            if now != current:
                _write(stack, current, now)
        try:
            holds: list[int] | None = drained(stack)
        except PoolError:
            holds = None
        raise DrainedWriteError(str(error), holds) from None


def _write(stack: str, wanted: list[int], current: list[int]) -> None:
    """`--path` stores numbers as numbers. Appending is one command, so a drain cannot leave the
    list half-written; anything else rewrites the list."""
    keep = len(current) if wanted[: len(current)] == current else 0
    steps: list[tuple[str, ...]] = (
        [("config", "rm", DRAINED_KEY, "--stack", stack)] if current and not keep else []
    )
    steps += [
        ("config", "set", "--path", f"{DRAINED_KEY}[{position}]", str(wanted[position]), "--stack", stack)
        for position in range(keep, len(wanted))
    ]
    for step in steps:
        run = pulumi(*step)
        if run.returncode != 0:
            raise failed(step, run)
