"""Runs Pulumi programs under mocks and records the whole resource graph.

Every registered resource is kept with its type, name, inputs (secrets still
marked), parent and dependencies, so tests can assert on the graph as a whole.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import runpy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime.rpc import _special_secret_sig, _special_sig_key
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

PROJECT_DIR = Path(__file__).resolve().parent.parent
PROJECT = "pe-lb"
STACK = "test"

SECRET_MARK = "[secret]"

VPC_CIDR = "10.20.0.0/16"
VPC_CIDRS = [VPC_CIDR]
"""The VPC's CIDR block associations (a test may add secondary ones)."""
MOCK_AMI = "ami-0123456789abcdef0"
SUBNET_ZONES = {
    "subnet-0aaaaaaaaaaaaaaa1": "eu-west-1a",
    "subnet-0bbbbbbbbbbbbbbb2": "eu-west-1b",
    "subnet-0ccccccccccccccc3": "eu-west-1c",
    "subnet-0ddddddddddddddd4": "eu-west-1a",
}
"""Availability zone of each subnet the mocked AWS knows."""
HOSTED_ZONE_NAME = "example.com."
EXISTING_RECORDS: list[dict[str, Any]] = []
EXISTING_LOAD_BALANCER: dict[str, Any] | None = None
"""The NLB an earlier `pulumi up` made (getLoadBalancer by its pool tag); None: a first `up`."""
"""Route53 records the mocked hosted zone holds (a test may add one)."""
MOCK_CA = "-----BEGIN CERTIFICATE-----\nMIIBmockPEcaBundle\n-----END CERTIFICATE-----\n"
MOCK_HIERA = "---\nversion: 5\nhierarchy:\n  - name: common\n    path: common.yaml\n"
PRIMARY_FILES = json.dumps({"caCertificate": MOCK_CA, "hieraYaml": MOCK_HIERA, "platform": "el-9-x86_64"})
"""What `pe_primary.py read` prints on the primary."""
READ_AGAIN_ANSWER = f"OK\n{PRIMARY_FILES}"
"""What read_primary_files.sh prints where pulumi runs (a test may change the primary since)."""
READ_AGAIN_CALLS: list[dict[str, Any]] = []
TAGGED_POOLS: list[str] = []
"""pe-lb:pool tags of the NLBs the tagging API knows (a test may add one)."""
"""Each command:local:run invoke's arguments, as the program made them."""


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(_special_sig_key) == _special_secret_sig


def reveal(value: Any) -> Any:
    """The value with every secret marker removed (what the provider would see)."""
    if is_secret(value):
        return reveal(value["value"])
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


def redact(value: Any) -> Any:
    """The value as state and logs may show it: secrets replaced by a mark."""
    if is_secret(value):
        return SECRET_MARK
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


@dataclass
class Recorded:
    urn: str
    type: str
    name: str
    raw_inputs: dict[str, Any]
    parent: str
    dependencies: list[str]
    custom: bool
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    additional_secret_outputs: list[str] = field(default_factory=list)
    replace_on_changes: list[str] = field(default_factory=list)
    delete_before_replace: bool = False
    ignore_changes: list[str] = field(default_factory=list)
    replace_with: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    """Former URNs this resource answers to (given as URNs)."""
    alias_specs: list[dict[str, Any]] = field(default_factory=list)
    """Former places given as parts (name, type, parentUrn, noParent): the engine makes URNs of them."""

    @property
    def inputs(self) -> dict[str, Any]:
        revealed: dict[str, Any] = reveal(self.raw_inputs)
        return revealed


@dataclass
class Graph:
    resources: list[Recorded]
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)
    error: BaseException | None = None

    def of_type(self, type_token: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name: str | None = None) -> Recorded:
        found = [r for r in self.of_type(type_token) if name is None or r.name == name]
        assert len(found) == 1, f"expected one {type_token} {name or ''}, found {[r.name for r in found]}"
        return found[0]

    def by_urn(self, urn: str) -> Recorded:
        return next(r for r in self.resources if r.urn == urn)

    def ancestors(self, resource: Recorded) -> Iterator[Recorded]:
        urns = {r.urn: r for r in self.resources}
        parent = urns.get(resource.parent)
        while parent is not None:
            yield parent
            parent = urns.get(parent.parent)

    def depends_on(self, resource: Recorded, other: Recorded) -> bool:
        """Whether ``resource`` waits for ``other``, directly or through a component's children."""
        targets = {other.urn} | {r.urn for r in self.resources if other in self.ancestors(r)}
        return bool(targets & set(resource.dependencies))

    def plaintext(self) -> str:
        """Everything the engine would store or print in the clear."""
        public_outputs = {k: v for k, v in self.outputs.items() if k not in self.secret_outputs}
        return json.dumps(
            {"resources": [redact(r.raw_inputs) for r in self.resources], "outputs": public_outputs},
            default=str,
        )


ROOT_STACK_TYPE = "pulumi:pulumi:Stack"


