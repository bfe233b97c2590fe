"""Stack config: every key checked before any resource is declared."""

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

import stack_config
from components import CompileMasterPool, PuppetLoadBalancer, pe, pool_config
from components.compile_master_pool import render_bootstrap
from tests import harness
from tests.conftest import SSH_KEY
from tests.harness import MOCK_CA, PROJECT_DIR, config_string, run, run_main
from tests.test_compile_master_pool import base_args as pool_args
from tests.test_load_balancer import base_args as load_balancer_args

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
    ({"poolDnsName": "pool.example.com"}, "poolDnsName needs hostedZoneId: the Route53 zone of its alias"),
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
        {"tags": {f"t{i}": "v" for i in range(48)}},
        "tags has 48 tags; at most 47 (AWS allows 50, pe-lb sets 3)",
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
        "primaryHostKey=<20 characters, not shown> must be the primary's SSH host key as "
        "`ssh-keyscan -t ed25519 <primary>` prints it",
    ),
    (
        {"primaryHostKey": "puppet.example.com ssh-dss AAAAB3NzaC1kc3M"},
        "primaryHostKey=<42 characters starting 'puppet.example.com', the rest not shown> must be",
    ),
    ({"primaryCidrs": []}, "primaryCidrs must list at least one CIDR block"),
    ({"primaryCidrs": ""}, "primaryCidrs is required"),
    # Hostnames are ASCII: re.IGNORECASE alone lets U+017F and U+212A through as s and k.
    (
        {"poolDnsName": "pool.\u017fite.example.com", "hostedZoneId": "Z0123456789ABC"},
        "poolDnsName='pool.\u017fite.example.com' has U+017F (LATIN SMALL LETTER LONG S): a DNS name here is "
        "ASCII",
    ),
    (
        {"primaryHost": "\u212aiwi.example.com"},
        "primaryHost='\u212aiwi.example.com' has U+212A (KELVIN SIGN)",
    ),
    ({"primaryHost": "puppet.example.com\n"}, "primaryHost='puppet.example.com\\n' must be a DNS name"),
    # SSH from a share of the internet, in one block or in /8 pieces.
    (
        {"adminCidrs": [f"{octet}.0.0.0/8" for octet in range(1, 256)]},
        "adminCidrs=['1.0.0.0/8', '2.0.0.0/8', '3.0.0.0/8', '4.0.0.0/8', '5.0.0.... (255 items) admits "
        "3,702,258,688 public IPv4 addresses, more than a /8 holds (16,777,216)",
    ),
    (
        {"adminCidrs": ["198.51.100.0/24", "1.0.0.0/8", "2.0.0.0/8"]},
        "admits 33,554,432 public IPv4 addresses, more than a /8 holds (16,777,216): a share of the "
        "internet, not one organisation's networks; list your administrators' networks",
    ),
    ({"adminCidrs": ["2000::/3"]}, "adminCidrs=['2000::/3'] admits 42,535,295,785,889,145,418,657,488,335,4"),
    ({"adminCidrs": ["fe80::%eth0/64"]}, "adminCidrs entry 'fe80::%eth0/64' has a scope (%...)"),
    # Tags are one line.
    (
        {"tags": {"team\n": "puppet"}},
        "tags 'team\\n': 'team\\n' has characters load balancer tags refuse; allowed are letters, digits, "
        "spaces and _ . : / = + - @ (found U+000A (a control character))",
    ),
    ({"tags": {"team": "pup\tpet"}}, "tags 'team': 'pup\\tpet' has characters load balancer tags refuse"),
    ({"tags": {"team": "pup\u2028pet"}}, "(found U+2028 (LINE SEPARATOR))"),
    # What used to crash after the load balancer was declared.
    (
        {"primaryCidrs": ["2001:db8::10/128"]},
        "primaryCidrs entry '2001:db8::10/128' is IPv6, but compile masters have IPv4 addresses only",
    ),
    (
        {"drainedCompileMasters": [-1]},
        "drainedCompileMasters='[-1]': the pool has compile masters 0..2, not [-1]",
    ),
    ({"drainedCompileMasters": '["\u00b2"]'}, "drainedCompileMasters='[\"\u00b2\"]' must list pool indexes"),
    ({"drainedCompileMasters": ["1\n"]}, "drainedCompileMasters='[\"1\\\\n\"]' must list pool indexes"),
    # Rules past a security group's default quota (60 inbound per IP version).
    (
        {"agentCidrs": [f"10.{i}.0.0/16" for i in range(31)]},
        "agentCidrs would give the NLB's security group 62 inbound IPv4 rules (agentCidrs: 31 block(s) x 2 "
        "port(s) (8140, 8142)), over AWS's default quota of 60 per security group",
    ),
    (
        {"primaryCidrs": [f"10.0.1.{i}/32" for i in range(29)], "adminCidrs": ["192.0.2.0/24"]},
        "primaryCidrs and adminCidrs would give the compile masters' security group 61 inbound IPv4 rules "
        "(primaryCidrs: 29 block(s) x 2 port(s) (8140, 8142); adminCidrs: 1 block(s) x 1 port(s) (22); 2 "
        "rule(s) naming a security group), over AWS's default quota of 60",
    ),
    (
        {"adminCidrs": [f"2001:db8:{i:x}::/48" for i in range(59)]},
        "adminCidrs would give the compile masters' security group 61 inbound IPv6 rules",
    ),
    # Long values are cut, so a pasted file never floods the error.
    (
        {"subnetIds": "x" * 500},
        "subnetIds='" + "x" * 59 + "... (500 characters) must be a YAML/JSON list",
    ),
    (
        {"keyName": "cl\u00e9"},
        "keyName='cl\u00e9' must be the name of an EC2 key pair (up to 255 printable ASCII",
    ),
    ({"healthCheckPath": "/status/v1/simple\n"}, "must be an absolute URL path such as /status/v1/simple"),
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
    settings = stack_config_parse({**raw, "sshPrivateKey": SSH_KEY})
    assert settings.pool_dns_name == "puppet-pool.example.com"
    assert settings.compile_master_count >= 2 and len(settings.subnet_ids) >= 2  # type: ignore[arg-type]


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


