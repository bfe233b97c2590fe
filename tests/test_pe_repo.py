"""PeRepoPoolAddress: the pulumi-command resource that points pe_repo at the pool."""

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pulumi
import pytest

from components import PeAgentPoolAddress, PeRepoPoolAddress, pe, primary, scripts
from components.primary import INSTALLED_SCRIPT, SCRIPT_DIR, PrimaryAccess, PrimaryAccessArgs
from components.scripts import primary_script, primary_script_version
from tests.conftest import HOST_KEY, SSH_KEY
from tests.harness import Graph, Recorded, is_secret, run
from tests.stub_primary import POOL, stub_primary

COMMAND = "command:remote:Command"
ACCESS: PrimaryAccessArgs = {
    "primary_host": "puppet.example.com",
    "primary_host_key": HOST_KEY,
    "ssh_private_key": SSH_KEY,
}


CERTNAMES = [
    "i-0aaaaaaaaaaaaaaa1.eu-west-1.compute.internal",
    "i-0bbbbbbbbbbbbbbb2.eu-west-1.compute.internal",
]


def declare(ssh_user: str = "ec2-user", certnames: list[str] = CERTNAMES) -> Graph:
    def program() -> None:
        PeRepoPoolAddress(
            "pool",
            {
                "primary": {
                    **ACCESS,
                    "primary_host_key": f"puppet.example.com {HOST_KEY}",
                    "ssh_user": ssh_user,
                },
                "pool_address": pulumi.Output.from_input(POOL),
                "compile_master_certnames": pulumi.Output.from_input(certnames),
            },
        )

    return run(program)


def script_arguments(line: str) -> list[str]:
    return shlex.split(line.split("; ", 1)[1])


OWNER = "pe-lb/test/pool-pe-repo"
"""pulumi.get_project()/get_stack() under the harness's mocks, and the command's name."""


def commands(graph: Graph) -> dict[str, Recorded]:
    return {resource.name: resource for resource in graph.of_type(COMMAND)}


def test_sets_the_pool_address_in_pe_order_and_takes_back_only_its_own_hold_on_delete() -> None:
    command = commands(declare())["pool-pe-repo"].inputs
    run_after = [
        "--compile-masters",
        ",".join(CERTNAMES),
        "--run-timeout",
        str(pe.COMPILE_MASTER_RUN_WAIT_SECONDS),
    ]
    assert script_arguments(command["create"]) == [
        "sudo", "-n", "$py", INSTALLED_SCRIPT, "pe-repo-set", POOL, "--owner", OWNER, *run_after,
    ]  # fmt: skip
    assert script_arguments(command["update"])[4:] == [
        "pe-repo-set",
        POOL,
        "--owner",
        OWNER,
        "--update",
        *run_after,
    ]
    assert script_arguments(command["delete"])[4:] == ["pe-repo-unset", POOL, "--owner", OWNER]
    assert "stdin" not in command, "the script is installed once, not sent with every command"


def test_only_a_new_pool_address_replaces_the_command_create_before_delete() -> None:
    command = commands(declare())["pool-pe-repo"]
    assert command.inputs["triggers"] == [POOL]
    # The new create sets, then the old delete takes back its hold: no moment without an address.
    assert not command.delete_before_replace


def test_every_command_runs_after_the_script_is_installed_and_the_install_changes_only_with_the_script() -> (
    None
):
    graph = declare()
    installed = commands(graph)["pool-pe-repo-script"]
    assert installed.urn in commands(graph)["pool-pe-repo"].dependencies
    assert installed.inputs["stdin"] == primary_script()
    assert installed.inputs["triggers"] == [primary_script_version()]
    assert installed.inputs["create"].startswith("sudo -n sh -c ")


def test_a_new_pe_lb_version_changes_the_install_command_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = commands(declare())
    monkeypatch.setattr(scripts, "primary_script", lambda: primary_script() + "# a new version\n")
    monkeypatch.setattr(primary, "primary_script", scripts.primary_script)
    after = commands(declare())
    changed = {name for name in before if before[name].inputs != after[name].inputs}
    assert changed == {"pool-pe-repo-script"}


def test_new_compile_masters_update_the_command_instead_of_replacing_it() -> None:
    """A replacement's delete (unset) would run after the new create: so only the text changes."""
    before = commands(declare())["pool-pe-repo"].inputs
    after = commands(declare(certnames=[*CERTNAMES, "i-0ccccccccccccccc3.eu-west-1.compute.internal"]))[
        "pool-pe-repo"
    ].inputs
    assert before["triggers"] == after["triggers"]
    assert before["delete"] == after["delete"]
    assert before["create"] != after["create"]


