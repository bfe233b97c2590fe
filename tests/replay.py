"""`pulumi up` replayed step by step against a small world, with agents checked after every step.

The steps are tests/engine.py's, in the engine's order. The world they act on:

- the PE primary: the stub (tests/stub_primary.py). A command's create, update or delete runs
  the real primary script there, with the action and arguments of the recorded command text;
- compile masters (Instance steps): at boot each requests a certificate for its certname,
  `puppet` and the PE_POOL_NAMES of its user data, as the bootstrap does; once its join has
  it signed, puppetserver runs (healthy) and presents that certificate;
- the NLB (LoadBalancer, Listener, TargetGroup, TargetGroupAttachment steps): listeners forward
  to target groups, whose registered targets serve when healthy; the NLB's security groups
  admit agents by their ingress rules;
- Route53 (Record steps): alias records to an NLB's DNS name, and the discovery record (A values)
  of balancing=least-connections;
- HAProxy instances (Instance steps with the HAProxy role): an NLB target that forwards to the
  compile masters its discovery name resolves to, those signed and whose security groups admit it;
- agents: after every step, an agent resolves its pool address (a Route53 alias, or the NLB's
  own DNS name), reaches the NLB on 8140 and 8142, and checks that every healthy target of
  each listener presents a valid certificate naming that address (the NLB may pick any of
  them). Agents take PE Agent's `server_list` on their next Puppet run, so two are checked:
  one given the current `server_list` at once, one still on the address it had when the
  update began.

A failing step (a script that exits non-zero, the health gate finding a sick target, or one a
test names) stops the update there, as the engine does; the state keeps what ran.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components import pe
from components.scripts.pe_primary.__main__ import ACTIONS
from tests.engine import Plan, State, Step, plan
from tests.harness import Graph, Recorded
from tests.stub_primary import RequestRefusedError, StubPrimary, stub_primary

AGENT_IP = "10.1.2.3"
"""Where the emulated agents connect from (inside the test stacks' agentCidrs)."""


class StepFailedError(Exception):
    """A step failed: the engine cancels the rest of the update."""


@dataclass(frozen=True)
class Check:
    """Whether an agent was served after a step."""

    step: Step
    agent: str
    address: str
    problem: str = ""
    """Why it was not served ("" when it was)."""

    def __str__(self) -> str:
        outcome = "served" if not self.problem else f"NOT served: {self.problem}"
        return f"after {self.step}: {self.agent} at {self.address}: {outcome}"


@dataclass
class Up:
    """One `pulumi up`: the steps the engine planned, those that ran, and what agents saw."""

    plan: Plan
    ran: list[Step] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    failed: Step | None = None
    error: str = ""

    @property
    def served_throughout(self) -> bool:
        return all(not check.problem for check in self.checks)

    def report(self) -> str:
        """Every check that failed, one a line (for assertion messages)."""
        return "\n".join(str(check) for check in self.checks if check.problem) or "served throughout"


def stranded_at(up: Up) -> Step | None:
    """The first step after which an agent was not served (None: served at every step)."""
    return next((check.step for check in up.checks if check.problem), None)


@dataclass(frozen=True)
class CompileMaster:
    """A compile master's instance: the certificate its puppetserver presents."""

    certname: str
    names: frozenset[str]
    """The DNS names its certificate holds."""
    address: str = ""
    security_groups: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Haproxy:
    """An HAProxy instance (balancing=least-connections): what it resolves, where it connects from."""

    discovery_name: str
    security_groups: frozenset[str]


@dataclass(frozen=True)
class LoadBalancer:
    """An NLB: its DNS name, and the security groups that decide who reaches its listeners."""

    dns_name: str
    security_groups: frozenset[str]


@dataclass(frozen=True)
class IngressRule:
    """A security group's ingress rule (an IPv4 CIDR; a prefix list admits no emulated agent)."""

    security_group: str
    ports: range
    cidr: ipaddress.IPv4Network | None
    source_group: str | None = None
    """A rule admitting another security group's members (referencedSecurityGroupId)."""


class World:
    """The stack's state and what it stands for: AWS, the PE primary, agents."""

    def __init__(self, primary: StubPrimary, agent_ip: str = AGENT_IP) -> None:
        self.primary = primary
        self.agent_ip = ipaddress.ip_address(agent_ip)
        self.state = State()
        self.load_balancers: dict[str, LoadBalancer] = {}
        """By ARN."""
        self.listeners: dict[tuple[str, int], str] = {}
        """(load balancer ARN, port) -> the target group it forwards to."""
        self.target_groups: dict[str, set[str]] = {}
        """ARN -> registered instance ids."""
        self.records: dict[str, str] = {}
        """Record name -> the DNS name it aliases."""
        self.discovery: dict[str, list[str]] = {}
        """A record's name -> its values (the discovery record of least-connections)."""
        self.haproxies: dict[str, Haproxy] = {}
        """By instance id."""
        self.compile_masters: dict[str, CompileMaster] = {}
        """By instance id."""
        self.ingress: dict[str, IngressRule] = {}
        """By rule id."""
        self.signed_once: set[str] = set()
        """Certnames the CA has signed: their puppetserver runs."""
        self.address = ""
        """The pool address agents had when the update began."""

    def up(self, after: Graph, *, fail: Callable[[Step], bool] = lambda step: False) -> Up:
        """Run the steps `pulumi up` takes to ``after``, in order, checking agents after each."""
        up = Up(plan(self.state, after))
        # Olds that new resources answer to (aliases) are the same resources under their new URNs.
        self.state = up.plan.before.copy()
        for step in up.plan.steps:
            try:
                if fail(step):
                    raise StepFailedError(f"{step} failed (the test made it fail)")
                self._apply(step)
            except StepFailedError as error:
                # executeChain: "If any step in the chain fails ... signalling cancellation".
                up.failed, up.error = step, str(error)
                break
            self.state.apply(step)
            up.ran.append(step)
            self.signed_once |= self.primary.signed
            up.checks += self._checks(step)
        # Component resources are in the state once registered; a parent registers before its children.
        self.state.components = list(
            dict.fromkeys([*self.state.components, *(r.urn for r in after.resources if not r.custom)])
        )
        self.address = self._given_address() or self.address
        return up

    # ---- agents

    def _given_address(self) -> str:
        """The pool address in PE Agent's server_list ("" when pe-lb set none)."""
        servers = self.primary.agent_settings().get("server_list") or []
        return str(servers[0]).rsplit(":", 1)[0] if servers else ""

    def _checks(self, step: Step) -> list[Check]:
        agents = {
            "an agent on PE Agent's server_list": self._given_address() or self.address,
            "an agent still on the address it had when the update began": self.address,
        }
        signed = self.primary.signed
        return [
            Check(step, agent, address, self._problem(address, signed)) for agent, address in agents.items()
        ]

    def _problem(self, address: str, signed: set[str]) -> str:
        """Why an agent using ``address`` is not served ("" when it is)."""
        found = self._resolve(address)
        if found is None:
            return f"{address} leads to no load balancer"
        arn, load_balancer = found
        for port in pe.POOL_PORTS:
            if not self._admits(load_balancer, port):
                return f"the NLB's security groups do not admit {self.agent_ip} on {port}"
            group = self.listeners.get((arn, port))
            if group is None:
                return f"{load_balancer.dns_name} has no listener on {port}"
            # Every compile master a healthy target hands agents to (HAProxy: those it balances to).
            healthy = [
                compile_master
                for target in sorted(self.target_groups.get(group, set()))
                for compile_master in self._serving(target, port)
            ]
            if not healthy:
                return f"no healthy compile master in the {port} target group"
            for compile_master in healthy:
                if address not in compile_master.names:
                    return (
                        f"{compile_master.certname} (in the {port} group) has a certificate without {address}"
                    )
                if compile_master.certname not in signed:
                    return f"{compile_master.certname} (in the {port} group) has a revoked certificate"
        return ""

    def _serving(self, target: str, port: int) -> list[CompileMaster]:
        """The compile masters a target hands agents to on ``port``: itself once its certificate is
        signed (puppetserver runs); an HAProxy instance, those its discovery name resolves to that
        run and admit it (their security groups). None: the target is unhealthy."""
        if target in self.compile_masters:
            compile_master = self.compile_masters[target]
            return [compile_master] if compile_master.certname in self.signed_once else []
        haproxy = self.haproxies.get(target)
        if haproxy is None:
            return []
        addresses = set(self.discovery.get(haproxy.discovery_name, []))
        return [
            compile_master
            for compile_master in self.compile_masters.values()
            if compile_master.address in addresses
            and compile_master.certname in self.signed_once
            and any(
                rule.security_group in compile_master.security_groups
                and rule.source_group in haproxy.security_groups
                and port in rule.ports
                for rule in self.ingress.values()
            )
        ]

    def _resolve(self, address: str) -> tuple[str, LoadBalancer] | None:
        """Route53 first (an alias to an NLB's name), else the NLB whose own DNS name it is."""
        name = self.records.get(_dns(address), _dns(address))
        return next(((arn, lb) for arn, lb in self.load_balancers.items() if _dns(lb.dns_name) == name), None)

    def _admits(self, load_balancer: LoadBalancer, port: int) -> bool:
        return any(
            rule.security_group in load_balancer.security_groups
            and port in rule.ports
            and rule.cidr is not None
            and self.agent_ip in rule.cidr
            for rule in self.ingress.values()
        )

    # ---- what each step does

    def _apply(self, step: Step) -> None:
        if step.op in ("same", "replace"):
            return
        creates = step.op in ("create", "create-replacement", "update")
        resource = step.new if creates else step.old
        assert resource is not None
        handler = {
            "aws:lb/loadBalancer:LoadBalancer": self._load_balancer,
            "aws:lb/listener:Listener": self._listener,
            "aws:lb/targetGroup:TargetGroup": self._target_group,
            "aws:lb/targetGroupAttachment:TargetGroupAttachment": self._attachment,
            "aws:route53/record:Record": self._record,
            "aws:ec2/instance:Instance": self._instance,
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": self._ingress_rule,
            "command:remote:Command": self._remote_command,
            "command:local:Command": self._health_gate,
        }.get(resource.type)
        if handler is not None:
            handler(step.op, resource)

    def _load_balancer(self, op: str, resource: Recorded) -> None:
        arn = resource.outputs["arn"]
        if op.startswith("delete"):
            # Deleting a load balancer deletes its listeners.
            del self.load_balancers[arn]
            self.listeners = {key: group for key, group in self.listeners.items() if key[0] != arn}
            return
        groups = frozenset(resource.inputs.get("securityGroups") or [])
        self.load_balancers[arn] = LoadBalancer(resource.outputs["dnsName"], groups)

    def _listener(self, op: str, resource: Recorded) -> None:
        key = (resource.inputs["loadBalancerArn"], int(resource.inputs["port"]))
        if op.startswith("delete"):
            self.listeners.pop(key, None)
            return
        group = resource.inputs["defaultActions"][0]["targetGroupArn"]
        if key[0] not in self.load_balancers or group not in self.target_groups:
            raise StepFailedError(f"listener {key}: no such load balancer or target group")
        self.listeners[key] = group

    def _target_group(self, op: str, resource: Recorded) -> None:
        arn = resource.outputs["arn"]
        if op.startswith("delete"):
            if arn in self.listeners.values():
                raise StepFailedError(f"ResourceInUse: target group {arn} is used by a listener")
            del self.target_groups[arn]
        else:
            self.target_groups.setdefault(arn, set())

    def _attachment(self, op: str, resource: Recorded) -> None:
        group, target = resource.inputs["targetGroupArn"], resource.inputs["targetId"]
        if op.startswith("delete"):
            # DeregisterTargets: gone from rotation at once (it does not wait for the delay).
            self.target_groups.get(group, set()).discard(target)
        elif group not in self.target_groups:
            raise StepFailedError(f"TargetGroupNotFound: {group}")
        else:
            self.target_groups[group].add(target)

    def _record(self, op: str, resource: Recorded) -> None:
        name = _dns(resource.inputs["name"])
        if op.startswith("delete"):
            self.records.pop(name, None)
            self.discovery.pop(name, None)
        elif resource.inputs.get("aliases"):
            self.records[name] = _dns(resource.inputs["aliases"][0]["name"])
        else:
            self.discovery[name] = list(resource.inputs["records"])

    def _instance(self, op: str, resource: Recorded) -> None:
        instance_id = resource.outputs["id"]
        if op.startswith("delete"):
            self.compile_masters.pop(instance_id, None)
            self.haproxies.pop(instance_id, None)
            return
        if op == "update":
            return
        security_groups = frozenset(resource.inputs.get("vpcSecurityGroupIds") or [])
        if (resource.inputs.get("tags") or {}).get(pe.ROLE_TAG) == pe.HAPROXY_ROLE:
            # HAProxy resolves the name its config's server-template names.
            found = re.search(r"server-template \S+ \S+ ([\w.-]+):", resource.inputs["userData"])
            assert found, "no server-template in the HAProxy instance's user data"
            self.haproxies[instance_id] = Haproxy(_dns(found.group(1)), security_groups)
            return
        # The bootstrap: certname from the instance's id and region, a request naming the pool.
        certname = pe.instance_certname(resource.outputs["arn"])
        pool_names = user_data_parameter(resource.inputs["userData"], "PE_POOL_NAMES").split(",")
        names = [certname, "puppet", *pool_names]
        try:
            self.primary.request_certificate(certname, alt_names=names)
        except RequestRefusedError as error:
            raise StepFailedError(f"{certname}'s bootstrap: {error}") from None
        self.compile_masters[instance_id] = CompileMaster(
            certname, frozenset(names), str(resource.outputs.get("privateIp", "")), security_groups
        )

    def _ingress_rule(self, op: str, resource: Recorded) -> None:
        rule_id = resource.outputs["id"]
        if op.startswith("delete"):
            self.ingress.pop(rule_id, None)
            return
        inputs = resource.inputs
        cidr = ipaddress.ip_network(inputs["cidrIpv4"]) if inputs.get("cidrIpv4") else None
        ports = range(int(inputs.get("fromPort", 0)), int(inputs.get("toPort", 65535)) + 1)
        self.ingress[rule_id] = IngressRule(
            inputs["securityGroupId"],
            ports,
            cidr if isinstance(cidr, ipaddress.IPv4Network) else None,
            inputs.get("referencedSecurityGroupId"),
        )

    def _remote_command(self, op: str, resource: Recorded) -> None:
        """pulumi-command: create runs `create`; an update runs `update`, else `create` again; a
        delete runs `delete` (the old resource's text, from the state)."""
        inputs = resource.inputs
        if op.startswith("delete"):
            text = inputs.get("delete")
        elif op == "update":
            text = inputs.get("update") or inputs.get("create")
        else:
            text = inputs.get("create")
        argv = primary_arguments(text or "")
        if argv is None:
            return
        result = self.primary.run(*argv)
        if result.returncode != 0:
            raise StepFailedError(f"{' '.join(argv[:2])}: {result.stderr.strip()}")

    def _health_gate(self, op: str, resource: Recorded) -> None:
        """`poolctl wait-healthy --load-balancer ARN [--instance ID]...`: every registered target (or
        each one named) healthy, in each target group of the load balancer's listeners."""
        if op.startswith("delete") or "poolctl wait-healthy" not in str(resource.inputs.get("create")):
            # Other local commands (an HAProxy's drain wait) change nothing here.
            return
        argv = shlex.split(resource.inputs["create"].rsplit("; ", 1)[1])
        arn = argv[argv.index("--load-balancer") + 1]
        waited_for = {argv[i + 1] for i, flag in enumerate(argv) if flag == "--instance"}
        groups = [group for (lb, _), group in self.listeners.items() if lb == arn]
        targets = [target for group in groups for target in self.target_groups[group]]
        if waited_for:
            # `--instance ID`: that compile master, registered and healthy in every group.
            missing = [i for i in waited_for for group in groups if i not in self.target_groups[group]]
            targets = [target for target in targets if target in waited_for] + missing
        sick = [
            target for target in targets if not all(self._serving(target, port) for port in pe.POOL_PORTS)
        ]
        if not groups or sick:
            raise StepFailedError(f"poolctl wait-healthy: not healthy: {sorted(sick) or 'no target group'}")


def primary_arguments(text: str) -> list[str] | None:
    """The primary script's action and arguments in a command's text (None: it runs none, e.g. it
    installs the script). A leave's deregistration delay is not waited out: the NLB here drains
    at once."""
    words = shlex.split(text)
    start = next((i for i, word in enumerate(words) if word in ACTIONS), None)
    if start is None:
        return None
    argv = words[start:]
    return [*argv, "--drain-seconds", "0"] if argv[0] == "leave" else argv


def user_data_parameter(user_data: str, name: str) -> str:
    """A parameter the pool rendered into the bootstrap (`export NAME=value`)."""
    match = re.search(rf"^export {name}=(.*)$", user_data, re.MULTILINE)
    assert match, f"no {name} in the user data"
    return shlex.split(match.group(1))[0]


def _dns(name: Any) -> str:
    return str(name).lower().rstrip(".")


@contextmanager
def deployed(root: Path, graph: Graph, agent_ip: str = AGENT_IP) -> Iterator[World]:
    """A world where ``graph`` was deployed by a first `pulumi up` (agents unchecked: there was no
    pool before it), agents using the pool address it gave them."""
    with stub_primary(root) as primary:
        world = World(primary, agent_ip)
        first = world.up(graph)
        assert first.failed is None, first.error
        world.address = world.address or str(graph.outputs["poolAddress"])
        yield world


def previous_release(graph: Graph) -> Graph:
    """``graph`` as pe-lb's previous release declared it (the committed version before the script
    was installed on the primary): every command carried the script on stdin and ran it as
    ``"$py" - ACTION ...``, with no install command, no `update` text and no holder (``--owner``)."""
    resources = []
    for resource in graph.resources:
        if resource.type == "command:remote:Command":
            if "stdin" in resource.inputs:
                continue
            inputs = {
                key: _previous_text(value) if key in ("create", "delete") else value
                for key, value in resource.inputs.items()
                if key != "update"
            }
            inputs["stdin"] = "# pe-lb's primary script, as the previous release sent it\n"
            resource = dataclasses.replace(resource, raw_inputs=inputs)
        resources.append(resource)
    return dataclasses.replace(graph, resources=resources)


def _previous_text(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    text = re.sub(r'"\$py" \S*/current\.py ', '"$py" - ', text)
    return re.sub(r" --owner \S+| --update", "", text)