# --- values that may hold keys are never echoed ------------------------------------------------------

PASTED_PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
    "-----END OPENSSH PRIVATE KEY-----"
)


def test_a_private_key_pasted_as_the_host_key_is_never_printed(stack_config: dict[str, Any]) -> None:
    graph = run_main({**stack_config, "primaryHostKey": PASTED_PRIVATE_KEY}, expect_error=True)
    error = str(graph.error)
    assert "primaryHostKey=<112 characters, not shown> must be the primary's SSH host key" in error
    assert "It holds a PRIVATE key, which does not belong here" in error
    assert "b3BlbnNzaC1rZXktdjE" not in error and "BEGIN" not in error
    assert graph.resources == []


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPublicNotPrivate", "; it looks like a public key"),
        ("/home/ops/.ssh/pe-primary", "; it looks like a file name: the file's content goes in"),
        ("hunter2-not-a-key", ""),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nc2VjcmV0\n"
            "-----END RSA PRIVATE KEY-----\n",
            "",
        ),
    ],
)
def test_a_bad_ssh_private_key_is_refused_without_being_printed(
    stack_config: dict[str, Any], value: str, why: str
) -> None:
    graph = run_main({**stack_config, "sshPrivateKey": value}, expect_error=True)
    error = str(graph.error)
    assert f"sshPrivateKey (a secret of {len(value)} characters, not shown)" in error
    assert why in error
    assert "pulumi config set --secret sshPrivateKey < ~/.ssh/pe-primary" in error
    for word in value.split():
        if len(word) > 6:
            assert word not in error
    assert graph.resources == []


def test_a_passphrase_protected_key_is_refused() -> None:
    key = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nc2VjcmV0\n-----END ENCRYPTED PRIVATE KEY-----\n"
    with pytest.raises(
        stack_config.ConfigError, match="is protected by a passphrase, which pe-lb cannot give"
    ):
        stack_config_parse({**minimal_raw(), "sshPrivateKey": key})


