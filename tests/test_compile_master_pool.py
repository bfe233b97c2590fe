"""CompileMasterPool on its own, as a user's program would declare it."""

import subprocess
from typing import Any

import pytest

from components import CompileMasterPool, CompileMasterPoolArgs, pe
from components.compile_master_pool import render_bootstrap
from tests.harness import MOCK_AMI, Graph, is_secret, run

INSTANCE = "aws:ec2/instance:Instance"
ATTACHMENT = "aws:lb/targetGroupAttachment:TargetGroupAttachment"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SUBNETS = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2", "subnet-0ccccccccccccccc3"]


def base_args(**overrides: Any) -> CompileMasterPoolArgs:
    args: dict[str, Any] = {
        "primary_host": "puppet.example.com",
        "pool_address": "puppet-pool.example.com",
        "vpc_id": "vpc-0123456789abcdef0",
        "subnet_ids": SUBNETS,
        "load_balancer_security_group_id": "sg-nlb",
        "target_group_arns": {8140: "arn:tg-8140", 8142: "arn:tg-8142"},
    }
    args.update(overrides)
    return args  # type: ignore[return-value]


def declare(**overrides: Any) -> Graph:
    return run(lambda: CompileMasterPool("pool", base_args(**overrides)))


def test_instances_spread_round_robin_over_subnets() -> None:
    graph = declare(count=5)
    subnets = [i.inputs["subnetId"] for i in sorted(graph.of_type(INSTANCE), key=lambda i: i.name)]
    assert subnets == [SUBNETS[0], SUBNETS[1], SUBNETS[2], SUBNETS[0], SUBNETS[1]]


def test_instances_are_hardened() -> None:
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


def test_given_ami_is_used_without_lookup() -> None:
    graph = declare(ami_id="ami-0123456789abcdef0")
    assert {i.inputs["ami"] for i in graph.of_type(INSTANCE)} == {"ami-0123456789abcdef0"}


def test_each_instance_joins_both_target_groups_on_the_right_port() -> None:
    graph = declare(count=3)
    for instance in graph.of_type(INSTANCE):
        attachments = sorted(
            (a.inputs["port"], a.inputs["targetGroupArn"])
            for a in graph.of_type(ATTACHMENT)
            if a.inputs["targetId"] == instance.name + "-id" or instance.urn in a.dependencies
        )
        assert attachments == [(8140, "arn:tg-8140"), (8142, "arn:tg-8142")]


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


def test_user_data_joins_the_primary_with_the_pool_name_in_the_certificate() -> None:
    graph = declare()
    user_data = graph.of_type(INSTANCE)[0].inputs["userData"]
    assert "export PE_INSTALL_URL=https://puppet.example.com:8140/packages/current/install.bash" in user_data
    assert "export PE_DNS_ALT_NAMES=puppet,puppet-pool.example.com" in user_data
    assert "export PE_AUTH_ROLE=pe_compiler" in user_data


def test_autosign_secret_makes_user_data_secret() -> None:
    graph = declare(autosign_secret="s3cret")
    for instance in graph.of_type(INSTANCE):
        assert is_secret(instance.raw_inputs["userData"])
        assert "export PE_AUTOSIGN_SECRET=s3cret" in instance.inputs["userData"]


def test_rendered_user_data_is_valid_shell_with_quoted_values(tmp_path: Any) -> None:
    script = tmp_path / "user-data.sh"
    script.write_text(render_bootstrap("puppet.example.com", "pool.example.com", "it's $(secret)"))
    subprocess.run(["bash", "-n", str(script)], check=True)
    assert "export PE_AUTOSIGN_SECRET='it'\"'\"'s $(secret)'" in script.read_text()


def test_outputs_list_ids_and_ips_in_pool_order() -> None:
    outputs: dict[str, Any] = {}

    def program() -> None:
        pool = CompileMasterPool("pool", base_args(count=2))
        pool.instance_ids.apply(lambda ids: outputs.update(ids=ids))
        pool.private_ips.apply(lambda ips: outputs.update(ips=ips))

    graph = run(program)
    instances = sorted(graph.of_type(INSTANCE), key=lambda i: i.name)
    assert len(outputs["ids"]) == 2 and all(i.startswith("i-") for i in outputs["ids"])
    assert len(outputs["ips"]) == len(instances)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"count": 0}, "count=0 must be 1..500"),
        ({"primary_host": "puppet example"}, "primary_host='puppet example' must be a DNS name"),
        ({"admin_cidrs": ["0.0.0.0"]}, "must carry a prefix length"),
        ({"subnet_ids": []}, "subnet_ids must list at least one subnet"),
        (
            {"target_group_arns": {8140: "arn:tg"}},
            "target_group_arns must map exactly the ports (8140, 8142)",
        ),
    ],
)
def test_component_refuses_bad_arguments_before_declaring_anything(
    overrides: dict[str, Any], message: str
) -> None:
    graph = run(lambda: CompileMasterPool("pool", base_args(**overrides)), expect_error=True)
    assert message in str(graph.error)
    assert graph.resources == []
