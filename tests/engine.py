"""What the next `pulumi up` does to a running stack: the engine's steps, in the engine's order.

The program runs twice under mocks (tests/harness.py): as the stack was deployed and as it is
now. ``plan`` turns the stack's state and the new graph into the steps the Pulumi engine takes.
Each rule below is one function that names the engine function it follows, read in
pulumi/pulumi at 1b59498 (pkg/resource/deploy/step_generator.go, step.go, step_executor.go,
deployment_executor.go):

- each resource gets its steps when it registers, in registration (dependency) order: same,
  create, update or replace (``generateStepsFromDiff``);
- a replacement creates the new resource first and marks the old one pending-delete; the
  old one is deleted with the other deletes at the end (``continueStepsFromDiff``,
  ``CreateStep.Apply``, ``GenerateDeletes``);
- with ``deleteBeforeReplace`` the old one is deleted first, and before it every dependent
  that the deletion would replace (``calculateDependentReplacements``); those are created
  again when they register;
- deletes run last, dependents before what they depend on (``ScheduleDeletes``);
- a failing step cancels the rest of the update (``executeChain``, ``cancelDueToError``):
  replaced resources stay pending-delete until the end of the next update.

Mocks give a resource the same outputs whatever it replaces, so a replacement here gets new
ones (``_renewed``): its dependents then see a new id, ARN or DNS name where the real one
changes, and only there (create-before-delete: dependents are diffed against the new
resource's real outputs, never all marked changed).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.harness import Graph, Recorded, engine_urn

Path = tuple[str | int, ...]
"""A property path, as the engine's resource.PropertyPath: keys and list indexes."""

INSTANCE = "aws:ec2/instance:Instance"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"

FORCE_NEW: dict[str, set[str]] = {
    # terraform-provider-aws internal/service/ec2/ec2_instance.go, resourceInstance's schema:
    # ForceNew on ami, associate_public_ip_address, availability_zone, key_name, subnet_id, the whole
    # private_dns_name_options block, root_block_device's encrypted and kms_key_id; user_data only
    # through customdiff.ForceNewIf(user_data_replace_on_change) (_user_data_replaces);
    # instance_type and root_block_device.volume_size change in place.
    INSTANCE: {
        "ami",
        "associatePublicIpAddress",
        "availabilityZone",
        "keyName",
        "subnetId",
        "privateDnsNameOptions",
        "rootBlockDevice.encrypted",
        "rootBlockDevice.kmsKeyId",
    },
    "aws:lb/targetGroupAttachment:TargetGroupAttachment": {
        "targetGroupArn",
        "targetId",
        "port",
        "availabilityZone",
    },
    TARGET_GROUP: {"port", "protocol", "vpcId", "targetType", "name", "namePrefix"},
    "aws:lb/listener:Listener": {"loadBalancerArn"},
    # Subnets: _nlb_loses_a_subnet (customizeDiffLoadBalancerNLB).
    LOAD_BALANCER: {"internal", "loadBalancerType", "name", "namePrefix"},
    # internal/service/route53/record.go: ForceNew on name and zone_id; `type` is not (an update
    # deletes and creates the record set in one change batch).
    "aws:route53/record:Record": {"name", "zoneId"},
    "aws:ec2/securityGroup:SecurityGroup": {"vpcId", "name", "description"},
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": {"securityGroupId"},
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": {"securityGroupId"},
    # internal/service/cloudwatch/metric_alarm.go and dashboard.go: ForceNew on alarm_name and
    # dashboard_name; thresholds, dimensions, actions and the body change in place.
    "aws:cloudwatch/metricAlarm:MetricAlarm": {"name"},
    "aws:cloudwatch/dashboard:Dashboard": {"dashboardName"},
}
"""Inputs the AWS provider replaces a resource for: any change at or under each path."""