# --- what passes at the edges of the new rules -------------------------------------------------------


def minimal_raw() -> dict[str, str]:
    config = {
        "primaryHost": "puppet.example.com",
        "primaryHostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMockHostKey",
        "vpcId": "vpc-0123456789abcdef0",
        "amiId": "ami-0123456789abcdef0",
        "subnetIds": ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"],
        "agentCidrs": ["10.0.0.0/8"],
        "primaryCidrs": ["10.0.1.10/32"],
        "sshPrivateKey": SSH_KEY,
    }
    return {key: config_string(value) for key, value in config.items()}


@pytest.mark.parametrize(
    "admin_cidrs",
    [
        ["18.0.0.0/8"],  # one organisation's /8: the most allowed
        ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"],  # private space is not counted
        ["2a00::/16", "fd00::/8"],
    ],
)
def test_administrators_networks_up_to_one_organisations_share_pass(admin_cidrs: list[str]) -> None:
    settings = stack_config_parse({**minimal_raw(), "adminCidrs": config_string(admin_cidrs)})
    assert settings.admin_cidrs == admin_cidrs


def test_rules_up_to_the_security_group_quota_pass() -> None:
    """60 inbound rules each: 30 agent blocks x 2 ports; 2 from the NLB + 2 x 28 primary + 2 admin."""
    settings = stack_config_parse(
        {
            **minimal_raw(),
            "agentCidrs": config_string([f"10.{i}.0.0/16" for i in range(30)]),
            "primaryCidrs": config_string([f"10.0.1.{i}/32" for i in range(28)]),
            "adminCidrs": config_string(["192.0.2.0/24", "198.51.100.0/24"]),
        }
    )
    assert settings.agent_cidrs == [f"10.{i}.0.0/16" for i in range(30)]
    assert settings.primary_cidrs == [f"10.0.1.{i}/32" for i in range(28)]


def test_drained_indexes_as_ascii_digits_pass() -> None:
    raw = {**minimal_raw(), "compileMasterCount": "3", "drainedCompileMasters": '["2", 0]'}
    assert stack_config_parse(raw).drained_compile_masters == [0, 2]


def test_an_error_from_deep_inside_a_check_still_names_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    def fails(key: str, value: str) -> str:
        return str(int(value))

    monkeypatch.setattr(pool_config, "_instance_type", fails)
    with pytest.raises(stack_config.ConfigError, match=r"instanceType: invalid literal for int\(\)"):
        stack_config_parse({**minimal_raw(), "instanceType": "m6i.xlarge"})


# --- the components check their own arguments the same way ------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"primary_host": "\u212aiwi.example.com"},
            "primary_host='\u212aiwi.example.com' has U+212A (KELVIN SIGN)",
        ),
        ({"primary_host_key": PASTED_PRIVATE_KEY}, "primary_host_key=<112 characters, not shown> must be"),
        (
            {"admin_cidrs": [f"{i}.0.0.0/8" for i in range(1, 256)]},
            "admits 3,702,258,688 public IPv4 addresses, more than a /8 holds",
        ),
        (
            {"admin_cidrs": ["2000::/3"]},
            "admin_cidrs=['2000::/3'] admits 42,535,295,785,889,145,418,657,488,335,4",
        ),
        ({"primary_cidrs": ["2001:db8::10/128"]}, "primary_cidrs entry '2001:db8::10/128' is IPv6"),
        ({"tags": {"team": "pup\npet"}}, "tags 'team': 'pup\\npet' has characters load balancer tags refuse"),
    ],
)
def test_compile_master_pool_refuses_the_same_holes(overrides: dict[str, Any], message: str) -> None:
    graph = run(lambda: CompileMasterPool("pool", pool_args(**overrides)), expect_error=True)
    assert message in str(graph.error)
    assert "b3BlbnNzaC1rZXktdjE" not in str(graph.error)
    assert graph.resources == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"tags": {"team\t": "puppet"}}, "(found U+0009 (a control character))"),
        (
            {"health_check_path": "/status/v1/simple\r"},
            "must be an absolute URL path such as /status/v1/simple",
        ),
    ],
)
def test_load_balancer_refuses_the_same_holes(overrides: dict[str, Any], message: str) -> None:
    graph = run(lambda: PuppetLoadBalancer("pool", load_balancer_args(**overrides)), expect_error=True)
    assert message in str(graph.error)
    assert graph.resources == []


