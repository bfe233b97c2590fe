"""CompileMasterPool on its own, as a user's program would declare it."""

import json
import shlex
import subprocess
from typing import Any

import pulumi
import pytest

from components import CompileMasterPool, CompileMasterPoolArgs, pe
from components.compile_master_pool import BOOTSTRAP_SCRIPT, render_bootstrap
from components.primary import INSTALLED_SCRIPT
from components.scripts import read_script
from tests.conftest import HOST_KEY, SSH_KEY
from tests.harness import MOCK_AMI, MOCK_CA, MOCK_HIERA, PROJECT, STACK, Graph, Recorded, is_secret, run

INSTANCE = "aws:ec2/instance:Instance"
ATTACHMENT = "aws:lb/targetGroupAttachment:TargetGroupAttachment"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
COMMAND = "command:remote:Command"
SUBNETS = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2", "subnet-0ccccccccccccccc3"]


def base_args(**overrides: Any) -> CompileMasterPoolArgs:
    primary = {"primary_host": "puppet.example.com", "primary_host_key": HOST_KEY, "ssh_private_key": SSH_KEY}
    for key in ("primary_host", "primary_host_key", "ssh_user"):
        if key in overrides:
            primary[key] = overrides.pop(key)
    args: dict[str, Any] = {
        "primary": primary,
        "pool_address": "puppet-pool.example.com",
        "vpc_id": "vpc-0123456789abcdef0",
        "subnet_ids": SUBNETS,
        "load_balancer_security_group_id": "sg-nlb",
        "target_group_arns": {"8140": "arn:tg-8140", "8142": "arn:tg-8142"},
        "primary_cidrs": ["10.0.1.10/32"],
        "ami_id": MOCK_AMI,
    }
    args.update(overrides)
    return args  # type: ignore[return-value]


def declare(**overrides: Any) -> Graph:
    return run(lambda: CompileMasterPool("pool", base_args(**overrides)))


def join_of(graph: Graph, instance: Recorded) -> Recorded:
    return graph.one(COMMAND, f"{instance.name}-join")


def test_instances_spread_round_robin_over_subnets() -> None:
    graph = declare(count=5)
    subnets = [i.inputs["subnetId"] for i in sorted(graph.of_type(INSTANCE), key=lambda i: i.name)]
    assert subnets == [SUBNETS[0], SUBNETS[1], SUBNETS[2], SUBNETS[0], SUBNETS[1]]


def test_instances_are_hardened_and_named_by_their_id() -> None:
    graph = declare(count=2, key_name="ops")
    for instance in graph.of_type(INSTANCE):
        inputs = instance.inputs
        assert inputs["metadataOptions"]["httpTokens"] == "required"
        assert inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1
        assert inputs["rootBlockDevice"]["encrypted"] is True
        assert inputs["associatePublicIpAddress"] is False
        assert inputs["ami"] == MOCK_AMI
        assert inputs["instanceType"] == "m6i.xlarge"
        assert inputs["keyName"] == "ops"
        assert inputs["userDataReplaceOnChange"] is True
        assert inputs["privateDnsNameOptions"] == {
            "hostnameType": "resource-name",
            "enableResourceNameDnsARecord": True,
        }


def test_each_compile_master_is_tagged_with_its_stacks_pool() -> None:
    """poolctl selects by this tag: another pe-lb stack's compile masters in the VPC carry their own."""
    graph = declare(count=2)
    for instance in graph.of_type(INSTANCE):
        assert instance.inputs["tags"][pe.POOL_TAG] == f"{PROJECT}/{STACK}/pool"
        # Tags are updated in place: a stack made before the tag gets it without a replacement.
        assert "tags" not in instance.replace_on_changes


def test_given_ami_is_used_without_lookup() -> None:
    graph = declare(ami_id="ami-0123456789abcdef0")
    assert {i.inputs["ami"] for i in graph.of_type(INSTANCE)} == {"ami-0123456789abcdef0"}


def test_each_instance_joins_both_target_groups_on_the_right_port() -> None:
    graph = declare(count=3)
    for instance in graph.of_type(INSTANCE):
        attachments = sorted(
            (a.inputs["port"], a.inputs["targetGroupArn"])
            for a in graph.of_type(ATTACHMENT)
            if instance.urn in a.dependencies
        )
        assert attachments == [(8140, "arn:tg-8140"), (8142, "arn:tg-8142")]