def engine_urn(parent: str, type_token: str, name: str) -> str:
    """The URN the engine gives a resource: its parent's whole type chain, then its type and name
    (pulumi/pulumi sdk/go/common/resource/urn.go, ``CreateURN``; the root stack's type is left out).

    The mock monitor keeps only the parent's own type, so a resource moved under a new component
    would keep its URN there; the graph records the engine's.
    """
    chain = type_token
    if parent:
        parent_chain = parent.split("::")[2]
        if parent_chain != ROOT_STACK_TYPE:
            chain = f"{parent_chain}${type_token}"
    return f"urn:pulumi:{STACK}::{PROJECT}::{chain}::{name}"


class RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.recorded: list[Recorded] = []
        self.engine_urns: dict[str, str] = {}
        """The mock monitor's URN of each resource -> the engine's."""

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC name)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        urns = self.engine_urns
        parent = urns.get(request.parent, request.parent)
        urn = (
            response.urn
            if request.type == ROOT_STACK_TYPE
            else engine_urn(parent, request.type, request.name)
        )
        urns[response.urn] = urn
        if request.type != ROOT_STACK_TYPE:
            self.recorded.append(
                Recorded(
                    urn=urn,
                    type=request.type,
                    name=request.name,
                    raw_inputs=pulumi.runtime.rpc.deserialize_properties(request.object),
                    parent=parent,
                    dependencies=[urns.get(d, d) for d in request.dependencies],
                    custom=request.custom,
                    property_dependencies={
                        k: [urns.get(d, d) for d in v.urns] for k, v in request.propertyDependencies.items()
                    },
                    outputs=reveal(pulumi.runtime.rpc.deserialize_properties(response.object)),
                    additional_secret_outputs=list(request.additionalSecretOutputs),
                    replace_on_changes=list(request.replaceOnChanges),
                    delete_before_replace=request.deleteBeforeReplace,
                    ignore_changes=list(request.ignoreChanges),
                    replace_with=[urns.get(u, u) for u in request.replace_with],
                    aliases=[*request.aliasURNs, *(alias.urn for alias in request.aliases if alias.urn)],
                    alias_specs=[
                        {
                            "name": alias.spec.name,
                            "type": alias.spec.type,
                            "parentUrn": urns.get(alias.spec.parentUrn, alias.spec.parentUrn),
                            "noParent": alias.spec.noParent,
                        }
                        for alias in request.aliases
                        if alias.HasField("spec")
                    ],
                )
            )
        return response


VPC_DNS = {"support": True, "hostnames": True}
"""The test VPC's DNS attributes (a test may turn one off)."""


