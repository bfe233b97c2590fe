"""Points pe_repo on the primary at the pool, so new agents install against it."""

import pulumi

from components import pe
from components.primary import PrimaryAccess, PrimaryAccessArgs, primary_command


class PeRepoPoolAddressArgs(PrimaryAccessArgs):
    pool_address: pulumi.Input[str]
    """The pool's DNS name that pe_repo should hand to new agents."""


class PeRepoPoolAddress(pulumi.ComponentResource):
    """Sets pe_repo::compile_master_pool_address on the PE Master node group over SSH."""

    stdout: pulumi.Output[str]
    """What the script reported (changed or unchanged); a secret, as everything read from the primary."""

    def __init__(
        self, name: str, args: PeRepoPoolAddressArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        access = PrimaryAccess.checked(args)
        super().__init__("pe-lb:index:PeRepoPoolAddress", name, None, opts)

        pool_address = pulumi.Output.from_input(args["pool_address"])
        run = primary_command(
            f"{name}-pe-repo",
            access,
            create=pool_address.apply(lambda address: access.script_command(pe.PE_REPO_SET_ACTION, address)),
            delete=pool_address.apply(lambda address: access.script_command("pe-repo-unset", address)),
            # Only a new address makes a new command; its delete then removes only the old address,
            # and only while it is still the one set.
            triggers=[pool_address],
            parent=self,
            # A component's depends_on does not reach its children; the command must not
            # point agents at the pool before what the caller waits for (every join) is done.
            depends_on=opts.depends_on if opts else None,
        )
        self.stdout = run.stdout
        self.register_outputs({"stdout": self.stdout})