def test_each_compile_master_is_joined_by_the_primary_and_leaves_through_it() -> None:
    graph = declare(count=2)
    for instance in graph.of_type(INSTANCE):
        certname = instance.outputs["privateDns"]
        arn = instance.outputs["arn"]
        join = join_of(graph, instance)
        create = join.inputs["create"]
        assert create.startswith("py=$(command -v python3 || echo /usr/libexec/platform-python); ")
        assert shlex.split(create.split("; ", 1)[1]) == [
            "sudo", "-n", "$py", INSTALLED_SCRIPT, "join", certname,
            "--instance-arn", arn, "--pool-address", "puppet-pool.example.com",
        ]  # fmt: skip
        assert shlex.split(join.inputs["delete"].split("; ", 1)[1])[4:] == [
            "leave",
            certname,
            "--drain-seconds",
            str(pe.PUPPETSERVER_DEREGISTRATION_DELAY_SECONDS),
        ]
        assert "stdin" not in join.inputs, "the script is installed once, not sent with every command"
        assert graph.depends_on(join, graph.one(COMMAND, "pool-primary-script"))
        # A new instance is a new certname: a new command (join new, then the old one leaves).
        assert join.inputs["triggers"] == [certname]
        assert instance.urn in join.dependencies


def test_compile_masters_enter_rotation_only_once_joined() -> None:
    graph = declare(count=3)
    for instance in graph.of_type(INSTANCE):
        join = join_of(graph, instance)
        attachments = [a for a in graph.of_type(ATTACHMENT) if instance.urn in a.dependencies]
        assert len(attachments) == 2
        # Pulumi deletes dependents first: out of rotation before the leave (purge) runs.
        assert all(join.urn in attachment.dependencies for attachment in attachments)


def test_every_command_on_the_primary_checks_its_host_key_and_keeps_output_secret() -> None:
    graph = declare(count=2)
    commands = graph.of_type(COMMAND)
    assert sorted(command.name for command in commands) == [
        "pool-0-join", "pool-1-join", "pool-primary-files", "pool-primary-script",
    ]  # fmt: skip
    for command in commands:
        connection = command.inputs["connection"]
        assert connection["host"] == "puppet.example.com"
        assert connection["hostKey"] == HOST_KEY
        assert connection["user"] == "ec2-user"
        assert is_secret(command.raw_inputs["connection"]) or is_secret(
            command.raw_inputs["connection"]["privateKey"]
        )
        assert {"stdout", "stderr"} <= set(command.additional_secret_outputs)
    assert SSH_KEY not in graph.plaintext()


def test_the_ca_and_hiera_are_read_from_the_primary_with_logging_off() -> None:
    graph = declare()
    read = graph.one(COMMAND, "pool-primary-files")
    assert read.inputs["create"].endswith(f"{INSTALLED_SCRIPT} read")
    assert read.inputs["logging"] == "stderr"
    assert "delete" not in read.inputs
    # Rotating the SSH key must not re-read (and so re-render every compile master's user data).
    assert read.ignore_changes == ["connection"]


def test_user_data_trusts_the_pe_ca_and_carries_no_secret() -> None:
    graph = declare()
    read = graph.one(COMMAND, "pool-primary-files")
    for instance in graph.of_type(INSTANCE):
        user_data = instance.inputs["userData"]
        assert is_secret(instance.raw_inputs["userData"]), "built from the primary's files"
        assert read.urn in instance.dependencies
        assert "export PE_PRIMARY_HOST=puppet.example.com" in user_data
        assert f"export PE_CA_CERTIFICATE={shlex.quote(MOCK_CA.strip())}" in user_data
        assert f"export PE_HIERA_YAML={shlex.quote(MOCK_HIERA.strip())}" in user_data
        assert "export PE_POOL_NAMES=puppet-pool.example.com" in user_data
        assert "export PE_AUTH_ROLE=pe_compiler" in user_data
        assert f"export PE_PLATFORM_OID={pe.PLATFORM_EXTENSION_OID}" in user_data
        assert "--insecure" not in user_data and "curl -k" not in user_data
        assert "challengePassword" not in user_data


def test_rendered_user_data_is_valid_shell_with_quoted_values(tmp_path: Any) -> None:
    # Values the primary hands back are not ours to trust: each must reach the bootstrap byte for
    # byte, and nothing in them may run.
    planted = tmp_path / "planted"
    hiera = f'---\n# it\'s $(touch {planted}) and `touch {planted}`; "$HOME" \\ * ? ~ !x\nversion: 5\n'
    ca = MOCK_CA.replace("mockPEca", "mock PE'ca $x")
    files = json.dumps({"caCertificate": ca, "hieraYaml": hiera, "platform": "el-9-x86_64"})
    user_data = render_bootstrap("puppet.example.com", ["pool.example.com"], files)
    script = tmp_path / "user-data.sh"
    script.write_text(user_data)
    subprocess.run(["bash", "-n", str(script)], check=True)
    body = read_script(BOOTSTRAP_SCRIPT).split("\n", 1)[1]
    assert user_data.endswith(body)
    parameters = user_data.removesuffix(body)
    names = ["PE_PRIMARY_HOST", "PE_CA_CERTIFICATE", "PE_POOL_NAMES", "PE_HIERA_YAML"]
    shown = subprocess.run(
        ["bash", "-c", parameters + 'printf "%s\\0" ' + " ".join(f'"${name}"' for name in names)],
        cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, capture_output=True, text=True,
        timeout=30, check=True,
    )  # fmt: skip
    assert shown.stderr == ""
    assert shown.stdout.split("\0")[:-1] == [
        "puppet.example.com",
        ca.strip(),
        "pool.example.com",
        hiera.strip(),
    ]
    assert not planted.exists()


