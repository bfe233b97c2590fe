"""pe-lb as a distribution: installed from a copy of this folder, used by another program."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import PROJECT_DIR
from tests.packaging import install_a_copy


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip install .` of a copy of this folder (what a fresh clone holds), into its own directory."""
    return install_a_copy(tmp_path_factory.mktemp("package"))


def test_the_distribution_holds_the_package_its_scripts_and_poolctl(installed: Path) -> None:
    package = installed / "pe_lb"
    assert (package / "py.typed").exists()
    assert (package / "scripts" / "pe_primary" / "join.py").exists()
    assert (package / "scripts" / "compile_master_bootstrap.sh").exists()
    assert (package / "poolctl" / "cli.py").exists()
    assert (installed / "bin" / "poolctl").exists()
    metadata = next(installed.glob("pe_lb-*.dist-info")) / "METADATA"
    text = metadata.read_text()
    assert "Name: pe-lb" in text and "Requires-Python: >=3.11" in text and "License-Expression: MIT" in text
    assert not (installed / "components").exists(), "the import name is pe_lb, never components"


def test_a_program_with_its_own_components_package_uses_pe_lb(installed: Path, tmp_path: Path) -> None:
    program = tmp_path / "my-program"
    shutil.copytree(PROJECT_DIR / "examples" / "python", program)
    run = subprocess.run(
        [sys.executable, str(PROJECT_DIR / "tests" / "run_program_under_mocks.py"),
         str(program), str(installed)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["components"] == str(program / "components" / "__init__.py")
    assert result["pe_lb"] == str(installed / "pe_lb" / "__init__.py")
    assert {
        "pe-lb:index:PeCompilerPool", "pe-lb:index:PuppetLoadBalancer", "pe-lb:index:CompileMasterPool",
        "pe-lb:index:PoolHealthGate", "pe-lb:index:PeRepoPoolAddress", "pe-lb:index:PeAgentPoolAddress",
        "pe-lb:index:PoolAlarms", "pe-lb:index:PoolDashboard",
    } <= set(result["types"])  # fmt: skip
    assert len(result["outputs"]["compileMasterCertnames"]) == 3
    assert not result["plaintext_has_key"]


def test_the_installed_poolctl_runs_from_anywhere(installed: Path, tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "pe_lb.poolctl", "--help"],
        cwd=tmp_path, env={"PYTHONPATH": str(installed), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "status" in run.stdout and "wait-healthy" in run.stdout
