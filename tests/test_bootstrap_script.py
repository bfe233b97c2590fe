"""components/scripts/compile_master_bootstrap.sh on its own, with a stub curl and installer."""

import os
import stat
import subprocess
from pathlib import Path

import pytest

from components.compile_master_pool import render_bootstrap
from components.scripts import SCRIPTS_DIR

SCRIPT = SCRIPTS_DIR / "compile_master_bootstrap.sh"

STUB_CURL = """#!/bin/bash
# Records the call; fails while $STUB_DIR/fails_left holds a number above 0; else writes the installer.
echo "$@" >> "$STUB_DIR/curl.calls"
left=$(cat "$STUB_DIR/fails_left" 2>/dev/null || echo 0)
if (( left > 0 )); then
  echo $(( left - 1 )) > "$STUB_DIR/fails_left"; echo "curl: (7) refused" >&2; exit 7
fi
while (( $# )); do if [[ $1 == --output ]]; then out=$2; fi; shift; done
cat > "$out" <<'INSTALLER'
printf '%s\\n' "$@" > "$STUB_DIR/installer.args"
env > "$STUB_DIR/installer.env"
INSTALLER
"""


@pytest.fixture
def stub_dir(tmp_path: Path) -> Path:
    curl = tmp_path / "bin" / "curl"
    curl.parent.mkdir()
    curl.write_text(STUB_CURL)
    curl.chmod(curl.stat().st_mode | stat.S_IEXEC)
    return tmp_path


def run_bootstrap(stub_dir: Path, script: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": f"{stub_dir / 'bin'}:{os.environ['PATH']}",
        "STUB_DIR": str(stub_dir),
        "PE_RETRY_SECONDS": "0",
        **env,
    }
    return subprocess.run(["bash", str(script)], env=environment, capture_output=True, text=True, check=False)


def rendered(stub_dir: Path, secret: str | None) -> Path:
    user_data = stub_dir / "user-data.sh"
    user_data.write_text(render_bootstrap("puppet.example.com", "pool.example.com", secret))
    return user_data


def test_installs_the_agent_as_a_compiler_with_the_pool_name(stub_dir: Path) -> None:
    result = run_bootstrap(stub_dir, rendered(stub_dir, "challenge"))
    assert result.returncode == 0, result.stderr
    calls = (stub_dir / "curl.calls").read_text()
    assert "--insecure" in calls and "https://puppet.example.com:8140/packages/current/install.bash" in calls
    assert (stub_dir / "installer.args").read_text().splitlines() == [
        "main:dns_alt_names=puppet,pool.example.com",
        "extension_requests:pp_auth_role=pe_compiler",
        "custom_attributes:challengePassword=challenge",
    ]
    assert "challenge" not in (stub_dir / "installer.env").read_text()


def test_without_autosign_secret_no_challenge_password(stub_dir: Path) -> None:
    result = run_bootstrap(stub_dir, rendered(stub_dir, None))
    assert result.returncode == 0, result.stderr
    assert "challengePassword" not in (stub_dir / "installer.args").read_text()


def test_waits_for_a_primary_that_is_still_booting(stub_dir: Path) -> None:
    (stub_dir / "fails_left").write_text("2")
    result = run_bootstrap(stub_dir, rendered(stub_dir, None))
    assert result.returncode == 0, result.stderr
    assert len((stub_dir / "curl.calls").read_text().splitlines()) == 3


def test_gives_up_with_a_clear_message(stub_dir: Path) -> None:
    (stub_dir / "fails_left").write_text("99")
    result = run_bootstrap(stub_dir, rendered(stub_dir, None), PE_INSTALL_ATTEMPTS="3")
    assert result.returncode == 1
    assert (
        "could not download https://puppet.example.com:8140/packages/current/install.bash after 3 attempts"
        in (result.stderr)
    )
    assert not (stub_dir / "installer.args").exists()


def test_refuses_to_run_without_parameters(stub_dir: Path) -> None:
    result = run_bootstrap(stub_dir, SCRIPT)
    assert result.returncode != 0
    assert "PE_INSTALL_URL is required" in result.stderr