RENEWED_BY_REPLACEMENT: dict[str, tuple[str, ...]] = {
    INSTANCE: ("id", "privateIp"),
    LOAD_BALANCER: ("id", "arn", "dnsName"),
    TARGET_GROUP: ("id", "arn"),
}
"""Outputs a replacement gets anew (default: its id); values holding one (an instance's ARN and
private DNS name hold its id) follow it."""

OPS = ("same", "create", "update", "replace", "create-replacement", "delete-replaced", "delete")
"""The engine's step ops (step.go, OpSame ... OpDeleteReplaced)."""


@dataclass(frozen=True)
class Step:
    """One step of the engine, as the step executor runs it."""

    op: str
    """One of OPS."""
    urn: str
    old: Recorded | None = None
    """The resource as the state holds it (what an update starts from, what a delete deletes)."""
    new: Recorded | None = None
    """The resource as the step leaves it: the provider's inputs and the outputs it will have."""
    keys: frozenset[str] = frozenset()
    """Inputs that changed (top-level keys)."""

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[1]

    @property
    def type(self) -> str:
        return self.urn.split("::")[2].rsplit("$", 1)[-1]

    def __str__(self) -> str:
        return f"{self.op} {self.type.rsplit(':', 1)[-1]} {self.name}"


@dataclass
class State:
    """What a stack's state holds: custom resources in dependency order, with the values the
    provider gave them, and those replaced but not yet deleted."""

    resources: list[Recorded] = field(default_factory=list)
    pending_delete: list[Recorded] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    """URNs of the component resources (state without values): aliases may match them too."""

    @classmethod
    def of(cls, graph: Graph) -> State:
        """The state a successful `pulumi up` of ``graph`` leaves (first deployment: mocks' values)."""
        return cls([_with_id(r) for r in graph.resources if r.custom], [], _components(graph))

    def live(self, urn: str) -> Recorded | None:
        return next((r for r in self.resources if r.urn == urn), None)

    def apply(self, step: Step) -> None:
        """What a step that succeeded leaves in the state (the Apply of each step in step.go)."""
        if step.op in ("create", "create-replacement", "update", "same"):
            assert step.new is not None
            index = next((i for i, r in enumerate(self.resources) if r.urn == step.urn), None)
            if index is None:
                self.resources.append(step.new)
                return
            if step.op == "create-replacement":
                # CreateStep.Apply: `if s.replacing && s.pendingDelete { s.old.Delete = true }`.
                self.pending_delete.append(self.resources[index])
            self.resources[index] = step.new
        elif step.op == "delete-replaced" and any(r is step.old for r in self.pending_delete):
            self.pending_delete = [r for r in self.pending_delete if r is not step.old]
        elif step.op in ("delete", "delete-replaced"):
            self.resources = [r for r in self.resources if r is not step.old]

    def copy(self) -> State:
        return State(list(self.resources), list(self.pending_delete), list(self.components))


@dataclass
class Plan:
    """The steps of one `pulumi up`, in the engine's order."""

    steps: list[Step]
    before: State
    after: Graph

    def op(self, type_token: str, name: str) -> str:
        """What happens to a resource: create, update, replace, delete or same."""
        return self._summary()[self._urn(type_token, name)]

    def names(self, op: str, type_token: str | None = None) -> set[str]:
        return {
            urn.rsplit("::", 1)[1]
            for urn, summary in self._summary().items()
            if summary == op and (type_token is None or urn.rsplit("::", 1)[0].endswith(type_token))
        }

    def changed(self, type_token: str, name: str) -> frozenset[str]:
        urn = self._urn(type_token, name)
        return next((s.keys for s in self.steps if s.urn == urn and s.keys), frozenset())

    def step(self, op: str, type_token: str, name: str) -> int:
        """Where a step comes in the update (its index in ``steps``)."""
        urn = self._urn(type_token, name)
        return next(i for i, s in enumerate(self.steps) if s.urn == urn and s.op == op)

    def next_state(self) -> State:
        """The state once every step has succeeded."""
        state = self.before.copy()
        for step in self.steps:
            state.apply(step)
        state.components = _components(self.after)
        return state

    def _urn(self, type_token: str, name: str) -> str:
        return next(s.urn for s in self.steps if s.urn.endswith(f"{type_token}::{name}"))

    def _summary(self) -> dict[str, str]:
        """Per resource: the op of its registration, else (no longer in the program) delete."""
        summary: dict[str, str] = {}
        for step in self.steps:
            if step.op in ("create-replacement", "replace"):
                summary[step.urn] = "replace"
            elif step.op in ("same", "create", "update"):
                summary[step.urn] = step.op
        for step in self.steps:
            summary.setdefault(step.urn, "delete")
        return summary


