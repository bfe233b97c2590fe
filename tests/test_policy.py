"""The policy pack: each rule alone, then the whole program's graph through every rule."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_command as command
import pytest
import yaml
from pulumi_policy import PolicyResource

from components import validation
from policy.rules import (
    INGRESS_RULE,
    INSTANCE,
    LISTENER,
    RULES,
    SECURITY_GROUP,
    SECURITY_GROUP_RULE,
    TARGET_GROUP,
    Rule,
)
from tests.harness import PROJECT_DIR, Graph, run_main
from tests.policy_bridge import (
    Violation,
    all_violations,
    check_resource,
    check_stack,
    options,
    policy_resources,
)

RULE = {rule.name: rule for rule in RULES}
POOL_URN = "urn:pulumi:test::pe-lb::pe-lb:index:CompileMasterPool$aws:ec2/instance:Instance::pe-lb-0"
GOOD_INSTANCE = {
    "metadataOptions": {"httpTokens": "required"},
    "rootBlockDevice": {"encrypted": True},
    "associatePublicIpAddress": False,
}
GOOD_TARGET_GROUP = {
    "port": 8142,
    "protocol": "TCP",
    "connectionTermination": True,
    "healthCheck": {
        "protocol": "HTTPS",
        "path": "/status/v1/simple",
        "interval": 10,
        "unhealthyThreshold": 2,
    },
}


def resource(rule: str, resource_type: str, props: dict[str, Any], **kw: Any) -> list[Violation]:
    return check_resource(RULE[rule], type=resource_type, props=props, **kw)


# --- each policy: a passing and a failing resource -------------------------------------------------

CASES: list[tuple[str, str, dict[str, Any], dict[str, Any], str]] = [
    (
        "pe-listener-tcp-pass-through",
        LISTENER,
        {"port": 8140, "protocol": "TCP"},
        {"port": 8140, "protocol": "TLS", "certificateArn": "arn:aws:acm:x"},
        "the 8140 listener uses TLS",
    ),
    (
        "pe-pcp-idle-timeout",
        LISTENER,
        {"port": 8142, "protocol": "TCP", "tcpIdleTimeoutSeconds": 1200},
        {"port": 8142, "protocol": "TCP", "tcpIdleTimeoutSeconds": 350},
        "closes idle connections after 350 s",
    ),
    (
        "pe-health-check-status-endpoint",
        TARGET_GROUP,
        GOOD_TARGET_GROUP,
        {**GOOD_TARGET_GROUP, "healthCheck": {"protocol": "HTTPS", "path": "/"}},
        "the 8142 target group checks '/'",
    ),
    (
        "pe-health-check-prefers-http",
        TARGET_GROUP,
        GOOD_TARGET_GROUP,
        {**GOOD_TARGET_GROUP, "healthCheck": {"protocol": "TCP", "port": "8140"}},
        "only checks that a port listens (TCP)",
    ),
    (
        "pe-failure-detection-time",
        TARGET_GROUP,
        GOOD_TARGET_GROUP,
        {**GOOD_TARGET_GROUP, "healthCheck": {"protocol": "HTTPS", "path": "/status/v1/simple"}},
        "30 s x 3 = 90 s",
    ),
    (
        "pe-compile-master-hardening",
        INSTANCE,
        GOOD_INSTANCE,
        {**GOOD_INSTANCE, "associatePublicIpAddress": True},
        "compile master has a public IP",
    ),
    (
        "pe-no-open-ssh",
        INGRESS_RULE,
        {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIpv4": "192.0.2.0/24"},
        {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIpv4": "0.0.0.0/0"},
        "SSH (port 22) is open to the whole internet",
    ),
    (
        "pe-pcp-connection-termination",
        TARGET_GROUP,
        GOOD_TARGET_GROUP,
        {**GOOD_TARGET_GROUP, "connectionTermination": False},
        "keeps PXP connections on a deregistered broker",
    ),
]


@pytest.mark.parametrize(
    ("rule", "resource_type", "good", "bad", "message"), CASES, ids=[c[0] for c in CASES]
)
def test_each_resource_policy_passes_good_and_flags_bad(
    rule: str, resource_type: str, good: dict[str, Any], bad: dict[str, Any], message: str
) -> None:
    assert resource(rule, resource_type, good, urn=POOL_URN) == []
    found = resource(rule, resource_type, bad, urn=POOL_URN)
    assert len(found) == 1 and message in found[0].message, found


def test_pcp_idle_minimum_is_pack_config() -> None:
    props = {"port": 8142, "protocol": "TCP", "tcpIdleTimeoutSeconds": 1200}
    assert check_resource(
        RULE["pe-pcp-idle-timeout"], type=LISTENER, props=props, config={"minimumSeconds": 1800}
    )
    assert check_resource(RULE["pe-pcp-idle-timeout"], type=LISTENER, props={"port": 8142, "protocol": "TCP"})


def test_failure_detection_bound_is_pack_config() -> None:
    rule = RULE["pe-failure-detection-time"]
    assert check_resource(rule, type=TARGET_GROUP, props=GOOD_TARGET_GROUP, config={"maximumSeconds": 15})


def test_disabled_health_check_is_mandatory_violation() -> None:
    props = {**GOOD_TARGET_GROUP, "healthCheck": {"enabled": False}}
    found = resource("pe-health-check-status-endpoint", TARGET_GROUP, props)
    assert found and "health checks off" in found[0].message


def test_other_ports_and_other_instances_are_left_alone() -> None:
    assert resource("pe-listener-tcp-pass-through", LISTENER, {"port": 443, "protocol": "TLS"}) == []
    assert resource("pe-compile-master-hardening", INSTANCE, {"associatePublicIpAddress": True}) == []
    tagged = {"associatePublicIpAddress": True, "tags": {"pe-lb:role": "compile-master"}}
    assert resource("pe-compile-master-hardening", INSTANCE, tagged)


@pytest.mark.parametrize(
    ("resource_type", "props"),
    [
        (
            SECURITY_GROUP_RULE,
            {
                "type": "ingress",
                "protocol": "tcp",
                "fromPort": 0,
                "toPort": 1024,
                "cidrBlocks": ["0.0.0.0/0"],
            },
        ),
        (
            SECURITY_GROUP,
            {"ingress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "ipv6CidrBlocks": ["::/0"]}]},
        ),
        (INGRESS_RULE, {"ipProtocol": "-1", "cidrIpv4": "0.0.0.0/0"}),
    ],
)
def test_open_ssh_in_every_rule_shape(resource_type: str, props: dict[str, Any]) -> None:
    assert resource("pe-no-open-ssh", resource_type, props)


# --- stack policies on the whole program -------------------------------------------------------------


@pytest.fixture
def example_config(stack_config: dict[str, Any]) -> dict[str, Any]:
    """The example stack (Pulumi.dev.yaml) plus the secrets a user sets with --secret."""
    example = yaml.safe_load((PROJECT_DIR / "Pulumi.dev.yaml").read_text())["config"]
    config = {k.removeprefix("pe-lb:"): v for k, v in example.items() if k.startswith("pe-lb:")}
    return {**config, "sshPrivateKey": stack_config["sshPrivateKey"]}


def test_example_stack_has_no_violations(example_config: dict[str, Any]) -> None:
    graph = run_main(example_config)
    assert all_violations(graph) == []


def test_default_stack_without_dns_has_no_violations(stack_config: dict[str, Any]) -> None:
    assert all_violations(run_main(stack_config)) == []


def stack_rule(graph: Graph, name: str) -> list[Violation]:
    return check_stack(RULE[name], policy_resources(graph))


def test_pool_wiring_flags_a_compile_master_outside_a_target_group(stack_config: dict[str, Any]) -> None:
    graph = run_main(stack_config)
    graph.resources = [r for r in graph.resources if r.name != "pe-lb-1-8142"]
    found = stack_rule(graph, "pe-pool-wiring")
    assert [v.message for v in found] == [
        "compile master pe-lb-1 is not registered in the 8142 target group(s); agents and PXP connections "
        "need it in both"
    ]


def test_pool_wiring_flags_a_missing_pe_repo_command(stack_config: dict[str, Any]) -> None:
    graph = run_main(stack_config)
    graph.resources = [r for r in graph.resources if r.type != "command:remote:Command"]
    found = stack_rule(graph, "pe-pool-wiring")
    assert len(found) == 1 and "no pe_repo command points compile_master_pool_address" in found[0].message


def test_pool_wiring_accepts_an_address_unknown_at_preview(stack_config: dict[str, Any]) -> None:
    graph = run_main(stack_config)
    resources = policy_resources(graph)
    command = next(r for r in resources if r.resource_type == "command:remote:Command")
    command.props = {**command.props, "create": object()}  # what preview sends for a computed value
    assert check_stack(RULE["pe-pool-wiring"], resources) == []


def test_open_agent_ports_allowed_on_internet_facing_pool(stack_config: dict[str, Any]) -> None:
    open_internal = run_main({**stack_config, "agentCidrs": ["0.0.0.0/0"]})
    found = stack_rule(open_internal, "pe-open-agent-ports-only-internet-facing")
    assert {v.message.split(" opens ")[1].split(" ")[0] for v in found} == {"8140", "8142"}
    open_public = run_main({**stack_config, "agentCidrs": ["0.0.0.0/0"], "internal": False})
    assert stack_rule(open_public, "pe-open-agent-ports-only-internet-facing") == []


# --- mutated programs: each yields exactly the expected violation ------------------------------------


def mutate(resource_type: type, change: Callable[[dict[str, Any]], None], named: str = "") -> Any:
    """A stack transformation changing the props of every resource of one class whose name ends ``named``."""

    def transformation(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if not isinstance(args.resource, resource_type) or not args.name.endswith(named):
            return None
        props = dict(args.props)
        change(props)
        return pulumi.ResourceTransformationResult(props, args.opts)

    return transformation


def only_port(port: int, change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def apply(props: dict[str, Any]) -> None:
        if props.get("port") == port:
            change(props)

    return apply


MUTATIONS: list[tuple[str, dict[str, Any], Any, str, str]] = [
    (
        "pcp idle timeout 350",
        {},
        lambda aws: mutate(
            aws.lb.Listener, only_port(8142, lambda p: p.update(tcp_idle_timeout_seconds=350))
        ),
        "pe-pcp-idle-timeout",
        "closes idle connections after 350 s",
    ),
    (
        "TLS listener",
        {},
        lambda aws: mutate(aws.lb.Listener, only_port(8140, lambda p: p.update(protocol="TLS"))),
        "pe-listener-tcp-pass-through",
        "the 8140 listener uses TLS",
    ),
    (
        "public IP",
        {},
        lambda aws: mutate(aws.ec2.Instance, lambda p: p.update(associate_public_ip_address=True)),
        "pe-compile-master-hardening",
        "has a public IP",
    ),
    (
        "IMDSv1",
        {},
        lambda aws: mutate(
            aws.ec2.Instance, lambda p: p.update(metadata_options={"http_tokens": "optional"})
        ),
        "pe-compile-master-hardening",
        "allows IMDSv1",
    ),
    (
        "unencrypted root",
        {},
        lambda aws: mutate(aws.ec2.Instance, lambda p: p.update(root_block_device={"encrypted": False})),
        "pe-compile-master-hardening",
        "root volume is not encrypted",
    ),
    (
        # The stack config refuses adminCidrs that admit the internet; a user's own program may not.
        "open SSH",
        {"adminCidrs": ["192.0.2.0/24"]},
        lambda aws: mutate(
            aws.vpc.SecurityGroupIngressRule,
            lambda p: p.update(cidr_ipv4="0.0.0.0/0") if p.get("from_port") == 22 else None,
        ),
        "pe-no-open-ssh",
        "SSH (port 22) is open",
    ),
    (
        "open SSH in pieces",
        {"adminCidrs": ["192.0.2.0/24", "198.51.100.0/24"]},
        lambda aws: mutate(
            aws.vpc.SecurityGroupIngressRule,
            lambda p: (
                p.update(
                    cidr_ipv4={"192.0.2.0/24": "0.0.0.0/1", "198.51.100.0/24": "128.0.0.0/1"}[p["cidr_ipv4"]]
                )
                if p.get("from_port") == 22
                else None
            ),
        ),
        "pe-no-open-ssh-in-pieces",
        "SSH (port 22) is open to the whole internet in pieces (0.0.0.0/1, 128.0.0.0/1)",
    ),
    (
        # Each /8 alone passes; two together are more than any one organisation holds.
        "SSH from a share of the internet",
        {"adminCidrs": ["192.0.2.0/24", "198.51.100.0/24"]},
        lambda aws: mutate(
            aws.vpc.SecurityGroupIngressRule,
            lambda p: (
                p.update(
                    cidr_ipv4={"192.0.2.0/24": "1.0.0.0/8", "198.51.100.0/24": "2.0.0.0/8"}[p["cidr_ipv4"]]
                )
                if p.get("from_port") == 22
                else None
            ),
        ),
        "pe-no-open-ssh-in-pieces",
        "SSH (port 22) is open to 33,554,432 public IPv4 addresses together (1.0.0.0/8, 2.0.0.0/8), "
        "more than a /8 holds (16,777,216)",
    ),
    (
        "status path /",
        {},
        lambda aws: mutate(aws.lb.TargetGroup, lambda p: p.update(health_check={**_health(p), "path": "/"})),
        "pe-health-check-status-endpoint",
        "checks '/'",
    ),
    (
        "TCP health check",
        {"healthCheckProtocol": "TCP"},
        None,
        "pe-health-check-prefers-http",
        "only checks that a port listens",
    ),
    (
        "slow detection",
        {},
        lambda aws: mutate(
            aws.lb.TargetGroup, lambda p: p.update(health_check={**_health(p), "interval": 30})
        ),
        "pe-failure-detection-time",
        "30 s x 2 = 60 s",
    ),
    (
        "no PCP connection termination",
        {},
        lambda aws: mutate(
            aws.lb.TargetGroup, only_port(8142, lambda p: p.update(connection_termination=False))
        ),
        "pe-pcp-connection-termination",
        "keeps PXP connections",
    ),
    (
        "no cross-zone",
        {},
        lambda aws: mutate(aws.lb.LoadBalancer, lambda p: p.update(enable_cross_zone_load_balancing=False)),
        "pe-cross-zone",
        "balances within each AZ only",
    ),
    (
        "pe_repo elsewhere",
        {},
        lambda aws: mutate(command.remote.Command, lambda p: p.update(create="true"), named="-pe-repo"),
        "pe-pool-wiring",
        "no pe_repo command points",
    ),
    (
        "agents from anywhere, internal NLB",
        {"agentCidrs": ["0.0.0.0/0"]},
        None,
        "pe-open-agent-ports-only-internet-facing",
        "to the whole internet, but the pool's load balancer is internal",
    ),
]


def _health(props: dict[str, Any]) -> dict[str, Any]:
    check = props["health_check"]
    return {
        "enabled": check.enabled,
        "protocol": check.protocol,
        "port": check.port,
        "path": check.path,
        "matcher": check.matcher,
        "interval": check.interval,
        "timeout": check.timeout,
        "healthy_threshold": check.healthy_threshold,
        "unhealthy_threshold": check.unhealthy_threshold,
    }


@pytest.mark.parametrize(
    ("label", "config", "transformation", "policy", "message"), MUTATIONS, ids=[m[0] for m in MUTATIONS]
)
def test_each_mutation_yields_exactly_its_violation(
    stack_config: dict[str, Any],
    label: str,
    config: dict[str, Any],
    transformation: Any,
    policy: str,
    message: str,
) -> None:
    graph = run_main(
        {**stack_config, **config}, transformation=transformation(aws) if transformation else None
    )
    found = all_violations(graph)
    assert found, label
    assert {v.policy for v in found} == {policy}, found
    assert all(message in v.message for v in found), found


def test_rule_table_builds_policies_with_levels_and_config() -> None:
    built = {rule.name: rule.build() for rule in RULES}
    assert len(built) == len(RULES) >= 7
    assert built["pe-pcp-idle-timeout"].config_schema is not None
    assert built["pe-pcp-idle-timeout"].config_schema.properties["minimumSeconds"]["default"] == 900
    levels = {rule.name: rule.level.value for rule in RULES}
    assert levels["pe-health-check-prefers-http"] == "advisory"
    assert levels["pe-listener-tcp-pass-through"] == "mandatory"


def test_pack_entry_point_is_not_imported_by_tests() -> None:
    """policy/__main__.py starts a server; the rules live in policy/rules.py."""
    source = (PROJECT_DIR / "policy" / "__main__.py").read_text()
    assert "PolicyPack(" in source and "from policy.rules import RULES" in source
    assert all(isinstance(rule, Rule) for rule in RULES)


def test_pack_requirements_cover_what_the_rules_import_with_the_projects_pins() -> None:
    def pins(path: str) -> dict[str, str]:
        lines = (PROJECT_DIR / path).read_text().splitlines()
        pairs = [line.split("==") for line in lines if "==" in line and not line.startswith("#")]
        return {name.strip().lower(): version.strip() for name, version in pairs}

    pack, project = pins("policy/requirements.txt"), pins("requirements.txt")
    assert set(pack) == {"pulumi", "pulumi-policy"}
    assert all(project[name] == version for name, version in pack.items())


def test_the_pack_needs_no_provider_sdk() -> None:
    """policy/requirements.txt lists no pulumi-aws (271 MB) or pulumi-command: the rules never import them."""
    block = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in ('pulumi_aws', 'pulumi_command', 'boto3'):\n"
        "            raise ImportError(f'{name} is not in the policy pack venv')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from policy.rules import RULES\n"
        "print(len([rule.build() for rule in RULES]))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", block], cwd=PROJECT_DIR, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    assert int(run.stdout) == len(RULES)
    requirements = (PROJECT_DIR / "policy" / "requirements.txt").read_text()
    assert "pulumi-aws" not in requirements and "pulumi-command" not in requirements


def test_pool_wiring_can_be_told_the_pool_address_is_set_elsewhere(stack_config: dict[str, Any]) -> None:
    def without_pe_repo(
        args: pulumi.ResourceTransformationArgs,
    ) -> pulumi.ResourceTransformationResult | None:
        if args.name.endswith("-pe-repo"):
            return pulumi.ResourceTransformationResult({**args.props, "create": "true"}, args.opts)
        return None

    graph = run_main(stack_config, transformation=without_pe_repo)
    found = stack_rule(graph, "pe-pool-wiring")
    assert len(found) == 1 and "set poolAddressManagedElsewhere in this policy's config" in found[0].message
    relaxed = check_stack(
        RULE["pe-pool-wiring"], policy_resources(graph), {"poolAddressManagedElsewhere": True}
    )
    assert relaxed == []


def test_the_example_policy_config_names_real_policies_and_settings() -> None:
    example = json.loads(
        (PROJECT_DIR / "policy" / "examples" / "pool-address-managed-elsewhere.json").read_text()
    )
    for name, settings in example.items():
        rule = RULE[name]
        assert set(settings) - {"enforcementLevel"} <= set(rule.config), name
        assert settings.get("enforcementLevel", "advisory") in ("advisory", "mandatory", "disabled")


def ssh_rules(*sources: str) -> list[PolicyResource]:
    """One SSH ingress rule per source, as the engine sends them."""
    return [
        PolicyResource(
            INGRESS_RULE,
            {
                "ipProtocol": "tcp",
                "fromPort": 22.0,
                "toPort": 22.0,
                "cidrIpv6" if ":" in s else "cidrIpv4": s,
            },
            f"urn:pulumi:test::pe-lb::{INGRESS_RULE}::ssh-{i}",
            f"ssh-{i}",
            options(),
            None,
            None,
            [],
            {},
        )
        for i, s in enumerate(sources)
    ]


def test_ssh_from_the_internet_in_slash_8_pieces_is_flagged() -> None:
    """1.0.0.0/8 ... 255.0.0.0/8: no rule is the internet, together they are most of it."""
    found = check_stack(RULE["pe-no-open-ssh-in-pieces"], ssh_rules(*(f"{i}.0.0.0/8" for i in range(1, 256))))
    assert len(found) == 1
    assert found[0].message.startswith(
        "SSH (port 22) is open to 3,702,258,688 public IPv4 addresses together (1.0.0.0/8, 2.0.0.0/8, "
    )
    assert "and 247 more), more than a /8 holds (16,777,216)" in found[0].message


def test_ssh_from_the_ipv6_internet_is_flagged() -> None:
    found = check_stack(RULE["pe-no-open-ssh-in-pieces"], ssh_rules("2000::/3"))
    assert (
        len(found) == 1
        and "public IPv6 addresses together (2000::/3), more than a /16 holds" in found[0].message
    )


@pytest.mark.parametrize(
    "sources",
    [
        ("1.0.0.0/8",),
        ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "203.0.113.0/24"),
        ("2001:db8::/32", "2a00:1450::/16", "fc00::/7"),
    ],
)
def test_ssh_from_one_organisations_networks_passes(sources: tuple[str, ...]) -> None:
    assert check_stack(RULE["pe-no-open-ssh-in-pieces"], ssh_rules(*sources)) == []


def test_config_and_policy_share_the_rule() -> None:
    """What the stack config refuses for adminCidrs, the pack flags in any program."""
    for sources in (["1.0.0.0/8", "2.0.0.0/8"], ["2000::/3"], ["0.0.0.0/1", "128.0.0.0/1"]):
        assert validation.too_much_of_the_internet(sources)
        assert check_stack(RULE["pe-no-open-ssh-in-pieces"], ssh_rules(*sources))


def test_a_least_connections_stack_has_no_violations(stack_config: dict[str, Any]) -> None:
    assert all_violations(run_main({**stack_config, "balancing": "least-connections"})) == []


def test_pool_wiring_flags_an_haproxy_instance_outside_a_target_group(stack_config: dict[str, Any]) -> None:
    graph = run_main({**stack_config, "balancing": "least-connections"})
    graph.resources = [r for r in graph.resources if r.name != "pe-lb-haproxy-1-8140"]
    assert [v.message for v in stack_rule(graph, "pe-pool-wiring")] == [
        "HAProxy instance pe-lb-haproxy-1 is not registered in the 8140 target group(s); agents and PXP "
        "connections need it in both"
    ]


def test_pool_wiring_flags_a_compile_master_neither_in_a_group_nor_behind_haproxy(
    stack_config: dict[str, Any],
) -> None:
    graph = run_main({**stack_config, "balancing": "least-connections"})
    graph.resources = [r for r in graph.resources if r.type != "aws:route53/record:Record"]
    found = stack_rule(graph, "pe-pool-wiring")
    assert sorted(v.message.split(" is not")[0] for v in found) == [
        f"compile master pe-lb-{i}" for i in range(3)
    ]
