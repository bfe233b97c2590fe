"""Compile masters on EC2, spread over subnets, each joined to PE (and made to leave) by the primary."""

import json
import os
import shlex
from collections.abc import Mapping, Sequence
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_aws as aws
import pulumi_command as command

from . import pe, validation
from .instances import at_least_one_subnet, hardened, round_robin
from .network import admit_cidrs, admit_group, tagged, user_tags
from .primary import PrimaryAccess, PrimaryAccessArgs, install_primary_script, primary_command
from .scripts import read_script

DEFAULT_COUNT = 2
DEFAULT_INSTANCE_TYPE = "m6i.xlarge"
"""4 vCPU / 16 GiB: above PE's compiler minimum of 4 vCPU / 8 GB, with room for JRuby."""
DEFAULT_ROOT_VOLUME_GB = 50
ROOT_VOLUME_GB_RANGE = (20, 16384)
"""PE wants room under /opt/puppetlabs; gp3 volumes end at 16 TiB."""
MAX_COMPILE_MASTERS = pe.MAX_COMPILE_MASTERS


BOOTSTRAP_SCRIPT = "compile_master_bootstrap.sh"


class CompileMasterPoolArgs(TypedDict):
    """Where the pool runs; the primary joins each compile master to PE, and makes it leave."""

    primary: PrimaryAccessArgs
    """The PE primary and how to reach it over SSH: every join and leave runs there."""
    pool_address: pulumi.Input[str]
    """DNS name agents use for the pool; it goes into each compile master's certificate."""
    other_pool_names: NotRequired[pulumi.Input[Sequence[pulumi.Input[str]]]]
    """Other names that reach the pool and go into every certificate too, so agents holding any
    of them are served: the NLB's own DNS name, a name agents are moving to or off."""
    vpc_id: pulumi.Input[str]
    """VPC of the subnets."""
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Subnets the compile masters are spread over, round-robin; each keeps the one it was made in."""
    load_balancer_security_group_id: pulumi.Input[str]
    """The NLB's security group, admitted to 8140 and 8142."""
    target_group_arns: NotRequired[pulumi.Input[Mapping[str, pulumi.Input[str]]] | None]
    """Target group per port ("8140", "8142") each compile master joins: PuppetLoadBalancer's
    targetGroupArns. Absent: the compile masters join none (an HaproxyTier balances them)."""
    primary_cidrs: pulumi.Input[Sequence[str]]
    """Addresses of the primary (and replica), admitted to 8140 and 8142: the join checks each
    compile master's status from the primary."""
    count: NotRequired[int]
    """Number of compile masters (default 2)."""
    instance_type: NotRequired[str]
    """EC2 instance type (default m6i.xlarge)."""
    ami_id: pulumi.Input[str]
    """Image to boot: the primary's OS, major release and architecture (PE's rule), pinned so a
    newer image never rebuilds the pool by surprise."""
    root_volume_size_gb: NotRequired[int]
    """Size of the encrypted root volume (default 50)."""
    key_name: NotRequired[str | None]
    """EC2 key pair for SSH."""
    admin_cidrs: NotRequired[pulumi.Input[Sequence[str]]]
    """Networks admitted to SSH; never the whole internet."""
    tags: NotRequired[pulumi.Input[Mapping[str, str]]]
    """Tags for every resource that takes them (load balancers' tag rules)."""
    drained: NotRequired[pulumi.Input[Sequence[int]]]
    """Pool indexes (the -<index> of the Name tag) kept out of both target groups: still joined
    to PE, serving no agent, across `pulumi refresh` and `pulumi up`. It decides which
    attachments exist, so it must be known when the program runs (not another resource's output)."""