def plan(before: Graph | State, after: Graph) -> Plan:
    """The steps `pulumi up` takes from ``before`` (a deployed graph or a stack's state) to ``after``.

    Follows ``GenerateSteps`` for each resource in registration order, then ``GenerateDeletes``
    and ``ScheduleDeletes`` once the program is done (``performPostSteps``).
    """
    state = taken_over_by_aliases(before if isinstance(before, State) else State.of(before), after)
    values = _stack_values(state, after)
    steps: list[Step] = []
    registered: set[str] = set()
    replaced: set[str] = set()
    deleted_first: set[str] = set()
    for goal in (r for r in after.resources if r.custom):
        registered.add(goal.urn)
        old = state.live(goal.urn)
        if old is None:
            steps.append(Step("create", goal.urn, new=_with_values(_with_id(goal), values)))
        elif goal.urn in deleted_first:
            steps += _recreate(old, _renewed(old, goal, values), replaced)
        else:
            steps += _generate_steps_from_diff(old, goal, state, values, replaced, deleted_first, registered)
    pending = [s.old for s in steps if s.op == "create-replacement" and s.urn not in deleted_first]
    deletes = generate_deletes(state, registered, deleted_first, [r for r in pending if r is not None])
    return Plan(steps + schedule_deletes(deletes), state, after)


def _components(graph: Graph) -> list[str]:
    return [r.urn for r in graph.resources if not r.custom]


def taken_over_by_aliases(state: State, after: Graph) -> State:
    """The state with each old resource a new one answers to (an alias) under the new URN.

    ``getOldResource``: a resource is looked up by its URN, then by each alias in order; one
    found by an alias is the same resource (diffed, never created and deleted), and the
    snapshot's references to it take its new URN. ``sg.aliases`` (what each parent was found
    as) is what ``generateAliases`` multiplies out for the children.
    """
    olds = {r.urn for r in state.resources} | set(state.components)
    found: dict[str, str] = {}
    for goal in after.resources:
        if goal.urn in olds:
            continue
        match = next((alias for alias in generate_aliases(goal, found) if alias in olds), None)
        if match is not None:
            found[goal.urn] = match
    renamed = {old: new for new, old in found.items()}
    if not renamed:
        return state

    def moved(resource: Recorded) -> Recorded:
        return dataclasses.replace(
            resource,
            urn=renamed.get(resource.urn, resource.urn),
            parent=renamed.get(resource.parent, resource.parent),
            dependencies=[renamed.get(d, d) for d in resource.dependencies],
            property_dependencies={
                key: [renamed.get(d, d) for d in deps] for key, deps in resource.property_dependencies.items()
            },
        )

    return State(
        [moved(r) for r in state.resources],
        [moved(r) for r in state.pending_delete],
        [renamed.get(urn, urn) for urn in state.components],
    )


