"""Feeds a mocks-recorded graph through the policy rules, as the engine would."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)

from policy.rules import RULES, Rule
from tests.harness import Graph, Recorded


@dataclass(frozen=True)
class Violation:
    policy: str
    message: str
    urn: str | None


def options(parent: str | None = None) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=parent,
    )


def resource_args(
    resource_type: str, props: Mapping[str, Any], config: Mapping[str, Any], urn: str = "", name: str = "r"
) -> ResourceValidationArgs:
    urn = urn or f"urn:pulumi:test::pe-lb::{resource_type}::{name}"
    return ResourceValidationArgs(resource_type, props, urn, name, options(), None, config)


def policy_resources(graph: Graph) -> list[PolicyResource]:
    by_urn: dict[str, PolicyResource] = {}
    for recorded in graph.resources:
        by_urn[recorded.urn] = PolicyResource(
            recorded.type,
            {**recorded.inputs, **recorded.outputs},
            recorded.urn,
            recorded.name,
            options(recorded.parent),
            None,
            None,
            [],
            {},
        )
    for recorded in graph.resources:
        resource = by_urn[recorded.urn]
        resource.parent = by_urn.get(recorded.parent)
        resource.dependencies = [by_urn[u] for u in recorded.dependencies if u in by_urn]
        resource.property_dependencies = {
            prop: [by_urn[u] for u in urns if u in by_urn]
            for prop, urns in recorded.property_dependencies.items()
        }
    return list(by_urn.values())


def check_resource(
    rule: Rule, recorded: Recorded | None = None, config: Mapping[str, Any] | None = None, **direct: Any
) -> list[Violation]:
    """Violations of one resource rule, for a recorded resource or for type= and props= given directly."""
    messages: list[Violation] = []
    settings = {**rule.defaults(), **(config or {})}
    if recorded is not None:
        args = resource_args(recorded.type, recorded.inputs, settings, recorded.urn, recorded.name)
    else:
        args = resource_args(direct["type"], direct["props"], settings, direct.get("urn", ""))
    rule.validate(args, _collector(rule, messages))
    return messages


def check_stack(
    rule: Rule, resources: list[PolicyResource], config: Mapping[str, Any] | None = None
) -> list[Violation]:
    messages: list[Violation] = []
    args = StackValidationArgs(resources, {**rule.defaults(), **(config or {})})
    rule.validate(args, _collector(rule, messages))
    return messages


def _collector(rule: Rule, messages: list[Violation]) -> Callable[[str, str | None], None]:
    def report(message: str, urn: str | None = None) -> None:
        messages.append(Violation(rule.name, message, urn))

    return report


def all_violations(graph: Graph, config: Mapping[str, Mapping[str, Any]] | None = None) -> list[Violation]:
    """Every resource through every resource rule, and the stack through every stack rule."""
    found: list[Violation] = []
    resources = policy_resources(graph)
    for rule in RULES:
        rule_config = (config or {}).get(rule.name)
        if rule.stack:
            found += check_stack(rule, resources, rule_config)
        else:
            for recorded in graph.resources:
                found += check_resource(rule, recorded, rule_config)
    return found
