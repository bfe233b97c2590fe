"""`poolctl size`: how many compile masters, and which instance type, for a number of agents."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .. import pe

MOST_PER_TYPE = 8
"""More compile masters of one type than this and `size` picks the next type up: fewer, bigger
compile masters (each loss costs more capacity, so the spare grows with them)."""

FIGURES = pe.CompilerSizing()

_INTERVAL = re.compile(r"([0-9]{1,5})([smh])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class Sizing:
    agents: int
    run_interval_seconds: int
    instance_type: str
    cpus: int
    memory_gib: int
    jrubies: int
    jruby_heap_mb: int
    for_the_load: int
    """Compile masters the load needs at PE's low figure (agents per compile master)."""
    at_best: int
    """Compile masters the load needs at PE's high figure."""
    spare: int
    count: int
    """for_the_load + spare: what to set compileMasterCount to."""


def run_interval_seconds(value: str) -> int:
    """Puppet's runinterval as `30m`, `1h` or `1800s`: 1 minute to 24 hours."""
    match = _INTERVAL.fullmatch(value.strip())
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)] if match else 0
    if not 60 <= seconds <= 86400:
        raise ValueError(f"{value!r} must be a run interval such as 30m, 1h or 1800s, from 1m to 24h")
    return seconds


def agent_count(value: str) -> int:
    if not re.fullmatch(r"[0-9]{1,9}", value.strip()) or not 1 <= int(value) <= 10_000_000:
        raise ValueError(f"{value!r} must be a whole number of agents, 1..10000000")
    return int(value)


def size(agents: int, interval_seconds: int, figures: pe.CompilerSizing = FIGURES) -> Sizing:
    """The smallest instance type that serves ``agents`` with at most MOST_PER_TYPE compile masters
    (the biggest otherwise), and how many: PE's low figure for the load, plus a spare."""
    # Each agent's run costs the same; a longer interval spreads the runs thinner.
    load = agents * figures.run_interval_minutes * 60 / interval_seconds
    chosen = pe.INSTANCE_SIZES[-1]
    for candidate in pe.INSTANCE_SIZES:
        if _needed(load, figures.agents_low, candidate[1], figures) <= MOST_PER_TYPE:
            chosen = candidate
            break
    name, cpus, memory = chosen
    for_the_load = _needed(load, figures.agents_low, cpus, figures)
    # One spare per MOST_PER_TYPE: a failed or replaced compile master leaves the load served.
    spare = max(1, math.ceil(for_the_load / MOST_PER_TYPE))
    jrubies = max(1, math.floor(figures.jrubies_per_cpu * cpus))
    return Sizing(
        agents=agents,
        run_interval_seconds=interval_seconds,
        instance_type=name,
        cpus=cpus,
        memory_gib=memory,
        jrubies=jrubies,
        jruby_heap_mb=jrubies * figures.jruby_heap_mb,
        for_the_load=for_the_load,
        at_best=_needed(load, figures.agents_high, cpus, figures),
        spare=spare,
        count=for_the_load + spare,
    )


def _needed(load: float, agents_per_reference: int, cpus: int, figures: pe.CompilerSizing) -> int:
    """Compile masters of ``cpus`` CPUs for ``load``: capacity grows with the JRubies, so with CPUs."""
    per_compile_master = agents_per_reference * cpus / figures.reference_cpus
    return max(1, math.ceil(load / per_compile_master))


def sizing_text(sizing: Sizing, figures: pe.CompilerSizing = FIGURES) -> str:
    interval = _interval_text(sizing.run_interval_seconds)
    too_many = sizing.count > pe.MAX_COMPILE_MASTERS
    lines = [
        f"For {sizing.agents:,} agents running Puppet every {interval}:",
        f"  {sizing.count} compile masters of type {sizing.instance_type} "
        f"({sizing.for_the_load} for the load, {sizing.spare} spare so one can fail or be replaced)",
        f"  each {sizing.cpus} vCPU, {sizing.memory_gib} GiB: {sizing.jrubies} JRuby instances, "
        f"JRuby heap about {sizing.jruby_heap_mb:,} MB",
        f"  by PE's range the load needs {sizing.at_best} to {sizing.for_the_load} of them; "
        "the low figure is used",
        "",
        "Figures used (PE's published guidance):",
        f"  {figures.agents_low:,} to {figures.agents_high:,} agents per {figures.reference_cpus}-CPU "
        f"compile master at a {figures.run_interval_minutes} minute run interval, scaled by CPUs and by "
        "your interval",
        f"  {figures.jrubies_per_cpu} JRuby instances per CPU, about {figures.jruby_heap_mb} MB of heap each",
        f"  the smallest of {', '.join(name for name, _, _ in pe.INSTANCE_SIZES)} that needs at most "
        f"{MOST_PER_TYPE} compile masters",
        "",
        *(
            [
                f"  that is more than one pool holds ({pe.MAX_COMPILE_MASTERS}): split the agents over "
                "several pools (stacks), each sized for its share"
            ]
            if too_many
            else [
                f"  pulumi config set compileMasterCount {sizing.count}",
                f"  pulumi config set instanceType {sizing.instance_type}",
            ]
        ),
    ]
    return "\n".join(lines) + "\n"


def _interval_text(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} minutes"
    return f"{seconds} s"