def generate_aliases(goal: Recorded, parents_found: Mapping[str, str]) -> list[str]:
    """``generateAliases``: the resource's own aliases, then, when its parent was found by an
    alias, the same place under the parent's old URN (``inheritedChildAlias``)."""
    own = [*goal.aliases, *(collapse_alias_to_urn(goal, spec, parents_found) for spec in goal.alias_specs)]
    result = list(own)
    parent_alias = parents_found.get(goal.parent)
    if parent_alias is not None:
        parent_name = goal.parent.rsplit("::", 1)[1]
        result.append(inherited_child_alias(goal.type, goal.name, parent_name, parent_alias))
        for alias in own:
            alias_type = alias.split("::")[2].rsplit("$", 1)[-1]
            result.append(
                inherited_child_alias(alias_type, alias.rsplit("::", 1)[1], parent_name, parent_alias)
            )
    return list(dict.fromkeys(result))


def collapse_alias_to_urn(goal: Recorded, spec: Mapping[str, Any], parents_found: Mapping[str, str]) -> str:
    """``collapseAliasToUrn``: the alias's name, type and parent, each defaulting to the resource's;
    a parent found by an alias stands for its old URN; ``noParent`` (or the root stack) is none."""
    given = spec.get("parentUrn") or ""
    parent = parents_found.get(given, given) if given else goal.parent
    if spec.get("noParent"):
        parent = ""
    return engine_urn(parent, spec.get("type") or goal.type, spec.get("name") or goal.name)


def inherited_child_alias(child_type: str, child_name: str, parent_name: str, parent_alias: str) -> str:
    """``inheritedChildAlias``: the child under its parent's old URN; a name built on the parent's
    (``{parent}-details``) takes the parent's old name in front."""
    alias_name = child_name
    if child_name.startswith(parent_name):
        alias_name = parent_alias.rsplit("::", 1)[1] + child_name[len(parent_name) :]
    return engine_urn(parent_alias, child_type, alias_name)


def _generate_steps_from_diff(
    old: Recorded,
    goal: Recorded,
    state: State,
    values: dict[str, str],
    replaced: set[str],
    deleted_first: set[str],
    registered: set[str],
) -> list[Step]:
    """``generateStepsFromDiff`` / ``continueStepsFromDiff``: same, update or a replacement.

    The provider diffs the old inputs against the new ones after ``ignoreChanges``; a
    replacement then takes the program's inputs as they are (the engine calls Check again on
    the goal, so an ignored change does not hold).
    """
    kept = _ignoring_changes(old, _with_values(_with_id(goal), values))
    paths = changed_paths(old.inputs, kept.inputs)
    keys = frozenset(str(path[0]) for path in paths)
    if not (replaces_with(goal, replaced) or requires_replacement(old, kept, paths)):
        op = "update" if paths else "same"
        return [Step(op, goal.urn, old=old, new=_with_outputs(kept, old), keys=keys)]
    replaced.add(goal.urn)
    renewed = _renewed(old, goal, values)
    if not goal.delete_before_replace:
        # "note that the delete step is generated "later" on, after all creates/updates finish."
        return [
            Step("create-replacement", goal.urn, old=old, new=renewed, keys=keys),
            Step("replace", goal.urn, old=old, new=renewed, keys=keys),
        ]
    deleted_first.add(goal.urn)
    steps = []
    dependents = calculate_dependent_replacements(old, state, registered)
    dependents += find_dependent_cascade_replacements(old.urn, state)
    # "Deletions must occur in reverse dependency order, and `deps` is returned in dependency order."
    for dependent in reversed(dependents):
        if dependent.urn not in deleted_first:
            steps.append(Step("delete-replaced", dependent.urn, old=dependent))
            deleted_first.add(dependent.urn)
    return [
        *steps,
        Step("delete-replaced", goal.urn, old=old),
        Step("replace", goal.urn, old=old, new=renewed, keys=keys),
        Step("create-replacement", goal.urn, old=old, new=renewed, keys=keys),
    ]


