"""A changed PE CA or hiera.yaml is shown at preview, never applied on its own.

The program side under mocks (the invoke, the warning, nothing replaced), and
read_primary_files.sh run for real against stub ssh, ssh-agent and ssh-add that record what
they were given.
"""

import json
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.primary import INSTALLED_SCRIPT, PrimaryAccess
from tests import harness
from tests.conftest import HOST_KEY, SSH_KEY
from tests.engine import plan
from tests.harness import MOCK_HIERA, PRIMARY_FILES, run_main

NEW_CA = "-----BEGIN CERTIFICATE-----\nMIIBnewPEcaBundle\n-----END CERTIFICATE-----\n"
ACCESS = PrimaryAccess(host="puppet.example.com", host_key=HOST_KEY, user="ec2-user", private_key=SSH_KEY)


@pytest.fixture
def primary_now(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(harness, "READ_AGAIN_CALLS", [])
    yield


def answering(monkeypatch: pytest.MonkeyPatch, answer: str) -> None:
    monkeypatch.setattr(harness, "READ_AGAIN_ANSWER", answer)


def changed_files(**change: str) -> str:
    return "OK\n" + json.dumps({**json.loads(PRIMARY_FILES), **change})


def test_an_unchanged_primary_says_nothing(stack_config: dict[str, Any], primary_now: None) -> None:
    graph = run_main(stack_config)
    assert not [w for w in graph.warnings if "primary's" in w]
    (call,) = harness.READ_AGAIN_CALLS
    # The key only on standard input; the command holds no secret; nothing is logged.
    assert call["stdin"] == SSH_KEY
    assert SSH_KEY not in call["command"] and "PRIVATE KEY" not in call["command"]
    assert call["logging"] == "none"
    assert call["interpreter"] == ["/bin/sh", "-c"]
    assert f"PE_LB_REMOTE={shlex.quote(ACCESS.script_command('read'))}" in call["command"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"caCertificate": NEW_CA}, "PE CA bundle"),
        ({"hieraYaml": MOCK_HIERA + "  - name: nodes\n"}, "global hiera.yaml"),
        ({"caCertificate": NEW_CA, "hieraYaml": "---\nversion: 5\n"}, "PE CA bundle and global hiera.yaml"),
    ],
)
def test_a_changed_ca_or_hiera_is_shown_and_nothing_is_replaced(
    stack_config: dict[str, Any],
    primary_now: None,
    monkeypatch: pytest.MonkeyPatch,
    change: dict[str, str],
    named: str,
) -> None:
    before = run_main(stack_config)
    answering(monkeypatch, changed_files(**change))
    after = run_main(stack_config)
    (warning,) = [w for w in after.warnings if "changed since the compile masters were made" in w]
    assert f"the primary's {named} changed" in warning
    assert "pulumi up --replace 'urn:pulumi:test::pe-lb::" in warning and "primary-files'" in warning
    steps = plan(before, after)
    assert (
        steps.names("replace") == set() and steps.names("update") == set() and steps.names("create") == set()
    )
    # The CA itself never reaches a warning or a log.
    assert all(NEW_CA not in w for w in after.warnings)


def test_a_primary_that_cannot_be_read_says_so_and_changes_nothing(
    stack_config: dict[str, Any], primary_now: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = run_main(stack_config)
    answering(monkeypatch, "FAILED\nssh ec2-user@puppet.example.com: Connection timed out")
    after = run_main(stack_config)
    assert any("could not read the primary's CA and hiera.yaml again" in w and "Connection timed out" in w
               for w in after.warnings)  # fmt: skip
    assert plan(before, after).names("replace") == set()


# --- read_primary_files.sh with stub tools ----------------------------------------------------

STUB = Path(__file__).with_name("ssh_tool_stub.sh")


@pytest.fixture
def stub_tools(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("ssh", "ssh-agent", "ssh-add"):
        (bin_dir / tool).write_text(STUB.read_text())
        (bin_dir / tool).chmod(0o755)
    return tmp_path


def read_again(stub: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (stub / "tmp").mkdir(exist_ok=True)
    return subprocess.run(
        ["/bin/sh", "-c", ACCESS.read_again_command()],
        input=SSH_KEY, capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": f"{stub / 'bin'}:/usr/bin:/bin", "STUB_LOG": str(stub / "log"),
             "TMPDIR": str(stub / "tmp"), **env},
    )  # fmt: skip


def test_the_check_reads_over_ssh_with_the_host_key_pinned_and_the_key_only_in_its_agent(
    stub_tools: Path,
) -> None:
    run = read_again(stub_tools)
    assert run.returncode == 0, run.stderr
    assert run.stdout == 'OK\n{"caCertificate": "x", "hieraYaml": "y"}\n'
    log = (stub_tools / "log").read_text().splitlines()
    assert [line.split()[0] for line in log] == ["ssh-agent", "ssh-add", "ssh"]
    assert (stub_tools / "log.key").read_text() == SSH_KEY, "the key went to ssh-add on its standard input"
    assert all(SSH_KEY.strip().splitlines()[1] not in line for line in log), "never in an argument"
    ssh = log[2]
    for option in ("[BatchMode=yes]", "[StrictHostKeyChecking=yes]", "[GlobalKnownHostsFile=/dev/null]"):
        assert option in ssh
    assert (stub_tools / "log.known").read_text() == f"puppet.example.com {HOST_KEY}\n"
    assert f"[ec2-user] [puppet.example.com] [{ACCESS.script_command('read')}]" in ssh
    assert INSTALLED_SCRIPT in ssh
    assert "[-a]" in log[0], "a private agent on its own socket, not the user's"
    assert "[-t] [120] [-]" in log[1], "the key expires from the agent even if cleanup never runs"
    assert ssh.startswith("ssh [-F] [/dev/null]"), "none of the user's ssh config"
    assert "[ServerAliveInterval=10]" in ssh and "[ServerAliveCountMax=3]" in ssh
    agent = int((stub_tools / "log.agent").read_text())
    assert (
        not Path(f"/proc/{agent}").exists() or "zombie" in Path(f"/proc/{agent}/status").read_text().lower()
    ), "the agent is stopped"
    assert list((stub_tools / "tmp").iterdir()) == [], "its directory (known_hosts, agent socket) is gone"


def test_a_failed_ssh_is_reported_and_exits_0(stub_tools: Path) -> None:
    run = read_again(stub_tools, STUB_SSH_FAILS="1")
    assert run.returncode == 0
    status, reason = run.stdout.split("\n", 1)
    assert status == "FAILED"
    assert (
        "ssh ec2-user@puppet.example.com: ssh: connect to host puppet.example.com port 22: Connection refused"
        in reason
    )


def test_missing_ssh_tools_are_reported_and_exit_0(tmp_path: Path) -> None:
    run = subprocess.run(
        ["/bin/sh", "-c", ACCESS.read_again_command()],
        input=SSH_KEY, capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": str(tmp_path)},
    )  # fmt: skip
    assert run.returncode == 0
    assert run.stdout.startswith("FAILED\n") and "is not installed where pulumi runs" in run.stdout


def test_without_a_posix_shell_the_check_says_so_and_nothing_runs(
    stack_config: dict[str, Any], primary_now: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from components import compile_master_pool

    monkeypatch.setattr(compile_master_pool, "POSIX_SHELL", "/nonexistent/sh")
    graph = run_main(stack_config)
    assert harness.READ_AGAIN_CALLS == []
    assert any("no /bin/sh where pulumi runs" in w for w in graph.warnings)