def test_pe_agent_points_agents_and_pxp_agents_at_the_pool() -> None:
    def program() -> None:
        PeAgentPoolAddress("pool", {"primary": ACCESS, "pool_address": pulumi.Output.from_input(POOL)})

    graph = run(program)
    assert graph.one("pe-lb:index:PeAgentPoolAddress")
    command = commands(graph)["pool-pe-agent"]
    owner = ["--owner", "pe-lb/test/pool-pe-agent"]
    assert script_arguments(command.inputs["create"])[4:] == ["agent-set", POOL, *owner]
    assert script_arguments(command.inputs["update"])[4:] == ["agent-set", POOL, *owner, "--update"]
    assert script_arguments(command.inputs["delete"])[4:] == ["agent-unset", POOL, *owner]
    assert command.inputs["triggers"] == [POOL]
    assert not command.delete_before_replace
    assert command.inputs["connection"]["hostKey"] == HOST_KEY
    assert {"stdout", "stderr"} <= set(command.additional_secret_outputs)


def test_connects_to_the_primary_by_its_host_key_with_a_secret_key() -> None:
    graph = declare()
    for command in graph.of_type(COMMAND):
        connection = command.raw_inputs["connection"]
        assert is_secret(connection) or is_secret(connection["privateKey"])
        assert command.inputs["connection"]["host"] == "puppet.example.com"
        assert command.inputs["connection"]["user"] == "ec2-user"
        assert command.inputs["connection"]["hostKey"] == HOST_KEY
        assert {"stdout", "stderr"} <= set(command.additional_secret_outputs)
    assert SSH_KEY not in graph.plaintext()


def test_root_needs_no_sudo() -> None:
    graph = commands(declare(ssh_user="root"))
    assert script_arguments(graph["pool-pe-repo"].inputs["create"])[:3] == [
        "$py",
        INSTALLED_SCRIPT,
        "pe-repo-set",
    ]
    assert graph["pool-pe-repo-script"].inputs["create"].startswith("sh -c ")


def remote_shell(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """sudo and python3 as the primary has them; the script directory moved into ``tmp_path``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sudo").write_text('#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n')
    (bin_dir / "python3").symlink_to(sys.executable)
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin"}, tmp_path / "script"


def on_the_primary(line: str, environment: dict[str, str], script_dir: Path, stdin: str = "") -> str:
    result = subprocess.run(
        ["sh", "-c", line.replace(SCRIPT_DIR, str(script_dir))],
        input=stdin,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_install_line_installs_the_script_and_the_action_lines_run_it(tmp_path: Path) -> None:
    """What the remote shell runs, run here: sudo and the interpreter are the only stand-ins."""
    environment, script_dir = remote_shell(tmp_path)
    access = PrimaryAccess.checked(ACCESS)
    installed = on_the_primary(access.install_command(), environment, script_dir, primary_script())
    version = primary_script_version()
    assert installed.strip() == f"pe-lb primary script {version[:12]} installed"
    assert (script_dir / f"{version}.py").read_text() == primary_script()
    assert os.readlink(script_dir / "current.py") == f"{version}.py"
    assert sorted(path.name for path in script_dir.iterdir()) == sorted(["current.py", f"{version}.py"])
    with stub_primary(tmp_path / "primary") as stub:
        line = access.script_command("pe-repo-set", POOL, *stub.argv("pe-repo-set")[1:])
        on_the_primary(line, environment, script_dir)
        assert stub.pool_address == POOL


def test_a_script_that_arrives_damaged_is_not_installed(tmp_path: Path) -> None:
    environment, script_dir = remote_shell(tmp_path)
    line = PrimaryAccess.checked(ACCESS).install_command().replace(SCRIPT_DIR, str(script_dir))
    result = subprocess.run(
        ["sh", "-c", line], input=primary_script()[:-10], env=environment, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert not (script_dir / "current.py").exists()
    assert list(script_dir.iterdir()) == [], "nothing of the damaged copy is left"


def test_concurrent_installs_of_the_script_all_succeed(tmp_path: Path) -> None:
    """Each component installs the script; on a first `pulumi up` they run at once."""
    environment, script_dir = remote_shell(tmp_path)
    line = PrimaryAccess.checked(ACCESS).install_command().replace(SCRIPT_DIR, str(script_dir))
    installs = [
        subprocess.Popen(
            ["sh", "-c", line], stdin=subprocess.PIPE, env=environment, stderr=subprocess.PIPE, text=True
        )
        for _ in range(6)
    ]
    for install in installs:
        assert install.stdin is not None
        install.stdin.write(primary_script())
        install.stdin.close()
    assert [install.wait(timeout=60) for install in installs] == [0] * 6
    version = primary_script_version()
    assert sorted(path.name for path in script_dir.iterdir()) == sorted(["current.py", f"{version}.py"])
    assert (script_dir / "current.py").read_text() == primary_script()


def test_without_python3_the_command_line_uses_platform_python(tmp_path: Path) -> None:
    """RHEL 8 has only /usr/libexec/platform-python unless python3 is installed."""
    line = PrimaryAccess.checked({**ACCESS, "ssh_user": "root"}).script_command("read")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = subprocess.run(
        ["/bin/sh", "-c", f"command() {{ return 1; }}; {line}"],
        env={"PATH": str(empty)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert "/usr/libexec/platform-python" in result.stderr
