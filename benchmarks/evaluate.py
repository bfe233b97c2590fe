"""How long the program takes to evaluate under mocks as the pool grows.

    make benchmark          # or: python -m benchmarks.evaluate 1 10 100 500

Prints, per pool size, the wall time of one evaluation of __main__.py and the
number of resources it declares. A measurement, not a test: nothing fails on time.
"""

import sys
import time
from typing import Any

from tests.harness import run_main

SIZES = (1, 10, 100, 500)


def stack_config(count: int) -> dict[str, Any]:
    return {
        "primaryHost": "puppet.example.com",
        "primaryHostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchmarkHostKey",
        "primaryCidrs": ["10.0.1.10/32"],
        "vpcId": "vpc-0123456789abcdef0",
        "amiId": "ami-0123456789abcdef0",
        "subnetIds": ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2", "subnet-0ccccccccccccccc3"],
        "agentCidrs": ["10.0.0.0/8"],
        "compileMasterCount": count,
        "sshPrivateKey": "benchmark-key",
    }


def main(sizes: list[int]) -> None:
    print(f"{'compile masters':>15} {'seconds':>8} {'resources':>9}")
    for count in sizes:
        started = time.perf_counter()
        graph = run_main(stack_config(count))
        elapsed = time.perf_counter() - started
        print(f"{count:>15} {elapsed:>8.2f} {len(graph.resources):>9}", flush=True)


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or list(SIZES))
