"""The package schema Pulumi infers for other languages (`pulumi package add`), asserted.

provider/__main__.py hosts these components with component_provider_host, which runs
pulumi.provider.experimental's analyzer over their typed Args and outputs: the same
analysis runs here.
"""

import ast
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.harness import PROJECT_DIR
from tests.packaging import COMPONENTS, component_schema


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return component_schema()


def test_the_plugin_hosts_exactly_these_components() -> None:
    tree = ast.parse((PROJECT_DIR / "provider" / "__main__.py").read_text())
    hosted = next(
        node.value for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "COMPONENTS"
    )  # fmt: skip
    assert isinstance(hosted, ast.List)
    assert {element.id for element in hosted.elts if isinstance(element, ast.Name)} == {
        c.__name__ for c in COMPONENTS
    }
    assert yaml.safe_load((PROJECT_DIR / "provider" / "PulumiPlugin.yaml").read_text()) == {
        "runtime": "python"
    }


def test_every_component_has_its_token(schema: dict[str, Any]) -> None:
    assert set(schema["resources"]) == {f"pe-lb:index:{c.__name__}" for c in COMPONENTS}
    assert all(resource["isComponent"] for resource in schema["resources"].values())


def test_inputs_outputs_and_required(schema: dict[str, Any]) -> None:
    resources = schema["resources"]
    lb = resources["pe-lb:index:PuppetLoadBalancer"]
    assert set(lb["requiredInputs"]) == {"vpcId", "subnetIds", "agentCidrs"}
    assert set(lb["properties"]) == {
        "arn",
        "dnsName",
        "zoneId",
        "poolAddress",
        "securityGroupId",
        "targetGroupArns",
    }
    # Maps keyed by strings, which every language has.
    assert lb["properties"]["targetGroupArns"]["type"] == "object"
    pool = resources["pe-lb:index:CompileMasterPool"]
    assert set(pool["requiredInputs"]) == {
        "primary", "poolAddress", "vpcId", "subnetIds", "loadBalancerSecurityGroupId",
        "primaryCidrs", "amiId",
    }  # fmt: skip
    assert set(pool["properties"]) == {"instanceIds", "privateIps", "certnames", "securityGroupId"}
    # Lists and maps take another resource's output whole (no "plain" on the property itself).
    for name in ("subnetIds", "primaryCidrs", "targetGroupArns", "tags", "adminCidrs"):
        assert "plain" not in pool["inputProperties"][name], name
    assert pool["inputProperties"]["primary"]["$ref"] == "#/types/pe-lb:index:PrimaryAccessArgs"
    access = schema["types"]["pe-lb:index:PrimaryAccessArgs"]
    assert set(access["properties"]) == {"primaryHost", "primaryHostKey", "sshPrivateKey", "sshUser"}
    assert set(access["required"]) == {"primaryHost", "primaryHostKey", "sshPrivateKey"}
    assert set(resources["pe-lb:index:PeRepoPoolAddress"]["requiredInputs"]) == {
        "primary", "poolAddress", "compileMasterCertnames"
    }  # fmt: skip
    assert set(resources["pe-lb:index:PeAgentPoolAddress"]["requiredInputs"]) == {"primary", "poolAddress"}


def test_every_input_output_and_type_property_is_described(schema: dict[str, Any]) -> None:
    undescribed = [
        f"{token}.{name}"
        for token, resource in schema["resources"].items()
        for name, spec in {**resource["inputProperties"], **resource.get("properties", {})}.items()
        if not spec.get("description")
    ] + [
        f"{token}.{name}"
        for token, typ in schema["types"].items()
        for name, spec in typ["properties"].items()
        if not spec.get("description")
    ]
    assert undescribed == []
    assert all(resource.get("description") for resource in schema["resources"].values())


def test_the_ssh_key_is_described_as_a_secret(schema: dict[str, Any]) -> None:
    """This SDK's analyzer cannot mark an input secret in the schema; the component makes the value
    a secret in every language (tests/test_compile_master_pool.py), and the schema says so."""
    key = schema["types"]["pe-lb:index:PrimaryAccessArgs"]["properties"]["sshPrivateKey"]
    assert "secret" in key["description"]


def test_the_yaml_example_uses_only_what_the_schema_offers(schema: dict[str, Any]) -> None:
    program = yaml.safe_load((PROJECT_DIR / "examples" / "yaml" / "Pulumi.yaml").read_text())
    assert program["packages"]["pe-lb"] == "../../provider"
    for name, resource in program["resources"].items():
        spec = schema["resources"][resource["type"]]
        given = set(resource.get("properties", {}))
        assert given <= set(spec["inputProperties"]), (name, given - set(spec["inputProperties"]))
        assert set(spec.get("requiredInputs", [])) <= given, (name, set(spec["requiredInputs"]) - given)
    assert [r["type"] for r in program["resources"].values()] == ["pe-lb:index:PeCompilerPool"]
    outputs = {"pool": "pe-lb:index:PeCompilerPool"}
    text = (PROJECT_DIR / "examples" / "yaml" / "Pulumi.yaml").read_text()
    for resource, token in outputs.items():
        marker = "${" + resource + "."
        for used in {part.split("}")[0] for part in text.split(marker)[1:]}:
            assert used in schema["resources"][token]["properties"], f"{resource}.{used}"


def test_the_yaml_example_points_at_the_plugin_folder() -> None:
    assert (
        (PROJECT_DIR / "examples" / "yaml" / Path("../../provider") / "PulumiPlugin.yaml").resolve().exists()
    )
