"""Commands on the PE primary: one SSH connection, one script, one way to run it.

Every component that changes the primary goes through ``primary_command``: the host key
is checked, the script (built from components/scripts/pe_primary/) arrives on stdin, and what it
prints is kept secret in state.
"""

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict, cast

import pulumi
import pulumi_command as command

from . import validation
from .scripts import primary_script, primary_script_version, read_script

DEFAULT_SSH_USER = "ec2-user"

# RHEL 8 ships only /usr/libexec/platform-python unless python3 is installed; RHEL 7 and
# SLES 15 have python3 3.6. The script is written for 3.6.
_FIND_PYTHON = "py=$(command -v python3 || echo /usr/libexec/platform-python)"

READ_AGAIN_SCRIPT = "read_primary_files.sh"
SCRIPT_DIR = "/opt/puppetlabs/pe-lb/script"
INSTALLED_SCRIPT = f"{SCRIPT_DIR}/current.py"
"""Where every command finds the primary script (a link to the installed version)."""

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
        """The shell line that runs one action of the installed primary script as root.

        The line names the script by its installed path, never by version or content: a new
        pe-lb version changes only the install command, so nothing else re-runs.
        """
        # The primary's certificates, CA and Puppet runs need root.
        return f'{_FIND_PYTHON}; {self._sudo}"$py" {INSTALLED_SCRIPT} {shlex.join([action, *arguments])}'

    @property
    def _sudo(self) -> str:
        return "" if self.user == "root" else "sudo -n "

    def read_again_command(self) -> str:
        """The local shell text that reads the primary's CA and hiera.yaml over SSH from where pulumi
        runs (scripts/read_primary_files.sh), the key on its standard input. Holds no secret."""
        settings = {
            "PE_LB_HOST": self.host,
            "PE_LB_USER": self.user,
            "PE_LB_KNOWN_HOST": self.host_key,
            "PE_LB_REMOTE": self.script_command("read"),
        }
        assignments = "".join(f"{name}={shlex.quote(value)}\n" for name, value in settings.items())
        return assignments + read_script(READ_AGAIN_SCRIPT)

    def install_command(self) -> str:
        """The shell line that installs the script read from stdin, content-addressed, as current."""
        version = primary_script_version()
        target = f"{SCRIPT_DIR}/{version}.py"
        # Written to a temporary file, checked against its hash, then renamed: a reader never
        # sees half a script, and `current.py` moves to the new version in one rename. Each
        # component installs it, concurrently on a first `pulumi up`: the temporary names carry
        # the shell's PID ($$), so no install truncates or moves another's.
        steps = (
            "set -e; umask 077; "
            f"trap 'rm -f {target}.$$ {SCRIPT_DIR}/.current.$$' EXIT; "
            f"mkdir -p {SCRIPT_DIR}; "
            f"cat > {target}.$$; "
            f'echo "{version}  {target}.$$" | sha256sum -c --quiet; '
            f"mv -f {target}.$$ {target}; "
            f"ln -sfn {version}.py {SCRIPT_DIR}/.current.$$; "
            f"mv -Tf {SCRIPT_DIR}/.current.$$ {INSTALLED_SCRIPT}; "
            f"echo pe-lb primary script {version[:12]} installed"
        )
        return f"{self._sudo}sh -c {shlex.quote(steps)}"


def install_primary_script(
    resource_name: str, access: PrimaryAccess, parent: pulumi.Resource
) -> command.remote.Command:
    """The primary script on the primary at /opt/puppetlabs/pe-lb/script/<sha256>.py, `current.py` its link.

    Replaced (create-before-delete) only when pe-lb's script changes; every other command
    depends on it and calls `current.py`, so an upgrade of pe-lb re-runs nothing else. The
    installed versions stay on the primary (a few tens of kB each) with pe-lb's records.
    """
    return command.remote.Command(
        resource_name,
        connection=access.connection(),
        create=access.install_command(),
        stdin=primary_script(),
        triggers=[primary_script_version()],
        opts=pulumi.ResourceOptions(parent=parent, additional_secret_outputs=["stdout", "stderr"]),
    )


