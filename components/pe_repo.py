"""Points pe_repo on the primary at the pool, so new agents install against it."""

import shlex
from collections.abc import Sequence
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_command as command

from components import pe, validation
from components.scripts import read_script

PE_REPO_SCRIPT = "pe_repo_pool_address.py"
DEFAULT_SSH_USER = "ec2-user"


class PeRepoPoolAddressArgs(TypedDict):
    primary_host: str
    """FQDN of the PE primary, reached over SSH; also its certname."""
    pool_address: pulumi.Input[str]
    """The pool's DNS name that pe_repo should hand to new agents."""
    ssh_private_key: pulumi.Input[str]
    """Private key for SSH to the primary; kept a secret."""
    ssh_user: NotRequired[str]
    """SSH user on the primary (default ec2-user); non-root users need password-less sudo."""
    rerun_on: NotRequired[Sequence[pulumi.Input[Any]]]
    """Values whose change re-runs the command, e.g. compile master ids (Puppet on the primary
    must run again when compilers join)."""


class PeRepoPoolAddress(pulumi.ComponentResource):
    """Sets pe_repo::compile_master_pool_address on the PE Master node group over SSH."""

    stdout: pulumi.Output[str]
    """What the script reported (changed or unchanged)."""

    def __init__(
        self, name: str, args: PeRepoPoolAddressArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        primary_host = validation.hostname("primary_host", args["primary_host"])
        ssh_user = args.get("ssh_user", DEFAULT_SSH_USER)
        if not ssh_user or any(c.isspace() for c in ssh_user):
            raise ValueError(f"ssh_user={ssh_user!r} must be a user name without spaces")
        super().__init__("pe-lb:index:PeRepoPoolAddress", name, None, opts)

        pool_address = pulumi.Output.from_input(args["pool_address"])
        run = command.remote.Command(
            f"{name}-pe-repo",
            connection=command.remote.ConnectionArgs(
                host=primary_host,
                user=ssh_user,
                private_key=pulumi.Output.secret(args["ssh_private_key"]),
            ),
            create=pool_address.apply(lambda address: script_command("set", address, primary_host, ssh_user)),
            delete=pool_address.apply(
                lambda address: script_command("unset", address, primary_host, ssh_user)
            ),
            stdin=read_script(PE_REPO_SCRIPT),
            triggers=[pool_address, *args.get("rerun_on", [])],
            # A component's depends_on does not reach its children; the command must not
            # point agents at the pool before what the caller waits for exists.
            opts=pulumi.ResourceOptions(parent=self, depends_on=opts.depends_on if opts else None),
        )
        self.stdout = run.stdout
        self.register_outputs({"stdout": self.stdout})


def script_command(action: str, pool_address: str, primary_host: str, ssh_user: str) -> str:
    """The shell command that runs the script (read from stdin) on the primary."""
    arguments = [
        "python3",
        "-",
        action,
        pool_address,
        "--certname",
        primary_host,
        "--classifier-url",
        f"https://{primary_host}:{pe.CLASSIFIER_PORT}/classifier-api",
        "--group",
        pe.PE_MASTER_NODE_GROUP,
        "--parameter",
        pe.PE_REPO_POOL_ADDRESS_PARAMETER,
    ]
    # The primary's certificates and Puppet run need root.
    prefix = [] if ssh_user == "root" else ["sudo", "-n"]
    return shlex.join(prefix + arguments)