def _recreate(old: Recorded, new: Recorded, replaced: set[str]) -> list[Step]:
    """``generateResourceSteps``, case 1 "recreating": a dependent deleted first by another
    resource's delete-before-replace is created again when it registers, whatever its diff."""
    replaced.add(old.urn)
    return [Step("replace", old.urn, old=old, new=new), Step("create-replacement", old.urn, old=old, new=new)]


def replaces_with(goal: Recorded, replaced: set[str]) -> bool:
    """``stepGenerator.diff``: a resource whose ``replaceWith`` names a resource being replaced is
    replaced too ("marked for replacement because ... (in its ReplaceWith list) is being replaced")."""
    return any(urn in replaced for urn in goal.replace_with)


def requires_replacement(old: Recorded, new: Recorded, paths: Iterable[Path]) -> bool:
    """The provider's Diff, then ``applyReplaceOnChanges`` (the ``replaceOnChanges`` option)."""
    paths = list(paths)
    return provider_replaces(old, new, paths) or apply_replace_on_changes(new.replace_on_changes, paths)


def provider_replaces(old: Recorded, new: Recorded, paths: list[Path]) -> bool:
    """Whether the resource's provider answers Diff with a replacement.

    pulumi-command (pulumi-go-provider infer, ``derivedResourceController.Diff``): its schema marks
    ``triggers`` replaceOnChanges, and ``forceReplace(k)`` looks up each detailed-diff path as a
    schema property, so only a change of the whole list (added, removed) is the provider's; a
    change inside it is the engine's ``triggers[*]`` rule (apply_replace_on_changes). AWS
    (terraform-provider-aws through the bridge): a change at or under a ForceNew attribute.
    """
    if new.type.startswith("command:"):
        return ("triggers",) in paths
    return (
        any(_forces_new(new.type, path) for path in paths)
        or _user_data_replaces(new, paths)
        or _nlb_loses_a_subnet(old, new)
    )


def apply_replace_on_changes(rules: Iterable[str], paths: Iterable[Path]) -> bool:
    """``applyReplaceOnChanges``: a changed path (detailed diff) or changed top-level key that a
    rule's ``PropertyPath.Contains`` turns into a replacement. ``triggers[*]`` contains
    ``triggers[0]`` and anything under it, not ``triggers`` itself (a shorter path)."""
    changed = set(paths) | {path[:1] for path in paths}
    return any(_contains(parse_path(rule), path) for rule in rules for path in changed)


def calculate_dependent_replacements(root: Recorded, state: State, registered: set[str]) -> list[Recorded]:
    """``calculateDependentReplacements``: before a delete-before-replace, the resources that
    depend on ``root`` in the old state (``DependingOn``, not yet registered in this update) and
    that its deletion would replace: an input that depends on the replace set becomes unknown,
    and the provider's diff (with ``replaceOnChanges``) says whether that replaces them."""
    replace_set = {root.urn}
    found = []
    for dependent in depending_on(root, state.resources, exclude=registered):
        unknown = [(key,) for key, urns in dependent.property_dependencies.items() if replace_set & set(urns)]
        if unknown and requires_replacement(dependent, dependent, unknown):
            found.append(dependent)
            replace_set.add(dependent.urn)
    return found


def find_dependent_cascade_replacements(urn: str, state: State) -> list[Recorded]:
    """``findDependentCascadeReplacements``: resources whose ``replaceWith`` names ``urn`` go with it
    when it is deleted first."""
    return [r for r in state.resources if urn in r.replace_with]


def depending_on(root: Recorded, resources: list[Recorded], exclude: set[str]) -> list[Recorded]:
    """``DependencyGraph.DependingOn``: every resource after ``root`` that depends on it, directly
    or through another one, in dependency order."""
    found: set[str] = {root.urn}
    dependents = []
    start = next(i for i, r in enumerate(resources) if r is root)
    for resource in resources[start + 1 :]:
        if resource.urn not in exclude and dependencies_of(resource) & found:
            found.add(resource.urn)
            dependents.append(resource)
    return dependents


