"""Commands on the PE primary: one SSH connection, one script, one way to run it.

Every component that changes the primary goes through ``primary_command``: the host key
is checked, the script (built from components/scripts/pe_primary/) arrives on stdin, and what it
prints is kept secret in state.
"""

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import pulumi
import pulumi_command as command

from . import validation
from .scripts import primary_script

DEFAULT_SSH_USER = "ec2-user"

# RHEL 8 ships only /usr/libexec/platform-python unless python3 is installed; RHEL 7 and
# SLES 15 have python3 3.6. The script is written for 3.6.
_FIND_PYTHON = "py=$(command -v python3 || echo /usr/libexec/platform-python)"

_HOST_KEY = re.compile(
    r"^(?:\S+\s+)?((?:ssh-ed25519|ecdsa-sha2-nistp(?:256|384|521)|ssh-rsa)\s+[A-Za-z0-9+/]+=*)$"
)


class PrimaryAccessArgs(TypedDict):
    """How a component reaches the PE primary over SSH (the ``primary`` input of every component
    that runs commands there)."""

    primary_host: str
    """FQDN of the PE primary, reached over SSH; also its certname."""
    primary_host_key: str
    """The primary's SSH host key, as `ssh-keyscan -t ed25519 <primary>` prints it."""
    ssh_private_key: pulumi.Input[str]
    """Private key for SSH to the primary; kept a secret."""
    ssh_user: NotRequired[str]
    """SSH user on the primary (default ec2-user); non-root users need password-less sudo."""


@dataclass(frozen=True)
class PrimaryAccess:
    """How pe-lb reaches the primary: host, the host key it must present, user and key."""

    host: str
    host_key: str
    user: str
    private_key: pulumi.Input[str]

    @classmethod
    def checked(cls, args: PrimaryAccessArgs) -> "PrimaryAccess":
        """Each plain value checked, with errors that name the argument."""
        return cls(
            host=validation.hostname("primary_host", args["primary_host"]),
            host_key=ssh_host_key("primary_host_key", args["primary_host_key"]),
            user=ssh_user("ssh_user", args.get("ssh_user", DEFAULT_SSH_USER)),
            private_key=args["ssh_private_key"],
        )

    def connection(self) -> command.remote.ConnectionArgs:
        return command.remote.ConnectionArgs(
            host=self.host,
            user=self.user,
            private_key=pulumi.Output.secret(self.private_key),
            # Without it pulumi-command accepts any host key: anyone on the path could be "the primary".
            host_key=self.host_key,
        )

    def script_command(self, action: str, *arguments: str) -> str:
        """The shell line that runs the primary script (sent on stdin) as root."""
        # The primary's certificates, CA and Puppet runs need root.
        sudo = "" if self.user == "root" else "sudo -n "
        return f'{_FIND_PYTHON}; {sudo}"$py" - {shlex.join([action, *arguments])}'


def primary_command(
    resource_name: str,
    access: PrimaryAccess,
    *,
    create: pulumi.Input[str],
    delete: pulumi.Input[str] | None = None,
    triggers: Sequence[pulumi.Input[Any]] = (),
    parent: pulumi.Resource,
    depends_on: pulumi.Input[Sequence[pulumi.Input[pulumi.Resource]] | pulumi.Resource] | None = None,
    output_may_hold_secrets: bool = False,
    ignore_changes: Sequence[str] = (),
    delete_before_replace: bool = False,
) -> command.remote.Command:
    """A pulumi-command remote command on the primary running one action of the script.

    ``triggers`` replace the command (its old ``delete`` runs after the new ``create``):
    only what truly needs a new resource belongs there.
    """
    return command.remote.Command(
        resource_name,
        connection=access.connection(),
        create=create,
        delete=delete,
        stdin=primary_script(),
        triggers=list(triggers) or None,
        # Streamed output would land in logs; errors still do.
        logging="stderr" if output_may_hold_secrets else None,
        opts=pulumi.ResourceOptions(
            parent=parent,
            depends_on=depends_on,
            additional_secret_outputs=["stdout", "stderr"],
            ignore_changes=list(ignore_changes) or None,
            delete_before_replace=delete_before_replace or None,
        ),
    )


def pool_setting_command(
    resource_name: str,
    access: PrimaryAccess,
    *,
    action: str,
    pool_address: pulumi.Input[str],
    arguments: pulumi.Input[Sequence[str]] = (),
    parent: pulumi.Resource,
    depends_on: pulumi.Input[Sequence[pulumi.Input[pulumi.Resource]] | pulumi.Resource] | None = None,
    delete_before_replace: bool = False,
) -> command.remote.Command:
    """``{action}-set ADDRESS`` on create, ``{action}-unset ADDRESS`` on delete.

    Only the pool address replaces the command: the new one's create sets the new address,
    then the old one's delete (the engine runs it last) removes the old address only while
    it is still set. Whatever else should re-run it (``arguments``, e.g. the compile
    masters) is in the command text, so a change is an update that runs create again.
    ``delete_before_replace`` runs the old delete first instead, for a command whose old
    delete may undo what the new create set.
    """
    address = pulumi.Output.from_input(pool_address)
    create = pulumi.Output.all(address, pulumi.Output.from_input(arguments)).apply(
        lambda values: access.script_command(f"{action}-set", values[0], *values[1])
    )
    return primary_command(
        resource_name,
        access,
        create=create,
        delete=address.apply(lambda value: access.script_command(f"{action}-unset", value)),
        triggers=[address],
        parent=parent,
        depends_on=depends_on,
        delete_before_replace=delete_before_replace,
    )


def ssh_host_key(key: str, value: object) -> str:
    """A host public key as `ssh-keyscan -t ed25519 HOST` prints it (the host name in front is dropped)."""
    match = _HOST_KEY.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError(
            f"{key}={value!r} must be the primary's SSH host key as `ssh-keyscan -t ed25519 <primary>` "
            "prints it, e.g. 'puppet.example.com ssh-ed25519 AAAAC3Nza...'"
        )
    return " ".join(match.group(1).split())


def ssh_user(key: str, value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z_][a-z0-9_.-]{0,31}", value):
        raise ValueError(f"{key}={value!r} must be a Unix user name such as {DEFAULT_SSH_USER}")
    return value
