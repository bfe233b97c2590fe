"""PeRepoPoolAddress: the pulumi-command resource that points pe_repo at the pool."""

import shlex

import pulumi

from components import PeRepoPoolAddress
from components.pe_repo import script_command
from components.scripts import read_script
from tests.harness import Graph, is_secret, run

COMMAND = "command:remote:Command"


def declare(ssh_user: str = "ec2-user") -> Graph:
    def program() -> None:
        PeRepoPoolAddress(
            "pool",
            {
                "primary_host": "puppet.example.com",
                "pool_address": pulumi.Output.from_input("pool.example.com"),
                "ssh_private_key": "KEY",
                "ssh_user": ssh_user,
                "rerun_on": [pulumi.Output.from_input(["i-1", "i-2"])],
            },
        )

    return run(program)


def test_sets_the_pool_address_through_the_classifier_and_reverts_on_delete() -> None:
    command = declare().one(COMMAND).inputs
    create = shlex.split(command["create"])
    assert create[:5] == ["sudo", "-n", "python3", "-", "set"]
    assert create[5] == "pool.example.com"
    assert "https://puppet.example.com:4433/classifier-api" in create
    assert create[create.index("--group") + 1] == "PE Master"
    assert create[create.index("--parameter") + 1] == "compile_master_pool_address"
    delete = shlex.split(command["delete"])
    assert delete[4:6] == ["unset", "pool.example.com"]
    assert command["stdin"] == read_script("pe_repo_pool_address.py")


def test_reruns_when_the_address_or_the_compile_masters_change() -> None:
    command = declare().one(COMMAND).inputs
    assert command["triggers"] == ["pool.example.com", ["i-1", "i-2"]]


def test_connects_to_the_primary_with_a_secret_key() -> None:
    command = declare().one(COMMAND)
    connection = command.raw_inputs["connection"]
    assert is_secret(connection) or is_secret(connection["privateKey"])
    assert command.inputs["connection"]["host"] == "puppet.example.com"
    assert command.inputs["connection"]["user"] == "ec2-user"


def test_root_needs_no_sudo() -> None:
    assert script_command("set", "pool", "puppet.example.com", "root").startswith("python3 - set pool ")