# --- user data stays under EC2's 16 KB -----------------------------------------------------------------


def primary_files(hiera_yaml: str) -> str:
    return json.dumps({"caCertificate": MOCK_CA, "hieraYaml": hiera_yaml, "platform": "el-9-x86_64"})


def test_user_data_up_to_16_kb_renders() -> None:
    """EC2 counts user data raw, before base64: up to 16384 bytes pass."""
    base = len(render_bootstrap("puppet.example.com", ["pool.example.com"], primary_files("x")).encode())
    hiera = "x" * (16384 - base + 1)
    assert (
        len(render_bootstrap("puppet.example.com", ["pool.example.com"], primary_files(hiera)).encode())
        == 16384
    )


def test_user_data_over_16_kb_names_its_size_and_hiera_yaml() -> None:
    base = len(render_bootstrap("puppet.example.com", ["pool.example.com"], primary_files("x")).encode())
    hiera = "x" * (16384 - base + 2)
    with pytest.raises(ValueError) as raised:
        render_bootstrap("puppet.example.com", ["pool.example.com"], primary_files(hiera))
    message = str(raised.value)
    assert (
        "the compile masters' user data would be 16385 bytes, over EC2's limit of 16384 "
        "(counted before base64)" in message
    )
    assert f"its global hiera.yaml {len(hiera)}" in message
    assert "Shrink hiera.yaml on puppet.example.com by 1 bytes or more" in message


# ---- names agents hold: refused at preview when a change would strand them

OUR_NLB = "internal-pe-lb-nlb-abc1234-0123456789.eu-west-1.elb.amazonaws.com"


def earlier_up(
    monkeypatch: pytest.MonkeyPatch,
    names: list[str],
    *,
    internal: bool = True,
    subnets: list[str] | None = None,
) -> None:
    """What an earlier `pulumi up` of this stack left in AWS: its NLB (pool tag) and alias records to it."""
    monkeypatch.setattr(
        harness,
        "EXISTING_LOAD_BALANCER",
        {
            "arn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/pe-lb-nlb-abc1234/1",
            "dnsName": OUR_NLB,
            "internal": internal,
            "subnets": subnets or ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"],
            "tags": {"pe-lb:pool": "pe-lb/test/pe-lb"},
        },
    )
    records = [
        {"name": f"{name}.", "type": "A", "aliasTarget": {"dnsName": f"dualstack.{OUR_NLB}."}}
        for name in names
    ]
    monkeypatch.setattr(harness, "EXISTING_RECORDS", records)


DNS = {"hostedZoneId": "Z0123456789ABC"}