class CompileMasterPool(pulumi.ComponentResource):
    """EC2 compile masters, joined to PE by the primary, registered in the load balancer's target groups."""

    instance_ids: pulumi.Output[list[str]]
    """EC2 instance ids, in pool order."""
    private_ips: pulumi.Output[list[str]]
    """Private IP addresses, in pool order."""
    certnames: pulumi.Output[list[str]]
    """Puppet certnames (the instances' resource names, from instance id and region), in pool order."""
    security_group_id: pulumi.Output[str]
    """The compile masters' security group."""

    def __init__(
        self, name: str, args: CompileMasterPoolArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        count = validation.int_in_range("count", args.get("count", DEFAULT_COUNT), 1, MAX_COMPILE_MASTERS)
        access = PrimaryAccess.checked(args["primary"])
        admin_cidrs = validation.checked(
            args.get("admin_cidrs", []),
            lambda cidrs: validation.not_the_internet(
                "admin_cidrs", validation.cidr_list("admin_cidrs", cidrs)
            ),
        )
        primary_cidrs = validation.checked(
            args["primary_cidrs"],
            lambda cidrs: validation.cidr_list("primary_cidrs", cidrs, allow_empty=False, ipv4_only=True),
        )
        tags = user_tags("tags", args.get("tags"))
        root_volume_size_gb = validation.int_in_range(
            "root_volume_size_gb",
            args.get("root_volume_size_gb", DEFAULT_ROOT_VOLUME_GB),
            *ROOT_VOLUME_GB_RANGE,
        )
        subnet_ids = validation.checked(args["subnet_ids"], at_least_one_subnet)
        drained_given = args.get("drained", [])
        if isinstance(drained_given, pulumi.Output) or not all(
            isinstance(i, int) and 0 <= i < count
            for i in drained_given  # type: ignore[union-attr]
        ):
            raise ValueError(
                f"drained={drained_given!r} must list pool indexes 0..{count - 1}, "
                "known when the program runs"
            )
        drained = set(drained_given)  # type: ignore[arg-type]
        # Keys checked now when the map is known; each value keeps its own target group's
        # dependency (an attachment must depend on its group, not on both).
        given_arns = args.get("target_group_arns")
        target_group_arns: Mapping[str, Any] | pulumi.Output[Mapping[str, Any]] | None
        if given_arns is None:
            target_group_arns = None
        elif isinstance(given_arns, Mapping):
            target_group_arns = _one_per_pool_port(given_arns)
        else:
            target_group_arns = pulumi.Output.from_input(given_arns).apply(_one_per_pool_port)  # type: ignore[arg-type]
        super().__init__("pe-lb:index:CompileMasterPool", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        security_group = aws.ec2.SecurityGroup(
            f"{name}-compile-masters",
            vpc_id=args["vpc_id"],
            description="PE compile masters: 8140/8142 from the NLB and the primary",
            tags=tagged(tags, f"{name}-compile-masters"),
            opts=child,
        )
        admit_group(
            f"{name}-from-nlb",
            security_group_id=security_group.id,
            source_group_id=args["load_balancer_security_group_id"],
            who="NLB",
            parent=self,
        )
        admit_cidrs(
            f"{name}-from-primary",
            security_group_id=security_group.id,
            ports=pe.POOL_PORTS,
            cidrs=primary_cidrs,
            description="PE primary",
            parent=self,
        )
        admit_cidrs(
            f"{name}-ssh",
            security_group_id=security_group.id,
            ports=[pe.SSH_PORT],
            cidrs=admin_cidrs,
            description="Administrators' SSH",
            parent=self,
        )
        # Compile masters talk to the primary (8140, 8143, PuppetDB 8081, PostgreSQL) and to
        # OS package mirrors, whose addresses this program cannot know.
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-egress",
            security_group_id=security_group.id,
            ip_protocol="-1",
            cidr_ipv4="0.0.0.0/0",
            description="Primary, PuppetDB and package mirrors",
            opts=child,
        )

        # The PE CA and global hiera.yaml, read once over SSH: they reach each compile master
        # in its user data, so it trusts only the PE CA from its first download on.
        installed = install_primary_script(f"{name}-primary-script", access, self)
        primary_files = primary_command(
            f"{name}-primary-files",
            access,
            installed=installed,
            create=access.script_command("read"),
            parent=self,
            output_may_hold_secrets=True,
            # A new SSH key or user would re-run it, and a changed answer would replace every
            # compile master at once; what it read stays until this command is replaced on purpose.
            ignore_changes=["connection"],
        )
        show_primary_file_changes(access, primary_files, self)
        # Secret as the command's stdout is: the site's hiera.yaml is not for every reader of state.
        # The set, sorted: which of the names agents are given does not change a certificate.
        pool_names: pulumi.Output[list[str]] = pulumi.Output.all(
            args["pool_address"], pulumi.Output.from_input(args.get("other_pool_names", []))
        ).apply(lambda values: sorted({values[0].lower(), *(name.lower() for name in values[1])}))
        rendered: pulumi.Output[str] = pulumi.Output.all(pool_names, primary_files.stdout).apply(
            lambda values: render_bootstrap(access.host, values[0], values[1])
        )
        user_data: pulumi.Output[str] = pulumi.Output.secret(rendered)
        instances, certnames = [], []
        for index in range(count):
            instance = aws.ec2.Instance(
                f"{name}-{index}",
                ami=args["ami_id"],
                instance_type=args.get("instance_type", DEFAULT_INSTANCE_TYPE),
                subnet_id=round_robin(subnet_ids, index),
                vpc_security_group_ids=[security_group.id],
                key_name=args.get("key_name") or None,
                # The hostname, and so the certname, is the instance id: never reused by a later instance.
                private_dns_name_options=aws.ec2.InstancePrivateDnsNameOptionsArgs(
                    hostname_type="resource-name",
                    enable_resource_name_dns_a_record=True,
                ),
                **hardened(root_volume_size_gb),
                user_data=user_data,
                # User data runs at first boot only: a new pool address needs a new certificate,
                # which only a fresh instance requests.
                user_data_replace_on_change=True,
                # The pool tag lets poolctl tell this stack's compile masters from another pe-lb
                # stack's in the same VPC. Tags change in place: a stack made before it gets it on
                # its next `pulumi up` without replacing or restarting any compile master.
                tags=tagged(
                    tags,
                    f"{name}-{index}",
                    **{
                        pe.ROLE_TAG: pe.COMPILE_MASTER_ROLE,
                        pe.POOL_TAG: pe.pool_identity(pulumi.get_project(), pulumi.get_stack(), name),
                    },
                ),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    # In place, AWS stops and starts the instance (every compile master at once);
                    # a new one joins and enters rotation before the old one leaves instead.
                    replace_on_changes=["instanceType"],
                    # Placement is decided when a compile master is made: appending a subnet
                    # moves none of the existing ones.
                    ignore_changes=["subnetId"],
                ),
            )
            # One source for the certname: the instance id and region (the bootstrap derives the
            # same from IMDS and checks its hostname agrees).
            certname = instance.arn.apply(pe.instance_certname)
            # A new instance is a new certname, so a new command: its create joins the new
            # one, and the old command's delete (after every create) makes the old one leave.
            joined = primary_command(
                f"{name}-{index}-join",
                access,
                installed=installed,
                create=pulumi.Output.all(certname, instance.arn, pool_names).apply(
                    lambda values: access.script_command(
                        "join",
                        values[0],
                        "--instance-arn",
                        values[1],
                        *(argument for name in values[2] for argument in ("--pool-address", name)),
                    )
                ),
                delete=certname.apply(
                    lambda value: access.script_command(
                        "leave", value, "--drain-seconds", str(pe.PUPPETSERVER_DEREGISTRATION_DELAY_SECONDS)
                    )
                ),
                triggers=[certname],
                parent=self,
            )
            # In rotation only once joined; out of rotation (deleted first) before it leaves.
            # A drained compile master has no attachment: refresh finds none to restore.
            for port in () if index in drained or target_group_arns is None else pe.POOL_PORTS:
                aws.lb.TargetGroupAttachment(
                    f"{name}-{index}-{port}",
                    target_group_arn=_for_port(target_group_arns, port),  # type: ignore[arg-type]
                    target_id=instance.id,
                    port=port,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[joined]),
                )
            instances.append(instance)
            certnames.append(certname)

        self.instances = instances
        """The instances themselves, in pool order (Python only: PoolHealthGate's instance_ids)."""
        self.instance_ids = pulumi.Output.all(*[instance.id for instance in instances])
        self.private_ips = pulumi.Output.all(*[instance.private_ip for instance in instances])
        self.certnames = pulumi.Output.all(*certnames)
        self.security_group_id = security_group.id
        self.ca_certificate = pulumi.Output.secret(primary_files.stdout).apply(_ca_certificate)
        """The PE CA bundle the compile masters were made with (Python only: HaproxyTier's health
        checks verify them against it)."""
        self.register_outputs(
            {
                "instanceIds": self.instance_ids,
                "privateIps": self.private_ips,
                "certnames": self.certnames,
                "securityGroupId": self.security_group_id,
            }
        )


