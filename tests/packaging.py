"""pe-lb as users get it: pip-installed from a copy of this folder, and the schema other languages see."""

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from pulumi.provider.experimental.analyzer import Analyzer
from pulumi.provider.experimental.schema import generate_schema

from components import (
    CompileMasterPool,
    HaproxyTier,
    PeAgentPoolAddress,
    PeCompilerPool,
    PeRepoPoolAddress,
    PoolAlarms,
    PoolDashboard,
    PoolDnsNames,
    PoolHealthGate,
    PuppetLoadBalancer,
)
from tests.harness import PROJECT_DIR

COMPONENTS = [
    PeCompilerPool,
    PuppetLoadBalancer,
    CompileMasterPool,
    PoolHealthGate,
    PoolDnsNames,
    PeRepoPoolAddress,
    PeAgentPoolAddress,
    PoolAlarms,
    PoolDashboard,
    HaproxyTier,
]


def install_a_copy(root: Path, *, requirements_of: str | None = None) -> Path:
    """pe-lb installed into ``root``/site from a copy of this folder (what a fresh clone holds).

    ``requirements_of``: a program folder of the copy whose requirements.txt names pe-lb, run
    there as Pulumi's pip toolchain runs it; else `pip install <copy>`.
    """
    clone = root / "clone"
    shutil.copytree(
        PROJECT_DIR,
        clone,
        ignore=shutil.ignore_patterns(".venv*", ".git", "__pycache__", ".*_cache", "build", "*.egg-info"),
    )
    site = root / "site"
    what = ["-r", "requirements.txt"] if requirements_of else [str(clone)]
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(site), *what],
        cwd=clone / requirements_of if requirements_of else root,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    return site


def component_schema() -> dict[str, Any]:
    """The package schema Pulumi's analyzer infers from the components' typed Args and outputs."""
    result = Analyzer("pe-lb").analyze(COMPONENTS)
    spec: dict[str, Any] = generate_schema(
        "pe-lb", "0.5.0", None, result["component_definitions"], result["type_definitions"],
        list(result["dependencies"]),
    ).to_json()  # fmt: skip
    return spec
