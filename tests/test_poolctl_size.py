"""poolctl size: PE's figures turned into a compile-master count and an instance type."""

import io
import json

import pytest

from components.pe import MAX_COMPILE_MASTERS
from components.poolctl import cli
from components.poolctl.sizing import size


def poolctl(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, progress=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("agents", "interval", "instance_type", "for_the_load", "at_best", "count"),
    [
        (1000, "30m", "m6i.xlarge", 1, 1, 2),  # never fewer than two: one can fail
        (12000, "30m", "m6i.xlarge", 8, 4, 9),
        (12000, "1h", "m6i.xlarge", 4, 2, 5),  # runs half as often: half the load
        (13000, "30m", "m6i.2xlarge", 5, 3, 6),  # 9 of the default type: go a size up
        (40000, "1h", "m6i.2xlarge", 7, 4, 8),
        (200000, "30m", "m6i.4xlarge", 34, 17, 39),  # the biggest type, one spare per 8
    ],
)
def test_size_uses_pes_low_figure_and_adds_a_spare(
    agents: int, interval: str, instance_type: str, for_the_load: int, at_best: int, count: int
) -> None:
    code, out, err = poolctl("size", "--agents", str(agents), "--run-interval", interval, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert (data["instanceType"], data["forTheLoad"], data["atBest"], data["count"]) == (
        instance_type, for_the_load, at_best, count,
    )  # fmt: skip
    assert data["figures"] == {
        "agentsLow": 1500, "agentsHigh": 3000, "runIntervalMinutes": 30, "referenceCpus": 4,
        "jrubiesPerCpu": 0.75, "jrubyHeapMb": 512,
    }  # fmt: skip


def test_size_text_says_the_figures_it_used_and_the_config_to_set() -> None:
    code, out, _ = poolctl("size", "--agents", "12000")
    assert code == 0
    assert "9 compile masters of type m6i.xlarge (8 for the load, 1 spare" in out
    assert "3 JRuby instances, JRuby heap about 1,536 MB" in out
    assert "1,500 to 3,000 agents per 4-CPU compile master at a 30 minute run interval" in out
    assert "0.75 JRuby instances per CPU, about 512 MB of heap each" in out
    assert "pulumi config set compileMasterCount 9" in out
    assert "pulumi config set instanceType m6i.xlarge" in out


@pytest.mark.parametrize(
    ("agents", "instance_type", "jrubies", "heap_mb"),
    [(12000, "m6i.xlarge", 3, 1536), (24000, "m6i.2xlarge", 6, 3072), (48000, "m6i.4xlarge", 12, 6144)],
)
def test_jrubies_follow_the_cpus(agents: int, instance_type: str, jrubies: int, heap_mb: int) -> None:
    sizing = size(agents, 1800)
    assert (sizing.instance_type, sizing.jrubies, sizing.jruby_heap_mb) == (instance_type, jrubies, heap_mb)


def test_more_than_a_pool_holds_says_to_split_it() -> None:
    code, out, _ = poolctl("size", "--agents", "3000000")
    assert code == 0
    assert f"more than one pool holds ({MAX_COMPILE_MASTERS})" in out
    assert "pulumi config set compileMasterCount" not in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--agents", "0"], "--agents: '0' must be a whole number of agents, 1..10000000"),
        (["--agents", "many"], "--agents: 'many' must be a whole number of agents"),
        (
            ["--agents", "10", "--run-interval", "30"],
            "--run-interval: '30' must be a run interval such as 30m",
        ),
        (["--agents", "10", "--run-interval", "30s"], "from 1m to 24h"),
        (["--agents", "10", "--run-interval", "2d"], "'2d' must be a run interval"),
        ([], "the following arguments are required: --agents"),
    ],
)
def test_bad_size_arguments_are_one_line_naming_the_flag(argv: list[str], message: str) -> None:
    code, out, err = poolctl("size", *argv)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
