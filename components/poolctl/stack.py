"""The Pulumi stack behind the pool: its outputs, and drainedCompileMasters in its config."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

from .pool import PoolError

DRAINED_KEY = "drainedCompileMasters"
POOL_INDEX = re.compile(r"-(\d+)$")
"""The pool index at the end of a compile master's Name tag (pe-lb-2 is index 2)."""


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


def outputs(stack: str) -> dict[str, Any]:
    run = pulumi("stack", "output", "--json", "--stack", stack)
    if run.returncode != 0:
        raise PoolError(f"`pulumi stack output --stack {stack}` failed: {run.stderr.strip()}")
    return read_outputs(run.stdout, f"stack {stack}")


def read_outputs(text: str | None, source: str) -> dict[str, Any]:
    if text is None:
        raise PoolError(
            f"--outputs {source}: no such file (save one with `pulumi stack output --json > FILE`)"
        )
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as error:
        raise PoolError(f"{source} is not the JSON of `pulumi stack output --json`: {error}") from None
    if not isinstance(parsed, dict):
        raise PoolError(f"{source} is not the JSON of `pulumi stack output --json`")
    return parsed


def drained(stack: str) -> list[int]:
    """The stack's drainedCompileMasters (empty when unset)."""
    run = pulumi("config", "get", DRAINED_KEY, "--json", "--stack", stack)
    if run.returncode != 0:
        if "not found" in run.stderr:
            return []
        raise PoolError(f"`pulumi config get {DRAINED_KEY} --stack {stack}` failed: {run.stderr.strip()}")
    answer = json.loads(run.stdout)
    value = answer.get("objectValue")
    if value is None:
        value = json.loads(answer.get("value") or "[]")
    return sorted(int(index) for index in value)


def set_drained(stack: str, indexes: list[int]) -> None:
    """Write drainedCompileMasters as a list of numbers (`--path` stores them as numbers)."""
    steps: list[tuple[str, ...]] = [("config", "rm", DRAINED_KEY, "--stack", stack)] if drained(stack) else []
    steps += [
        ("config", "set", "--path", f"{DRAINED_KEY}[{position}]", str(index), "--stack", stack)
        for position, index in enumerate(sorted(set(indexes)))
    ]
    for step in steps:
        run = pulumi(*step)
        if run.returncode != 0:
            raise PoolError(f"`pulumi {' '.join(step)}` failed: {run.stderr.strip()}")