POSIX_SHELL = "/bin/sh"
PRIMARY_FILES = {"caCertificate": "PE CA bundle", "hieraYaml": "global hiera.yaml"}
"""What `read` returns that compile masters are made with, and how a warning names it."""


def show_primary_file_changes(
    access: PrimaryAccess, primary_files: command.remote.Command, parent: pulumi.Resource
) -> None:
    """At every preview and update of a deployed pool: the primary's CA bundle and hiera.yaml, read
    again over SSH from where pulumi runs, compared with those the compile masters were made with.

    A change is shown (a warning on the pool), never applied: compile masters keep what
    ``primary_files`` recorded until it is replaced on purpose. The key reaches the check only on
    its standard input; the answer stays in memory (an invoke's result is never stored).
    """

    def check(values: list[Any]) -> pulumi.Output[None] | None:
        recorded, urn = values
        if not recorded:
            # Unknown until the read command has run: a first preview compares nothing (a first
            # `up` compares right after the read, and finds the same files).
            return None
        if not os.path.exists(POSIX_SHELL):
            # pulumi-command runs local commands with cmd.exe on Windows: say so, never fail the update.
            _report(recorded, "FAILED\nno /bin/sh where pulumi runs", urn, parent)
            return None
        answer = command.local.run_output(
            command=access.read_again_command(),
            interpreter=[POSIX_SHELL, "-c"],
            stdin=pulumi.Output.secret(access.private_key),
            logging=command.local.Logging.NONE,
            opts=pulumi.InvokeOutputOptions(parent=parent),
        )
        return pulumi.Output.secret(answer.stdout).apply(lambda text: _report(recorded, text, urn, parent))

    pulumi.Output.all(primary_files.stdout, primary_files.urn).apply(check)