def generate_deletes(
    state: State, registered: set[str], deleted_first: set[str], replaced: list[Recorded]
) -> list[Step]:
    """``GenerateDeletes``: every resource marked Delete (``replaced`` create-before-delete in this
    update, or pending-delete from one before) is deleted as replaced; every resource the program
    no longer registers is deleted; none twice (those deleted first by a delete-before-replace)."""
    deletes = [Step("delete-replaced", r.urn, old=r) for r in [*state.pending_delete, *replaced]]
    for resource in state.resources:
        if resource.urn not in registered and resource.urn not in deleted_first:
            deletes.append(Step("delete", resource.urn, old=resource))
    return deletes


def schedule_deletes(deletes: list[Step]) -> list[Step]:
    """``ScheduleDeletes``: antichains of the condemned, those depending on no other condemned
    resource first, then the list reversed: dependents are deleted before their dependencies.
    The engine runs each antichain in parallel; here in reverse state order."""
    condemned = list(deletes)
    antichains: list[list[Step]] = []
    while condemned:
        urns = {s.urn for s in condemned}
        free = [s for s in condemned if not (dependencies_of(s.old) - {s.urn}) & urns] or condemned
        antichains.append(free)
        condemned = [s for s in condemned if all(s is not f for f in free)]
    return [step for antichain in reversed(antichains) for step in reversed(antichain)]


def dependencies_of(resource: Recorded | None) -> set[str]:
    """``DependencyGraph.DependenciesOf``: its dependencies, property dependencies and parent."""
    if resource is None:
        return set()
    urns = set(resource.dependencies) | {resource.parent}
    for property_urns in resource.property_dependencies.values():
        urns |= set(property_urns)
    return urns


