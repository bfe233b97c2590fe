"""Joining many compile masters at once against the stub PE primary (tests/stub_primary.py).

    python -m benchmarks.join            # 1, 5 and 20 compile masters, Puppet runs of 2 s
    python -m benchmarks.join 50 --run-seconds 5

Each join runs the real primary script (components/scripts/pe_primary/), concurrently, as a first
`pulumi up` runs the join commands. Prints how many Puppet runs the primary made and
the wall time: the primary's runs are coalesced, so they should stay at one or two
however many compile masters join. A measurement, not a test: nothing fails on time.
"""

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.stub_primary import join_arguments, stub_primary

SIZES = (1, 5, 20)


def join_all(count: int, run_seconds: float) -> tuple[int, float]:
    with tempfile.TemporaryDirectory() as root, stub_primary(Path(root)) as primary:
        primary.set_puppet(run_seconds=run_seconds)
        names = [f"i-0{index:016x}.eu-west-1.compute.internal" for index in range(count)]
        for name in names:
            primary.request_certificate(name)
        started = time.perf_counter()
        with ThreadPoolExecutor(count) as pool:
            results = list(
                pool.map(lambda name: primary.run("join", name, *join_arguments(name), timeout=600), names)
            )
        elapsed = time.perf_counter() - started
        failed = [result.stderr for result in results if result.returncode != 0]
        if failed:
            raise SystemExit(f"{len(failed)} joins failed: {failed[0]}")
        return len(primary.puppet_runs()), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("sizes", nargs="*", type=int, default=list(SIZES))
    parser.add_argument("--run-seconds", type=float, default=2.0, help="simulated primary Puppet run")
    args = parser.parse_args()
    print(f"primary Puppet run: {args.run_seconds:.1f} s (simulated)")
    print(f"{'compile masters':>15} {'primary runs':>12} {'seconds':>8}")
    for count in args.sizes:
        runs, elapsed = join_all(count, args.run_seconds)
        print(f"{count:>15} {runs:>12} {elapsed:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