def test_an_unreadable_answer_from_the_primary_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"reading the PE CA and hiera\.yaml from puppet\.example\.com"):
        render_bootstrap("puppet.example.com", ["pool.example.com"], "sudo: a password is required")


def test_security_group_admits_nlb_primary_and_admins_only() -> None:
    graph = declare(admin_cidrs=["192.0.2.0/24"], primary_cidrs=["10.0.1.10/32"])
    rules = sorted(
        (r.inputs["fromPort"], r.inputs.get("referencedSecurityGroupId") or r.inputs.get("cidrIpv4"))
        for r in graph.of_type(INGRESS)
    )
    assert rules == [
        (22, "192.0.2.0/24"),
        (8140, "10.0.1.10/32"),
        (8140, "sg-nlb"),
        (8142, "10.0.1.10/32"),
        (8142, "sg-nlb"),
    ]


def test_no_ssh_without_admin_cidrs() -> None:
    graph = declare()
    assert all(r.inputs["fromPort"] != pe.SSH_PORT for r in graph.of_type(INGRESS))


def test_outputs_list_ids_ips_and_certnames_in_pool_order() -> None:
    outputs: dict[str, Any] = {}

    def program() -> None:
        pool = CompileMasterPool("pool", base_args(count=2))
        pool.instance_ids.apply(lambda ids: outputs.update(ids=ids))
        pool.private_ips.apply(lambda ips: outputs.update(ips=ips))
        pool.certnames.apply(lambda names: outputs.update(certnames=names))

    graph = run(program)
    instances = sorted(graph.of_type(INSTANCE), key=lambda i: i.name)
    assert len(outputs["ids"]) == 2 and all(i.startswith("i-") for i in outputs["ids"])
    assert len(outputs["ips"]) == len(instances)
    assert outputs["certnames"] == [f"{i}.eu-west-1.compute.internal" for i in outputs["ids"]]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"count": 0}, "count=0 must be 1..500"),
        ({"primary_host": "puppet example"}, "primary_host='puppet example' must be a DNS name"),
        ({"primary_host_key": "none"}, "primary_host_key='none' must be the primary's SSH host key"),
        ({"ssh_user": "ec2 user"}, "ssh_user='ec2 user' must be a Unix user name"),
        ({"admin_cidrs": ["0.0.0.0"]}, "must carry a prefix length"),
        ({"primary_cidrs": []}, "primary_cidrs must list at least one CIDR block"),
        ({"subnet_ids": []}, "subnet_ids=[] must list at least one subnet"),
        (
            {"target_group_arns": {"8140": "arn:tg"}},
            "target_group_arns must map exactly the ports 8140, 8142 (as strings), not ['8140']",
        ),
    ],
)
def test_component_refuses_bad_arguments_before_declaring_anything(
    overrides: dict[str, Any], message: str
) -> None:
    graph = run(lambda: CompileMasterPool("pool", base_args(**overrides)), expect_error=True)
    assert message in str(graph.error)
    assert graph.resources == []


def test_whole_lists_and_maps_given_as_outputs_work() -> None:
    """As users pass them: `vpc.private_subnet_ids` is one Output of a list."""
    graph = run(
        lambda: CompileMasterPool(
            "pool",
            base_args(
                count=3,
                subnet_ids=pulumi.Output.from_input(SUBNETS[:2]),
                primary_cidrs=pulumi.Output.from_input(["10.0.1.10/32"]),
                tags=pulumi.Output.from_input({"team": "puppet"}),
            ),
        )
    )
    instances = sorted(graph.of_type(INSTANCE), key=lambda i: i.name)
    assert [i.inputs["subnetId"] for i in instances] == [SUBNETS[0], SUBNETS[1], SUBNETS[0]]
    assert instances[0].inputs["tags"] == {
        "team": "puppet",
        "Name": "pool-0",
        "pe-lb:role": "compile-master",
        "pe-lb:pool": "pe-lb/test/pool",
    }
    # A CIDR list known only later: a managed prefix list, one rule per port.
    prefix_list = graph.one("aws:ec2/managedPrefixList:ManagedPrefixList")
    assert prefix_list.inputs["entries"] == [{"cidr": "10.0.1.10/32", "description": "PE primary"}]
    rules = [r for r in graph.of_type(INGRESS) if "prefixListId" in r.inputs]
    assert sorted(r.inputs["fromPort"] for r in rules) == [8140, 8142]


def test_drained_must_be_known_when_the_program_runs() -> None:
    graph = run(
        lambda: CompileMasterPool("pool", base_args(drained=pulumi.Output.from_input([0]))), expect_error=True
    )
    assert "must list pool indexes 0..1, known when the program runs" in str(graph.error)
    assert graph.resources == []