def changed_paths(old: Any, new: Any, path: Path = ()) -> list[Path]:
    """The detailed diff: paths whose values differ, down into maps and lists."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [p for key in keys for p in changed_paths(old.get(key), new.get(key), (*path, key))]
    if isinstance(old, list) and isinstance(new, list):
        common = min(len(old), len(new))
        extra = [(*path, i) for i in range(common, max(len(old), len(new)))]
        return [p for i in range(common) for p in changed_paths(old[i], new[i], (*path, i))] + extra
    return [path]


def parse_path(text: str) -> Path:
    """``resource.ParsePropertyPath`` for the forms used here: ``a.b``, ``a[0]``, ``a[*]``."""
    return tuple(
        int(index) if index.isdigit() else (index or key)
        for key, index in re.findall(r"([^.\[\]]+)|\[(\*|\d+)\]", text)
    )


def _contains(rule: Path, path: Path) -> bool:
    """``PropertyPath.Contains``: ``path`` is ``rule`` or under it, ``*`` matching any key or index."""
    return len(path) >= len(rule) and all(r == "*" or r == p for r, p in zip(rule, path, strict=False))


def _forces_new(type_token: str, path: Path) -> bool:
    names = tuple(str(part) for part in path if not isinstance(part, int))
    for forced in FORCE_NEW.get(type_token, set()):
        attribute = tuple(forced.split("."))
        if names[: len(attribute)] == attribute or attribute[: len(names)] == names:
            return True
    return False


def _user_data_replaces(new: Recorded, paths: list[Path]) -> bool:
    """aws_instance: ``customdiff.ForceNewIf("user_data", ... user_data_replace_on_change)``."""
    return (
        new.type == INSTANCE
        and bool(new.inputs.get("userDataReplaceOnChange"))
        and any(path[0] == "userData" for path in paths)
    )


def _nlb_loses_a_subnet(old: Recorded, new: Recorded) -> bool:
    """aws_lb ``customizeDiffLoadBalancerNLB``: adding a subnet to an NLB is an update; removing or
    swapping one forces a new NLB."""
    if new.type != LOAD_BALANCER:
        return False
    return not set(old.inputs.get("subnets") or []) <= set(new.inputs.get("subnets") or [])


def _ignoring_changes(old: Recorded, new: Recorded) -> Recorded:
    """``processIgnoreChanges``: an ignored input keeps the value the state holds."""
    inputs = dict(new.inputs)
    for ignored in new.ignore_changes:
        key = str(parse_path(ignored)[0])
        if key in old.inputs:
            inputs[key] = old.inputs[key]
    return dataclasses.replace(new, raw_inputs=inputs)


def _with_outputs(new: Recorded, old: Recorded) -> Recorded:
    """An updated or unchanged resource keeps its identity (id, ARN) from the state."""
    return dataclasses.replace(new, outputs={**new.outputs, **_identity(old)})


def _identity(resource: Recorded) -> dict[str, Any]:
    keys = RENEWED_BY_REPLACEMENT.get(resource.type, ("id",))
    return {key: resource.outputs[key] for key in keys if key in resource.outputs}


def _with_id(resource: Recorded) -> Recorded:
    """The resource with its id among its outputs, as the mocks (tests/harness.py) made it."""
    if "id" in resource.outputs:
        return resource
    if resource.type == INSTANCE:
        resource_id = str(resource.outputs["arn"]).rsplit("/", 1)[1]
    elif resource.type == "aws:ec2/securityGroup:SecurityGroup":
        resource_id = f"sg-{resource.name}"
    else:
        resource_id = f"{resource.name}-id"
    return dataclasses.replace(resource, outputs={"id": resource_id, **resource.outputs})


def _stack_values(state: State, after: Graph) -> dict[str, str]:
    """Mocks' values -> the stack's: for resources replaced in earlier updates, the mocks still
    answer with the first values."""
    values: dict[str, str] = {}
    for goal in (_with_id(r) for r in after.resources if r.custom):
        live = state.live(goal.urn)
        if live is not None:
            for key, value in _identity(goal).items():
                if isinstance(value, str) and live.outputs.get(key) != value:
                    values[value] = str(live.outputs[key])
    return values


def _renewed(old: Recorded, goal: Recorded, values: dict[str, str]) -> Recorded:
    """The resource a replacement creates: the program's inputs, and new values for what a new
    resource of its type gets anew (ids, ARNs, DNS names); ``values`` learns them, so every
    later resource that uses them sees them change."""
    mock = _identity(_with_id(goal))
    for key, value in _identity(old).items():
        if isinstance(value, str) and key in mock:
            values[str(mock[key])] = _fresh(value)
    return _with_values(_with_id(goal), values)


def _fresh(value: str) -> str:
    """A value like ``value`` that no resource had: the same shape (an instance id stays one)."""
    digest = hashlib.sha256(value.encode()).hexdigest()
    if re.fullmatch(r"i-[0-9a-f]{17}", value):
        return "i-" + digest[:17]
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", value):
        return ".".join(
            [*value.split(".")[:2], str(int(digest[:2], 16)), str(int(digest[2:4], 16) % 250 + 1)]
        )
    label, dot, rest = value.partition(".")
    return f"{label}-{digest[:6]}{dot}{rest}"


def _with_values(resource: Recorded, values: Mapping[str, str]) -> Recorded:
    """The resource with the stack's values where the mocks' stand (inputs and outputs), each
    string rewritten in one pass."""
    if not values:
        return resource
    pattern = re.compile("|".join(re.escape(old) for old in sorted(values, key=len, reverse=True)))

    def substituted(value: Any) -> Any:
        if isinstance(value, str):
            return pattern.sub(lambda match: values[match.group(0)], value)
        if isinstance(value, dict):
            return {key: substituted(item) for key, item in value.items()}
        if isinstance(value, list):
            return [substituted(item) for item in value]
        return value

    return dataclasses.replace(
        resource, raw_inputs=substituted(resource.inputs), outputs=substituted(resource.outputs)
    )
