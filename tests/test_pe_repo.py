"""PeRepoPoolAddress: the pulumi-command resource that points pe_repo at the pool."""

import shlex
import subprocess
import sys
from pathlib import Path

import pulumi

from components import PeAgentPoolAddress, PeRepoPoolAddress, pe
from components.primary import PrimaryAccess, PrimaryAccessArgs
from components.scripts import primary_script
from tests.conftest import HOST_KEY, SSH_KEY
from tests.harness import Graph, is_secret, run
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


def test_sets_the_pool_address_in_pe_order_and_reverts_only_it_on_delete() -> None:
    command = declare().one(COMMAND).inputs
    assert script_arguments(command["create"]) == [
        "sudo", "-n", "$py", "-", "pe-repo-set", POOL,
        "--compile-masters", ",".join(CERTNAMES),
        "--run-timeout", str(pe.COMPILE_MASTER_RUN_WAIT_SECONDS),
    ]  # fmt: skip
    assert script_arguments(command["delete"])[4:] == ["pe-repo-unset", POOL]
    assert command["stdin"] == primary_script()


def test_only_a_new_pool_address_replaces_the_command_deleting_the_old_one_first() -> None:
    command = declare().one(COMMAND)
    assert command.inputs["triggers"] == [POOL]
    # The old command's unset runs before the new set (tests/test_engine_order_on_the_primary.py).
    assert command.delete_before_replace is True


def test_new_compile_masters_update_the_command_instead_of_replacing_it() -> None:
    """A replacement's delete (unset) would run after the new create: so only the text changes."""
    before = declare().one(COMMAND).inputs
    after = (
        declare(certnames=[*CERTNAMES, "i-0ccccccccccccccc3.eu-west-1.compute.internal"]).one(COMMAND).inputs
    )
    assert before["triggers"] == after["triggers"]
    assert before["delete"] == after["delete"]
    assert before["create"] != after["create"]


def test_pe_agent_points_agents_and_pxp_agents_at_the_pool() -> None:
    def program() -> None:
        PeAgentPoolAddress("pool", {"primary": ACCESS, "pool_address": pulumi.Output.from_input(POOL)})

    graph = run(program)
    assert graph.one("pe-lb:index:PeAgentPoolAddress")
    command = graph.one(COMMAND)
    assert script_arguments(command.inputs["create"])[4:] == ["agent-set", POOL]
    assert script_arguments(command.inputs["delete"])[4:] == ["agent-unset", POOL]
    assert command.inputs["triggers"] == [POOL]
    assert command.inputs["connection"]["hostKey"] == HOST_KEY
    assert {"stdout", "stderr"} <= set(command.additional_secret_outputs)


def test_connects_to_the_primary_by_its_host_key_with_a_secret_key() -> None:
    graph = declare()
    command = graph.one(COMMAND)
    connection = command.raw_inputs["connection"]
    assert is_secret(connection) or is_secret(connection["privateKey"])
    assert command.inputs["connection"]["host"] == "puppet.example.com"
    assert command.inputs["connection"]["user"] == "ec2-user"
    assert command.inputs["connection"]["hostKey"] == HOST_KEY
    assert {"stdout", "stderr"} <= set(command.additional_secret_outputs)
    assert SSH_KEY not in graph.plaintext()


def test_root_needs_no_sudo() -> None:
    command = declare(ssh_user="root").one(COMMAND).inputs
    assert script_arguments(command["create"])[:3] == ["$py", "-", "pe-repo-set"]


def test_the_command_line_runs_the_script_from_stdin(tmp_path: Path) -> None:
    """What the remote shell runs, run here: sudo and the interpreter are the only stand-ins."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sudo").write_text('#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n')
    (bin_dir / "python3").symlink_to(sys.executable)
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    with stub_primary(tmp_path / "primary") as primary:
        access = PrimaryAccess.checked(ACCESS)
        line = access.script_command("pe-repo-set", POOL, *primary.argv("pe-repo-set")[1:])
        result = subprocess.run(
            ["sh", "-c", line],
            input=primary_script(),
            env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert primary.pool_address == POOL


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
