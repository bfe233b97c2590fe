"""The README's two commands: `make up` must stop at once, clearly, without the Pulumi CLI."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.harness import PROJECT_DIR


def path_without_pulumi(tmp_path: Path) -> str:
    """A PATH with make and the shell tools, but no `pulumi` anywhere on it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("make", "bash", "sh", "cat", "env", "dirname"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def test_make_up_without_pulumi_cli_stops_with_install_instructions(tmp_path: Path) -> None:
    work = tmp_path / "clone"
    shutil.copytree(
        PROJECT_DIR, work, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", ".*_cache")
    )
    env = {**os.environ, "PATH": path_without_pulumi(tmp_path)}
    result = subprocess.run(["make", "up"], cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "the Pulumi CLI is not installed" in result.stderr
    assert "https://get.pulumi.com" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (work / ".venv").exists()  # stopped before doing anything


def fake_pulumi(tmp_path: Path, version: str) -> dict[str, str]:
    bin_dir = tmp_path / f"pulumi-{version}"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text(f"#!/bin/sh\necho v{version}\n")
    (bin_dir / "pulumi").chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_an_older_pulumi_cli_is_refused_with_the_version_needed(tmp_path: Path) -> None:
    script = str(PROJECT_DIR / "scripts" / "require-pulumi")
    for version in ("3.150.2", "3.206.9"):
        old = subprocess.run([script], env=fake_pulumi(tmp_path, version), capture_output=True, text=True)
        assert old.returncode == 1
        assert f"the Pulumi CLI is {version}; pe-lb needs 3.207.0 or newer" in old.stderr
    for version in ("3.207.0", "3.208.0", "3.215.1"):
        new = subprocess.run([script], env=fake_pulumi(tmp_path, version), capture_output=True, text=True)
        assert new.returncode == 0, new.stderr


def test_the_cli_floor_is_pulumi_yaml_s_required_pulumi_version() -> None:
    """replaceWith first shipped in Pulumi 3.207.0 (pulumi/pulumi CHANGELOG.md, #20693)."""
    project = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())
    assert project["requiredPulumiVersion"] == ">=3.207.0"


def project_with_floor(tmp_path: Path, line: str) -> str:
    """A copy of require-pulumi beside a Pulumi.yaml holding ``line``."""
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    shutil.copy2(PROJECT_DIR / "scripts" / "require-pulumi", project / "scripts")
    text = (PROJECT_DIR / "Pulumi.yaml").read_text()
    assert 'requiredPulumiVersion: ">=3.207.0"' in text
    (project / "Pulumi.yaml").write_text(text.replace('requiredPulumiVersion: ">=3.207.0"', line))
    return str(project / "scripts" / "require-pulumi")


@pytest.mark.parametrize(
    "line", ['requiredPulumiVersion: ">=3.230.1"', "requiredPulumiVersion: '>= 3.230.1'"]
)
def test_make_up_s_check_reads_the_floor_from_pulumi_yaml(tmp_path: Path, line: str) -> None:
    script = project_with_floor(tmp_path, line)
    old = subprocess.run([script], env=fake_pulumi(tmp_path, "3.230.0"), capture_output=True, text=True)
    assert old.returncode == 1
    assert "pe-lb needs 3.230.1 or newer" in old.stderr
    new = subprocess.run([script], env=fake_pulumi(tmp_path, "3.230.1"), capture_output=True, text=True)
    assert new.returncode == 0, new.stderr


@pytest.mark.parametrize("line", ['requiredPulumiVersion: "^3.207.0"', "# no floor"])
def test_a_floor_the_check_cannot_read_stops_make_up(tmp_path: Path, line: str) -> None:
    script = project_with_floor(tmp_path, line)
    result = subprocess.run([script], env=fake_pulumi(tmp_path, "3.300.0"), capture_output=True, text=True)
    assert result.returncode == 1
    assert 'has no requiredPulumiVersion of the form ">=X.Y.Z"' in result.stderr


def working_python(version: str) -> str | None:
    for candidate in (
        shutil.which(f"python{version}"),
        *sorted(Path("/root/.pyenv/versions").glob(f"{version}*/bin/python{version}")),
    ):
        if (
            candidate
            and subprocess.run([str(candidate), "--version"], capture_output=True, check=False).returncode
            == 0
        ):
            return str(candidate)
    return None


@pytest.mark.skipif(working_python("3.10") is None, reason="no Python 3.10 here to try")
def test_make_test_stops_at_once_on_a_python_older_than_the_floor(tmp_path: Path) -> None:
    old = working_python("3.10")
    venv = tmp_path / "venv"
    result = subprocess.run(
        ["make", "--no-print-directory", "venv", f"PYTHON={old}", f"VENV={venv}"],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"*** pe-lb needs Python 3.11 or newer; {old} is 3.10.13.  Stop." in lines[0]
    assert not venv.exists()