class PeLbMocks(pulumi.runtime.Mocks):
    """Answers for the AWS resources and invokes the program uses."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        resource_id = f"{args.name}-id"
        if args.typ == "aws:ec2/instance:Instance":
            resource_id = "i-" + format(abs(hash(args.name)) % 16**17, "017x")
            state["privateIp"] = f"10.20.{len(args.name)}.{abs(hash(args.name)) % 250 + 1}"
            # Resource-name hostnames, as the pool asks for: the certname is the instance id.
            state["privateDns"] = f"{resource_id}.eu-west-1.compute.internal"
            state["arn"] = f"arn:aws:ec2:eu-west-1:123456789012:instance/{resource_id}"
        if args.typ == "aws:lb/loadBalancer:LoadBalancer":
            state["arn"] = (
                f"arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/{args.name}/abc"
            )
            state["dnsName"] = f"{args.name}-abc.elb.eu-west-1.amazonaws.com"
            state["zoneId"] = "Z2IFOLAFXWLO4F"
        if args.typ == "aws:lb/targetGroup:TargetGroup":
            state["arn"] = f"arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/{args.name}/abc"
        if args.typ == "aws:ec2/securityGroup:SecurityGroup":
            resource_id = f"sg-{args.name}"
        if args.typ == "aws:route53/zone:Zone":
            state["zoneId"] = "Z" + format(abs(hash(args.name)) % 16**12, "012X")
        if args.typ == "aws:route53/record:Record":
            state["fqdn"] = args.inputs.get("name")
        if args.typ == "command:remote:Command":
            reads = str(args.inputs.get("create", "")).endswith("current.py read")
            state["stdout"] = PRIMARY_FILES if reads else "pe-lb: ok"
            state["stderr"] = ""
        return resource_id, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == "aws:ec2/getVpc:getVpc":
            associations = [{"cidrBlock": block, "state": "associated"} for block in VPC_CIDRS]
            return {
                "id": args.args.get("id"),
                "cidrBlock": VPC_CIDR,
                "cidrBlockAssociations": associations,
                "enableDnsSupport": VPC_DNS["support"],
                "enableDnsHostnames": VPC_DNS["hostnames"],
            }, []
        if args.token == "aws:ec2/getSubnet:getSubnet":
            subnet = str(args.args.get("id"))
            return {"id": subnet, "availabilityZone": SUBNET_ZONES.get(subnet, "eu-west-1a")}, []
        if args.token == "aws:route53/getZone:getZone":
            return {"zoneId": args.args.get("zoneId"), "name": HOSTED_ZONE_NAME}, []
        if args.token == "aws:route53/getRecords:getRecords":
            pattern = re.compile(str(args.args.get("nameRegex") or ".*"))
            found = [record for record in EXISTING_RECORDS if pattern.match(record["name"])]
            return {"zoneId": args.args.get("zoneId"), "resourceRecordSets": found}, []
        if args.token == "aws:resourcegroupstaggingapi/getResources:getResources":
            mappings = [{"resourceArn": f"arn:aws:elasticloadbalancing:eu-west-1:1:loadbalancer/net/{tag}/x",
                         "tags": {"pe-lb:pool": tag}} for tag in TAGGED_POOLS]  # fmt: skip
            return {"id": "eu-west-1", "resourceTagMappingLists": mappings}, []
        if args.token == "command:local:run":
            READ_AGAIN_CALLS.append(dict(args.args))
            return {"stdout": READ_AGAIN_ANSWER, "stderr": "", "command": args.args.get("command")}, []
        if args.token == "aws:lb/getLoadBalancer:getLoadBalancer":
            if EXISTING_LOAD_BALANCER is None or EXISTING_LOAD_BALANCER["tags"] != args.args.get("tags"):
                # As the provider answers: an invoke that fails (here, a check failure).
                return {}, [("tags", "Search returned 0 results, please revise so only one is returned")]
            return dict(EXISTING_LOAD_BALANCER), []
        return {}, []


class _WarningCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def run(
    program: Callable[[], object],
    config: Mapping[str, Any] | None = None,
    secret_keys: tuple[str, ...] = (),
    *,
    expect_error: bool = False,
) -> Graph:
    """Run ``program`` under mocks with the given ``pe-lb:`` config; return the graph it declared."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        mocks = PeLbMocks()
        monitor = RecordingMonitor(mocks)
        logger = logging.getLogger(f"pe-lb-test-{id(monitor)}")
        collector = _WarningCollector()
        logger.addHandler(collector)
        # A fresh root stack per run: exports and stack transformations must not leak between tests.
        pulumi.runtime.settings.ROOT.set(None)
        pulumi.runtime.set_mocks(
            mocks, project=PROJECT, stack=STACK, preview=False, logger=logger, monitor=monitor
        )
        pulumi.runtime.set_all_config(
            {f"{PROJECT}:{key}": config_string(value) for key, value in (config or {}).items()},
            [f"{PROJECT}:{key}" for key in secret_keys],
        )

        def body() -> None:
            program()

        try:
            _sync_await(run_pulumi_func(body))
        except Exception as error:
            if not expect_error:
                raise
            return Graph(monitor.recorded, warnings=collector.messages, error=error)
        if expect_error:
            raise AssertionError("the program succeeded; an error was expected")
        stack = pulumi.runtime.get_root_resource()
        exported: dict[str, Any] = dict(getattr(stack, "outputs", {}) or {})
        outputs: dict[str, Any] = {}
        secret_outputs: set[str] = set()
        for key, value in exported.items():
            output = pulumi.Output.from_input(value)
            outputs[key] = _sync_await(output.future())
            if _sync_await(output.is_secret()):
                secret_outputs.add(key)
        return Graph(monitor.recorded, outputs, secret_outputs, collector.messages)
    finally:
        asyncio.set_event_loop(None)
        loop.close()


Transformation = Callable[[pulumi.ResourceTransformationArgs], pulumi.ResourceTransformationResult | None]


def run_main(
    config: Mapping[str, Any],
    secret_keys: tuple[str, ...] = ("sshPrivateKey",),
    *,
    expect_error: bool = False,
    transformation: Transformation | None = None,
) -> Graph:
    """Run the project's own __main__.py as `pulumi up` would.

    ``transformation`` changes resources on their way to the engine, as a user's own
    program might (runs in the SDK, so it works under mocks).
    """
    return run_file(
        PROJECT_DIR / "__main__.py",
        config,
        secret_keys,
        expect_error=expect_error,
        transformation=transformation,
    )


def run_file(
    path: Path,
    config: Mapping[str, Any],
    secret_keys: tuple[str, ...] = ("sshPrivateKey",),
    *,
    expect_error: bool = False,
    transformation: Transformation | None = None,
) -> Graph:
    """Run the Pulumi program in ``path`` with this project's stack config."""
    present = tuple(key for key in secret_keys if key in config)

    def program() -> None:
        if transformation is not None:
            pulumi.runtime.register_stack_transformation(transformation)
        runpy.run_path(str(path), run_name="__main__")

    return run(program, config, present, expect_error=expect_error)


def config_string(value: Any) -> str:
    """Config reaches a program as strings; lists and maps as JSON, like `pulumi config set --path`."""
    if isinstance(value, str):
        return value
    return json.dumps(value)
