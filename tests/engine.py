"""What the next `pulumi up` does, replayed from two mocked graphs (before and after a change).

Mocks show one create; the engine's decisions on an update are rules, written down in
`../shared/reference/pulumi-aws-day2.md` and replayed here:

- a resource absent before is created, one absent after is deleted;
- a changed input (minus `ignore_changes`) is an update, unless the provider forces a new
  resource for it (FORCE_NEW), it is in `replace_on_changes` or it is a command's `triggers`;
- a resource whose `replace_with` target is replaced is replaced too;
- a replaced resource's outputs are unknown at preview, so every input that depends on it
  (property dependencies) counts as changed for its dependents, and so on down the graph.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tests.harness import Graph, Recorded

FORCE_NEW: dict[str, set[str]] = {
    # aws_instance: ami, subnet_id, key_name force a new instance; user_data does with
    # user_data_replace_on_change (which the pool sets); instance_type is a stop/start in place.
    "aws:ec2/instance:Instance": {"ami", "subnetId", "keyName", "userData", "availabilityZone"},
    "aws:lb/targetGroupAttachment:TargetGroupAttachment": {"targetGroupArn", "targetId", "port"},
    "aws:lb/targetGroup:TargetGroup": {"port", "protocol", "vpcId", "targetType", "name", "namePrefix"},
    "aws:lb/listener:Listener": {"loadBalancerArn"},
    "aws:lb/loadBalancer:LoadBalancer": {"internal", "loadBalancerType", "name", "namePrefix"},
    "aws:route53/record:Record": {"name", "type", "zoneId"},
    "aws:ec2/securityGroup:SecurityGroup": {"vpcId", "name", "description"},
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": {"securityGroupId"},
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": {"securityGroupId"},
    "command:remote:Command": {"triggers"},
    "command:local:Command": {"triggers"},
}


@dataclass(frozen=True)
class Step:
    op: str
    """create, update, replace, delete or same."""
    changed: frozenset[str] = frozenset()


class Plan:
    def __init__(self, steps: dict[str, Step], before: Graph, after: Graph) -> None:
        self.steps = steps
        self.before = before
        self.after = after

    def op(self, type_token: str, name: str) -> str:
        urn = next(u for u in self.steps if u.endswith(f"{type_token}::{name}"))
        return self.steps[urn].op

    def names(self, op: str, type_token: str | None = None) -> set[str]:
        return {
            urn.rsplit("::", 1)[1]
            for urn, step in self.steps.items()
            if step.op == op and (type_token is None or urn.rsplit("::", 1)[0].endswith(type_token))
        }

    def changed(self, type_token: str, name: str) -> frozenset[str]:
        urn = next(u for u in self.steps if u.endswith(f"{type_token}::{name}"))
        return self.steps[urn].changed


def plan(before: Graph, after: Graph) -> Plan:
    old = {r.urn: r for r in before.resources if r.custom}
    new = {r.urn: r for r in after.resources if r.custom}
    steps: dict[str, Step] = {urn: Step("delete") for urn in old if urn not in new}
    replaced: set[str] = set()
    for resource in after.resources:  # registration order: dependencies first
        if not resource.custom:
            continue
        if resource.urn not in old:
            steps[resource.urn] = Step("create")
            continue
        changed = _changed(old[resource.urn], resource) | _unknown_inputs(resource, replaced)
        changed -= set(resource.ignore_changes)
        forced = FORCE_NEW.get(resource.type, set()) | set(resource.replace_on_changes)
        replace = bool(changed & forced) or _nlb_loses_a_subnet(old[resource.urn], resource)
        replace = replace or any(target in replaced for target in resource.replace_with)
        if replace:
            replaced.add(resource.urn)
        steps[resource.urn] = Step(
            "replace" if replace else "update" if changed else "same", frozenset(changed)
        )
    return Plan(steps, before, after)


def _changed(old: Recorded, new: Recorded) -> set[str]:
    keys = set(old.inputs) | set(new.inputs)
    return {key for key in keys if old.inputs.get(key) != new.inputs.get(key)}


def _unknown_inputs(resource: Recorded, replaced: Iterable[str]) -> set[str]:
    replaced = set(replaced)
    return {prop for prop, urns in resource.property_dependencies.items() if replaced & set(urns)}


def _nlb_loses_a_subnet(old: Recorded, new: Recorded) -> bool:
    """Adding a subnet to an NLB is an update; removing or swapping one forces a new NLB."""
    if new.type != "aws:lb/loadBalancer:LoadBalancer":
        return False
    return not set(old.inputs.get("subnets") or []) <= set(new.inputs.get("subnets") or [])
