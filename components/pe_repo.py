"""Points pe_repo on the primary at the pool, so new agents install against it."""

from collections.abc import Sequence
from typing import TypedDict

import pulumi

from . import pe
from .primary import PrimaryAccess, PrimaryAccessArgs, caller_depends_on, pool_setting_command


class PeRepoPoolAddressArgs(TypedDict):
    primary: PrimaryAccessArgs
    """The PE primary and how to reach it over SSH: pe_repo is set there."""
    pool_address: pulumi.Input[str]
    """The pool's DNS name that pe_repo should hand to new agents."""
    compile_master_certnames: pulumi.Input[Sequence[str]]
    """Compile masters whose install scripts must name the pool before the primary's run (PE's order)."""


class PeRepoPoolAddress(pulumi.ComponentResource):
    """Sets pe_repo::compile_master_pool_address on the PE Master node group over SSH, in PE's order.

    After setting it, waits until every compile master's install script names the pool
    (their own Puppet runs), then runs Puppet on the primary: "Run Puppet on the compiler,
    and then on the primary server."
    """

    stdout: pulumi.Output[str]
    """What the script reported (changed or unchanged); a secret, as everything read from the primary."""

    def __init__(
        self, name: str, args: PeRepoPoolAddressArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        access = PrimaryAccess.checked(args["primary"])
        super().__init__("pe-lb:index:PeRepoPoolAddress", name, None, opts)
        certnames = pulumi.Output.from_input(args["compile_master_certnames"])
        run = pool_setting_command(
            f"{name}-pe-repo",
            access,
            action=pe.PE_REPO_ACTION,
            pool_address=args["pool_address"],
            arguments=certnames.apply(
                lambda names: [
                    "--compile-masters",
                    ",".join(names),
                    "--run-timeout",
                    str(pe.COMPILE_MASTER_RUN_WAIT_SECONDS),
                ]
            ),
            parent=self,
            # A component's depends_on does not reach its children; the command must not
            # point agents at the pool before what the caller waits for (every join) is done.
            depends_on=caller_depends_on(opts),
        )
        self.stdout = run.stdout
        self.register_outputs({"stdout": self.stdout})
