"""Stack config: every key checked before any resource is declared."""

from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

import stack_config
from components import pe
from tests import harness
from tests.harness import PROJECT_DIR, config_string, run_main

BAD_INPUTS = [
    ({"pcpIdleTimeoutSeconds": 30}, "pcpIdleTimeoutSeconds=30 must be 900..6000"),
    ({"pcpIdleTimeoutSeconds": 350}, "pcpIdleTimeoutSeconds=350 must be 900..6000 (PCP brokers close idle"),
    ({"pcpIdleTimeoutSeconds": 7000}, "pcpIdleTimeoutSeconds=7000 must be 900..6000"),
    ({"agentIdleTimeoutSeconds": 59}, "agentIdleTimeoutSeconds=59 must be 60..6000"),
    ({"agentIdleTimeoutSeconds": "ten"}, "agentIdleTimeoutSeconds='ten' must be a whole number 60..6000"),
    ({"compileMasterCount": 0}, "compileMasterCount=0 must be 1..500"),
    ({"compileMasterCount": "2.5"}, "compileMasterCount='2.5' must be a whole number 1..500"),
    (
        {"primaryHost": "https://puppet.example.com"},
        "primaryHost='https://puppet.example.com' must be a DNS name",
    ),
    ({"primaryHost": ""}, "primaryHost is required: pulumi config set primaryHost"),
    ({"vpcId": "vpc-XYZ"}, "vpcId='vpc-XYZ' must be an id of the form vpc-0123456789abcdef0"),
    ({"subnetIds": []}, "subnetIds='[]' must list at least one subnet id"),
    ({"subnetIds": "subnet-0aaaaaaaaaaaaaaa1,subnet-0bbbbbbbbbbbbbbb2"}, "subnetIds="),
    ({"subnetIds": ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa1"]}, "lists a subnet twice"),
    ({"agentCidrs": ["10.0.0.1/8"]}, "agentCidrs entry '10.0.0.1/8' must be a CIDR block"),
    ({"agentCidrs": ["10.0.0.0"]}, "agentCidrs entry '10.0.0.0' must carry a prefix length"),
    ({"agentCidrs": []}, "agentCidrs must list at least one CIDR block"),
    ({"adminCidrs": ["everywhere"]}, "adminCidrs entry 'everywhere' must be a CIDR block"),
    ({"internal": "yes"}, "internal='yes' must be true or false"),
    (
        {"healthCheckPath": "status/v1/simple"},
        "healthCheckPath='status/v1/simple' must be an absolute URL path",
    ),
    ({"healthCheckProtocol": "HTTP"}, "healthCheckProtocol='HTTP' must be one of: HTTPS, TCP"),
    ({"poolDnsName": "pool.example.com"}, "poolDnsName and hostedZoneId go together"),
    (
        {"poolDnsName": "pool.example.com", "hostedZoneId": "zone-1"},
        "hostedZoneId='zone-1' must be a Route53 hosted zone id",
    ),
    ({"amiId": "rhel9"}, "amiId='rhel9' must be an id of the form ami-0123456789abcdef0"),
    ({"instanceType": "large"}, "instanceType='large' must be an EC2 instance type"),
    ({"rootVolumeSizeGb": 8}, "rootVolumeSizeGb=8 must be 20..16384"),
    ({"sshUser": "ec2 user"}, "sshUser='ec2 user' must be a Unix user name"),
    ({"tags": ["team"]}, "tags=['team'] must map tag names to string values"),
    ({"tags": {"aws:owner": "me"}}, "tags name 'aws:owner' is not allowed (empty, or starting with aws:)"),
    (
        {"tags": {"cost-centre": "R&D"}},
        "tags 'cost-centre': 'R&D' has characters load balancer tags refuse; allowed are letters, digits, "
        "spaces and _ . : / = + - @",
    ),
    ({"tags": {"k" * 129: "v"}}, "names are at most 128 characters, values 256"),
    (
        {"tags": {f"t{i}": "v" for i in range(49)}},
        "tags has 49 tags; at most 48 (AWS allows 50, pe-lb sets 2)",
    ),
    ({"agentCidrs": ["10.0.0.0/8", "10.0.0.0/8"]}, "agentCidrs lists 10.0.0.0/8 more than once"),
    ({"primaryCidrs": ["10.0.1.10/32", "10.0.1.10/32"]}, "primaryCidrs lists 10.0.1.10/32 more than once"),
    (
        {"agentCidrs": ["10.0.0.0/8", "2001:db8::/32"]},
        "agentCidrs entry '2001:db8::/32' is IPv6, but the load balancer is IPv4 only",
    ),
    ({"adminCidrs": ["0.0.0.0/0"]}, "adminCidrs=['0.0.0.0/0'] admits the whole internet (0.0.0.0/0);"),
    (
        {"adminCidrs": ["0.0.0.0/1", "128.0.0.0/1"]},
        "adminCidrs=['0.0.0.0/1', '128.0.0.0/1'] admits the whole internet (0.0.0.0/0 in pieces)",
    ),
    ({"adminCidrs": ["::/0"]}, "admits the whole internet (::/0)"),
    (
        {"amiId": ""},
        "amiId is required: pulumi config set amiId <value>  (compile masters must run the primary's",
    ),
    (
        {"subnetIds": ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0ddddddddddddddd4"]},
        "subnetIds lists subnet-0aaaaaaaaaaaaaaa1 and subnet-0ddddddddddddddd4, both in eu-west-1a: a load "
        "balancer takes one subnet per availability zone",
    ),
    (
        {
            "loadBalancerSubnetIds": [
                "subnet-0bbbbbbbbbbbbbbb2",
                "subnet-0ddddddddddddddd4",
                "subnet-0aaaaaaaaaaaaaaa1",
            ]
        },
        "loadBalancerSubnetIds lists subnet-0ddddddddddddddd4 and subnet-0aaaaaaaaaaaaaaa1, "
        "both in eu-west-1a",
    ),
    (
        {"poolDnsName": "pool.example.org", "hostedZoneId": "Z0123456789ABC"},
        "poolDnsName='pool.example.org' is not in the hosted zone "
        "hostedZoneId='Z0123456789ABC' (example.com)",
    ),
    (
        {"drainedCompileMasters": [3]},
        "drainedCompileMasters='[3]': the pool has compile masters 0..2, not [3]",
    ),
    ({"drainedCompileMasters": [0, 1, 2]}, "drains every compile master: the pool would serve no agent"),
    ({"drainedCompileMasters": ["one"]}, "drainedCompileMasters='[\"one\"]' must list pool indexes"),
    ({"compileMaster": 3}, "unknown config key(s) compileMaster"),
    ({"primaryHostKey": ""}, "primaryHostKey is required: pulumi config set primaryHostKey"),
    (
        {"primaryHostKey": "AAAAC3NzaC1lZDI1NTE5"},
        "primaryHostKey='AAAAC3NzaC1lZDI1NTE5' must be the primary's SSH host key as "
        "`ssh-keyscan -t ed25519 <primary>` prints it",
    ),
    ({"primaryCidrs": []}, "primaryCidrs must list at least one CIDR block"),
    ({"primaryCidrs": ""}, "primaryCidrs is required"),
    (
        {"autosignSecret": "challenge"},
        "autosignSecret is no longer used and must go: a shared autosign secret lets anyone who reads "
        "user data mint a pe_compiler certificate",
    ),
]


@pytest.mark.parametrize(("change", "message"), BAD_INPUTS, ids=[m for _, m in BAD_INPUTS])
def test_bad_input_fails_before_any_resource_is_declared(
    stack_config: dict[str, Any], change: dict[str, Any], message: str
) -> None:
    graph = run_main({**stack_config, **change}, expect_error=True)
    assert isinstance(graph.error, pulumi.RunError)  # reported by Pulumi without a traceback
    assert message in str(graph.error)
    assert graph.resources == []


def test_plain_text_secret_is_refused(stack_config: dict[str, Any]) -> None:
    graph = run_main(stack_config, secret_keys=(), expect_error=True)
    assert "sshPrivateKey is stored in plain text in the stack config; it must be a secret" in str(
        graph.error
    )
    assert "pulumi config set --secret sshPrivateKey" in str(graph.error)
    assert graph.resources == []


def test_missing_ssh_key_names_the_command_to_set_it(stack_config: dict[str, Any]) -> None:
    del stack_config["sshPrivateKey"]
    graph = run_main(stack_config, expect_error=True)
    assert "sshPrivateKey is required and must be a secret: pulumi config set --secret sshPrivateKey" in str(
        graph.error
    )


def test_every_problem_is_reported_at_once(stack_config: dict[str, Any]) -> None:
    graph = run_main({**stack_config, "pcpIdleTimeoutSeconds": 30, "agentCidrs": ["x"]}, expect_error=True)
    assert "pcpIdleTimeoutSeconds=30" in str(graph.error)
    assert "agentCidrs entry 'x'" in str(graph.error)


def test_one_subnet_warns_about_availability_zones(stack_config: dict[str, Any]) -> None:
    graph = run_main({**stack_config, "subnetIds": ["subnet-0aaaaaaaaaaaaaaa1"]})
    assert any("two or more AZs" in warning for warning in graph.warnings)


def test_defaults(stack_config: dict[str, Any]) -> None:
    minimal = {k: stack_config[k] for k in REQUIRED_KEYS}
    settings = stack_config_parse({k: config_string(v) for k, v in minimal.items()})
    assert settings.compile_master_count == 2
    assert (
        settings.pcp_idle_timeout_seconds == pe.DEFAULT_PCP_IDLE_TIMEOUT_SECONDS > pe.PCP_BROKER_IDLE_SECONDS
    )
    assert settings.health_check_path == "/status/v1/simple"
    assert settings.internal is True
    assert minimal["sshPrivateKey"] not in repr(settings)


REQUIRED_KEYS = {
    "primaryHost",
    "primaryHostKey",
    "vpcId",
    "amiId",
    "subnetIds",
    "agentCidrs",
    "primaryCidrs",
    "sshPrivateKey",
}


def stack_config_parse(raw: dict[str, str]) -> stack_config.StackSettings:
    return stack_config.parse(raw, {"sshPrivateKey"})


def project_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())["config"]
    return config


def test_pulumi_yaml_types_every_key_but_the_tag_map() -> None:
    declared = project_config()
    assert set(declared) == set(stack_config.KNOWN_KEYS) - {"tags"}
    for key, spec in declared.items():
        assert spec["type"] in ("string", "integer", "boolean", "array"), key
        assert spec["description"], key


def test_pulumi_yaml_defaults_are_the_programs_defaults(stack_config: dict[str, Any]) -> None:
    """A stack that sets only the required keys gets what Pulumi.yaml advertises."""
    declared = project_config()
    assert {k for k, spec in declared.items() if "default" not in spec} == REQUIRED_KEYS
    with_defaults = {k: config_string(spec["default"]) for k, spec in declared.items() if "default" in spec}
    raw = {k: config_string(stack_config[k]) for k in REQUIRED_KEYS}
    assert stack_config_parse({**raw, **with_defaults}) == stack_config_parse(raw)


def test_example_stack_is_valid() -> None:
    example = yaml.safe_load(Path(PROJECT_DIR / "Pulumi.dev.yaml").read_text())["config"]
    raw = {k.removeprefix("pe-lb:"): config_string(v) for k, v in example.items() if k.startswith("pe-lb:")}
    settings = stack_config_parse({**raw, "sshPrivateKey": "set with --secret"})
    assert settings.pool_dns_name == "puppet-pool.example.com"
    assert settings.compile_master_count >= 2 and len(settings.subnet_ids) >= 2


def test_a_record_someone_else_made_for_the_pool_name_is_refused(
    stack_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        harness,
        "EXISTING_RECORDS",
        [
            {
                "name": "pool.example.com.",
                "type": "CNAME",
                "resourceRecords": [{"value": "elsewhere.example.net"}],
            }
        ],
    )
    config = {**stack_config, "poolDnsName": "pool.example.com", "hostedZoneId": "Z0123456789ABC"}
    graph = run_main(config, expect_error=True)
    assert (
        "poolDnsName='pool.example.com' already has a CNAME record in Z0123456789ABC that pe-lb did not make"
        in (str(graph.error))
    )
    assert graph.resources == []


def test_the_stacks_own_alias_from_an_earlier_up_is_not_in_the_way(
    stack_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    alias = {
        "dnsName": "internal-pe-lb-nlb-0a1b2c3-1234567890.elb.eu-west-1.amazonaws.com.",
        "hostedZoneId": "Z2",
    }
    monkeypatch.setattr(
        harness, "EXISTING_RECORDS", [{"name": "pool.example.com.", "type": "A", "aliasTarget": alias}]
    )
    config = {**stack_config, "poolDnsName": "pool.example.com", "hostedZoneId": "Z0123456789ABC"}
    assert run_main(config).one("aws:route53/record:Record")
