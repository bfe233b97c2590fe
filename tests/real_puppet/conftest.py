"""The real-Puppet tier's fixtures: one real primary for the whole session.

Collected only under `make test-puppet` (which sets PE_LB_REAL_PUPPET=1): `make test` and
`make test-pythons` leave this folder alone. PE_LB_KEEP_TIER=1 keeps the tier's directory
(configuration, logs) after the session.
"""

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from tests.aws_identity import FakeAws
from tests.real_puppet.primary import RealPrimary, running_primary

ENABLED = os.environ.get("PE_LB_REAL_PUPPET") == "1"
collect_ignore_glob = [] if ENABLED else ["test_*.py"]

_timings: dict[str, float] = {}
_kept: list[Path] = []


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def real_primary() -> Iterator[RealPrimary]:
    if os.geteuid() != 0:
        pytest.fail(
            "the real-Puppet tier runs as root (PostgreSQL as postgres, as the script runs on a primary)"
        )
    root = Path(tempfile.mkdtemp(prefix="pe-lb-real-puppet-"))
    root.chmod(0o755)  # the postgres user reaches its cluster below it
    # A SIGTERM (CI cancelling the job) stops the services too, as Ctrl-C does.
    previous = signal.signal(signal.SIGTERM, _interrupted)
    try:
        with running_primary(root) as primary:
            _timings.update(primary.timings)
            yield primary
    finally:
        signal.signal(signal.SIGTERM, previous)
        if os.environ.get("PE_LB_KEEP_TIER") == "1":
            _kept.append(root)
        else:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def fake_aws(tmp_path_factory: pytest.TempPathFactory) -> FakeAws:
    """The test's AWS identity signer; the script trusts its certificate (--identity-certificates)."""
    return FakeAws(tmp_path_factory.mktemp("aws"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _timings:
        terminalreporter.write_line(
            "real primary: "
            + ", ".join(f"{name} ready after {seconds:.0f} s" for name, seconds in _timings.items())
        )
    for root in _kept:
        terminalreporter.write_line(f"real primary kept in {root}")
