"""The README's two commands: `make up` must stop at once, clearly, without the Pulumi CLI."""

import os
import shutil
import subprocess
from pathlib import Path

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
