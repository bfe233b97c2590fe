"""Points PE Agent at the pool, so agents (8140) and PXP agents (8142) use it."""

from typing import TypedDict

import pulumi

from . import pe
from .primary import PrimaryAccess, PrimaryAccessArgs, caller_depends_on, pool_setting_command


class PeAgentPoolAddressArgs(TypedDict):
    primary: PrimaryAccessArgs
    """The PE primary and how to reach it over SSH: PE Agent is set there."""
    pool_address: pulumi.Input[str]
    """The pool's DNS name for server_list, primary_uris (8140) and pcp_broker_list (8142)."""


class PeAgentPoolAddress(pulumi.ComponentResource):
    """Sets puppet_enterprise::profile::agent in the PE Agent node group to the pool, over SSH.

    As PE's "Configure compilers" page says: server_list and primary_uris on 8140,
    pcp_broker_list on 8142, then Puppet on the primary; agents follow on their next
    runs. Compile masters must be pinned to PE Infrastructure Agent (their join does it),
    or they would reach the pool themselves. On delete it takes back exactly pe-lb's
    values; values someone else set are left alone, and said so.
    """

    stdout: pulumi.Output[str]
    """What the script reported; a secret, as everything read from the primary."""

    def __init__(
        self, name: str, args: PeAgentPoolAddressArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        access = PrimaryAccess.checked(args["primary"])
        super().__init__("pe-lb:index:PeAgentPoolAddress", name, None, opts)
        run = pool_setting_command(
            f"{name}-pe-agent",
            access,
            action=pe.PE_AGENT_ACTION,
            pool_address=args["pool_address"],
            parent=self,
            # A component's depends_on does not reach its children: after every join.
            depends_on=caller_depends_on(opts),
        )
        self.stdout = run.stdout
        self.register_outputs({"stdout": self.stdout})