def _report(recorded: str, answer: str | None, urn: str, parent: pulumi.Resource) -> None:
    status, _, text = (answer or "").partition("\n")
    if status != "OK":
        pulumi.log.warn(
            f"could not read the primary's CA and hiera.yaml again to compare them with the compile "
            f"masters' ({text.strip()[:300] or status or 'no answer'}); the pool is unchanged",
            resource=parent,
        )
        return
    try:
        before, now = json.loads(recorded), json.loads(text)
        changed = [label for key, label in PRIMARY_FILES.items() if before[key] != now[key]]
    except (ValueError, KeyError, TypeError):
        pulumi.log.warn(
            "the primary's read answered in a form pe-lb does not know; the pool is unchanged",
            resource=parent,
        )
        return
    if changed:
        pulumi.log.warn(
            f"the primary's {' and '.join(changed)} changed since the compile masters were made; they keep "
            f"the old one. To apply it, replace every compile master (each new one joins and serves "
            f"before an old one leaves): pulumi up --replace '{urn}'",
            resource=parent,
        )


def _ca_certificate(primary_files: str) -> str:
    try:
        return str(json.loads(primary_files)["caCertificate"])
    except (ValueError, KeyError, TypeError):
        raise ValueError("reading the PE CA from the primary gave no answer pe-lb understands") from None


def render_bootstrap(primary_host: str, pool_names: Sequence[str], primary_files: str) -> str:
    """User data: the bootstrap script with its parameters set in front of it.

    ``primary_files`` is what the primary script's ``read`` printed: the CA bundle and hiera.yaml.
    """
    try:
        files = json.loads(primary_files)
        ca_certificate, hiera_yaml = files["caCertificate"], files["hieraYaml"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(
            f"reading the PE CA and hiera.yaml from {primary_host} gave no answer pe-lb understands"
        ) from None
    if "-----BEGIN CERTIFICATE-----" not in ca_certificate:
        raise ValueError(f"{primary_host} has no PE CA certificate at Puppet's localcacert")
    parameters = {
        "PE_PRIMARY_HOST": primary_host,
        "PE_CA_CERTIFICATE": ca_certificate.strip(),
        "PE_POOL_NAMES": ",".join(pool_names),
        "PE_AUTH_ROLE": pe.COMPILER_AUTH_ROLE,
        "PE_PLATFORM_OID": pe.PLATFORM_EXTENSION_OID,
        "PE_IDENTITY_OID": pe.INSTANCE_IDENTITY_OID,
        "PE_HIERA_YAML": hiera_yaml.strip(),
    }
    script = read_script(BOOTSTRAP_SCRIPT)
    shebang, body = script.split("\n", 1)
    assignments = "".join(f"export {key}={shlex.quote(value)}\n" for key, value in parameters.items())
    user_data = f"{shebang}\n# Parameters rendered by pe-lb.\n{assignments}{body}"
    # EC2 refuses more than 16 KB of user data, counted raw, before the base64 encoding the API
    # carries it in (EC2 user guide, "Work with instance user data").
    max_bytes = 16384
    size = len(user_data.encode())
    if size > max_bytes:
        ca_bytes = len(parameters["PE_CA_CERTIFICATE"].encode())
        hiera_bytes = len(parameters["PE_HIERA_YAML"].encode())
        raise ValueError(
            f"the compile masters' user data would be {size} bytes, over EC2's limit of {max_bytes} "
            f"(counted before base64): the bootstrap script and its other parameters take "
            f"{size - ca_bytes - hiera_bytes}, the PE CA bundle read from {primary_host} {ca_bytes}, and "
            f"its global hiera.yaml {hiera_bytes}. Shrink hiera.yaml on {primary_host} by "
            f"{size - max_bytes} bytes or more (comments, unused hierarchy levels), then re-read it: "
            "pulumi up --replace the primary-files command"
        )
    return user_data


def _one_per_pool_port(arns: Mapping[str, Any]) -> Mapping[str, Any]:
    if set(arns) != {str(port) for port in pe.POOL_PORTS}:
        raise ValueError(
            f"target_group_arns must map exactly the ports {', '.join(map(str, pe.POOL_PORTS))} "
            f"(as strings), not {sorted(arns)}"
        )
    return arns


def _for_port(arns: "Mapping[str, Any] | pulumi.Output[Mapping[str, Any]]", port: int) -> pulumi.Input[str]:
    if isinstance(arns, pulumi.Output):
        return arns.apply(lambda known: known[str(port)])
    value: pulumi.Input[str] = arns[str(port)]
    return value