def primary_command(
    resource_name: str,
    access: PrimaryAccess,
    *,
    installed: pulumi.Resource,
    create: pulumi.Input[str],
    update: pulumi.Input[str] | None = None,
    delete: pulumi.Input[str] | None = None,
    triggers: Sequence[pulumi.Input[Any]] = (),
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Input[pulumi.Resource]] = (),
    output_may_hold_secrets: bool = False,
    ignore_changes: Sequence[str] = (),
) -> command.remote.Command:
    """A pulumi-command remote command on the primary running one action of the installed script.

    ``triggers`` replace the command (its old ``delete`` runs after the new ``create``):
    only what truly needs a new resource belongs there. ``installed`` is the script's
    install command (install_primary_script), which it runs after.
    """
    return command.remote.Command(
        resource_name,
        connection=access.connection(),
        create=create,
        update=update,
        delete=delete,
        triggers=list(triggers) or None,
        # Streamed output would land in logs; errors still do.
        logging="stderr" if output_may_hold_secrets else None,
        opts=pulumi.ResourceOptions(
            parent=parent,
            depends_on=[installed, *depends_on],
            additional_secret_outputs=["stdout", "stderr"],
            ignore_changes=list(ignore_changes) or None,
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
    depends_on: Sequence[pulumi.Input[pulumi.Resource]] = (),
) -> command.remote.Command:
    """``{action}-set ADDRESS`` on create and update, ``{action}-unset ADDRESS`` on delete.

    Only the pool address replaces the command, create-before-delete: the new one's create
    sets the new address, then the old one's delete (the engine runs it last) takes back its
    hold on the old one. Each command is a holder (``--owner``, counted on the primary): a
    value is removed only when no command holds it, so a replacement that asks for the same
    address (an upgrade, `pulumi up --replace`) never leaves agents without one. Whatever else
    should re-run it (``arguments``, e.g. the compile masters) is in the command text, so a
    change is an update, which sets again without counting a new hold.
    """
    installed = install_primary_script(f"{resource_name}-script", access, parent)
    owner = f"{pulumi.get_project()}/{pulumi.get_stack()}/{resource_name}"
    address = pulumi.Output.from_input(pool_address)
    values = pulumi.Output.all(address, pulumi.Output.from_input(arguments))
    return primary_command(
        resource_name,
        access,
        installed=installed,
        create=values.apply(lambda v: access.script_command(f"{action}-set", v[0], "--owner", owner, *v[1])),
        update=values.apply(
            lambda v: access.script_command(f"{action}-set", v[0], "--owner", owner, "--update", *v[1])
        ),
        delete=address.apply(lambda value: access.script_command(f"{action}-unset", value, "--owner", owner)),
        triggers=[address],
        parent=parent,
        depends_on=depends_on,
    )


def caller_depends_on(opts: pulumi.ResourceOptions | None) -> list[pulumi.Input[pulumi.Resource]]:
    """What a component's caller asked it to wait for: a component's depends_on does not reach
    its children, so the commands that must wait take it themselves."""
    dependencies = opts.depends_on if opts else None
    if dependencies is None:
        return []
    if isinstance(dependencies, pulumi.Resource):
        return [dependencies]
    if isinstance(dependencies, pulumi.Output):
        raise ValueError("depends_on must be a list of resources, known when the program runs")
    return list(cast(Sequence[pulumi.Input[pulumi.Resource]], dependencies))


def ssh_host_key(key: str, value: object) -> str:
    """A host public key as `ssh-keyscan -t ed25519 HOST` prints it (the host name in front is dropped).

    A bad value is never quoted whole: a private key pasted here would land in the error.
    """
    match = _HOST_KEY.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match:
        pasted_private_key = isinstance(value, str) and "PRIVATE KEY" in value
        raise ValueError(
            f"{key}={validation.described_secret(value)} must be the primary's SSH host key as "
            "`ssh-keyscan -t ed25519 <primary>` prints it, e.g. 'puppet.example.com ssh-ed25519 "
            "AAAAC3Nza...': a key type (ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa), then the "
            "base64 key"
            + (
                ". It holds a PRIVATE key, which does not belong here and is not kept secret here: remove "
                "it, and replace that key pair if the value was shared"
                if pasted_private_key
                else ""
            )
        )
    return " ".join(match.group(1).split())


def ssh_user(key: str, value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z_][a-z0-9_.-]{0,31}", value):
        raise ValueError(f"{key}={value!r} must be a Unix user name such as {DEFAULT_SSH_USER}")
    return value