def test_a_new_pool_dns_name_in_one_step_is_refused_with_the_steps(
    stack_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    earlier_up(monkeypatch, ["old-pool.example.com"])
    graph = run_main({**stack_config, **DNS, "poolDnsName": "pool.example.com"}, expect_error=True)
    message = str(graph.error)
    assert (
        "poolDnsName='pool.example.com' is not yet a name of this pool (today: old-pool.example.com, "
        in message
    )
    assert "1) add pool.example.com to additionalPoolDnsNames, keeping poolDnsName" in message
    assert "3) once every agent has run Puppet" in message
    assert graph.resources == []


@pytest.mark.parametrize(
    ("served", "config"),
    [
        (
            ["old-pool.example.com"],
            {"poolDnsName": "old-pool.example.com", "additionalPoolDnsNames": ["pool.example.com"]},
        ),
        (
            ["old-pool.example.com", "pool.example.com"],
            {"poolDnsName": "pool.example.com", "additionalPoolDnsNames": ["old-pool.example.com"]},
        ),
        (["old-pool.example.com", "pool.example.com"], {"poolDnsName": "pool.example.com"}),
        ([], {"additionalPoolDnsNames": ["pool.example.com"]}),
        (["pool.example.com"], {"poolDnsName": "pool.example.com"}),
    ],
    ids=["1-add-the-new-name", "2-swap", "3-drop-the-old-name", "first-name-1-add", "first-name-2-give"],
)
def test_each_step_of_the_safe_move_is_accepted(
    stack_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch, served: list[str], config: dict[str, Any]
) -> None:
    earlier_up(monkeypatch, served)
    graph = run_main({**stack_config, **DNS, **config})
    assert graph.error is None
    assert sorted(r.inputs["name"] for r in graph.of_type("aws:route53/record:Record")) == sorted(
        [*filter(None, [config.get("poolDnsName")]), *config.get("additionalPoolDnsNames", [])]
    )


def test_a_first_pool_dns_name_in_one_step_is_refused_with_the_steps(
    stack_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    earlier_up(monkeypatch, [])
    graph = run_main({**stack_config, **DNS, "poolDnsName": "pool.example.com"}, expect_error=True)
    assert f"is not yet a name of this pool (today: {OUR_NLB} (the NLB's own))" in str(graph.error)


@pytest.mark.parametrize(
    "change",
    [{"internal": False}, {"subnetIds": ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0ccccccccccccccc3"]}],
    ids=["scheme-flipped", "subnet-swapped"],
)
def test_an_nlb_rebuild_without_a_pool_dns_name_is_refused_with_the_steps(
    stack_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch, change: dict[str, Any]
) -> None:
    earlier_up(monkeypatch, [])
    graph = run_main({**stack_config, **change}, expect_error=True)
    message = str(graph.error)
    assert "this change rebuilds the NLB (" in message
    assert f"agents know the pool only by the NLB's own DNS name ({OUR_NLB})" in message
    assert "First give the pool a name: set poolDnsName and hostedZoneId" in message
    assert graph.resources == []


def test_an_nlb_rebuild_with_a_pool_dns_name_is_accepted(
    stack_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    earlier_up(monkeypatch, ["pool.example.com"])
    graph = run_main({**stack_config, **DNS, "poolDnsName": "pool.example.com", "internal": False})
    assert graph.error is None


def test_another_stacks_nlb_is_not_this_one(
    stack_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    earlier_up(monkeypatch, ["old-pool.example.com"])
    assert harness.EXISTING_LOAD_BALANCER is not None
    monkeypatch.setitem(harness.EXISTING_LOAD_BALANCER, "tags", {"pe-lb:pool": "pe-lb/other-stack/pe-lb"})
    graph = run_main({**stack_config, **DNS, "poolDnsName": "pool.example.com", "internal": False})
    assert graph.error is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"additionalPoolDnsNames": ["pool.example.com"]}, "must list each name once, and not poolDnsName"),
        ({"additionalPoolDnsNames": ["a.example.com", "a.example.com"]}, "must list each name once"),
        (
            {"additionalPoolDnsNames": "a.example.com"},
            "additionalPoolDnsNames='a.example.com' must be a YAML/JSON list",
        ),
        ({"additionalPoolDnsNames": ["-x.example.com"]}, "additionalPoolDnsNames"),
    ],
)
def test_additional_pool_dns_names_are_checked(
    stack_config: dict[str, Any], extra: dict[str, Any], message: str
) -> None:
    graph = run_main({**stack_config, **DNS, "poolDnsName": "pool.example.com", **extra}, expect_error=True)
    assert message in str(graph.error)
    assert graph.resources == []


def test_additional_pool_dns_names_need_a_hosted_zone(stack_config: dict[str, Any]) -> None:
    graph = run_main({**stack_config, "additionalPoolDnsNames": ["a.example.com"]}, expect_error=True)
    assert "additionalPoolDnsNames needs hostedZoneId" in str(graph.error)
