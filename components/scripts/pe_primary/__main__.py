"""pe-lb's steps on the PE primary: compile masters join and leave, agents are sent to the pool.

Runs on the primary as root, fed on standard input by the components
(``python3 - ACTION ...``) as one file built from this package. Python 3.6 and the
standard library only: RHEL 7/8 and SLES 15 primaries have nothing newer (found as
python3 or /usr/libexec/platform-python).

  read                 print the PE CA bundle and the global hiera.yaml (JSON) for the
                       compile masters' user data
  join CERTNAME        verify and sign the compile master's request, pin it to PE
                       Infrastructure Agent, allow it into PE-PostgreSQL, wait for its first
                       Puppet run, run Puppet on the primary, wait until it serves
  leave CERTNAME       wait out the load balancer's deregistration delay, purge the node,
                       unpin it, drop it from PE-PostgreSQL, run Puppet on the primary
  pe-repo-set ADDRESS  pe_repo::compile_master_pool_address = ADDRESS in PE Master, then
                       wait until each compile master's install script names it (their
                       own runs), then Puppet on the primary: PE's order, checked
  pe-repo-unset ADDRESS  remove it, only while it still is ADDRESS
  agent-set ADDRESS    PE Agent's server_list, primary_uris (8140) and pcp_broker_list (8142)
                       at the pool, then Puppet on the primary; values set by others stay
  agent-unset ADDRESS  remove exactly pe-lb's values for ADDRESS

Every action is idempotent: run again, it finds its work done and says so.
Exit 0 on success, 1 with a one-line reason on failure, 2 for bad arguments.
"""

import argparse
import sys
from typing import Any, Callable, List, NoReturn, Optional

from . import names
from .common import StepError

ACTIONS = ("read", "join", "leave", "pe-repo-set", "pe-repo-unset", "agent-set", "agent-unset")
DAY = 24 * 3600.0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"pe-lb: {message}\n")


def _checked(check: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a names.* check: its StepError becomes argparse's one-line error."""

    def convert(value: str) -> Any:
        try:
            return check(value)
        except StepError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return convert


def parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pe-lb", description=(__doc__ or "").split("\n\n", 1)[0])
    seconds = _checked(names.seconds)
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument(
        "name", nargs="?", default="", help="certname (join, leave) or pool address (pe-repo-*, agent-*)"
    )
    parser.add_argument(
        "--pool-address",
        action="append",
        default=[],
        help="join: a name of the pool, in the certificate (repeat for each name the pool answers to)",
    )
    parser.add_argument(
        "--compile-masters",
        type=_checked(lambda value: [names.certname(name) for name in value.split(",") if name]),
        default=[],
        help="pe-repo-set: certnames whose install scripts must name the pool (comma-separated)",
    )
    parser.add_argument(
        "--owner",
        default="",
        help="pe-repo-*, agent-*: the command resource that holds the setting (project/stack/name)",
    )
    parser.add_argument(
        "--update",
        action="store_true",
        help="pe-repo-set, agent-set: run as the resource's update (its hold is already counted)",
    )
    parser.add_argument("--package-url", default="https://{host}:{port}/packages/current/install.bash")
    parser.add_argument("--instance-arn", default="", help="join: the EC2 instance (its ARN)")
    parser.add_argument(
        "--identity-certificates",
        default="",
        help="join: PEM file of AWS's certificates for identity documents (default: built in, by region)",
    )
    parser.add_argument(
        "--identity-max-age",
        type=seconds,
        default=7 * DAY,
        help="join: the oldest launch an identity document may show",
    )
    parser.add_argument("--ca-conf", default="/etc/puppetlabs/puppetserver/conf.d/ca.conf")
    parser.add_argument(
        "--drain-seconds", type=seconds, default=0.0, help="leave: deregistration delay to wait out"
    )
    parser.add_argument("--csr-timeout", type=seconds, default=1800.0)
    parser.add_argument("--run-timeout", type=seconds, default=1800.0)
    parser.add_argument("--status-timeout", type=seconds, default=900.0)
    parser.add_argument("--lock-timeout", type=seconds, default=1800.0)
    parser.add_argument("--poll-seconds", type=seconds, default=10.0)
    parser.add_argument("--puppet", default="/opt/puppetlabs/bin/puppet")
    parser.add_argument("--systemctl", default="systemctl")
    parser.add_argument("--state-dir", default="/opt/puppetlabs/pe-lb")
    parser.add_argument(
        "--postgresql-data-glob", default="/opt/puppetlabs/server/data/postgresql/*/data/pg_ident.conf"
    )
    parser.add_argument("--hiera-yaml", default="/etc/puppetlabs/puppet/hiera.yaml")
    parser.add_argument("--os-release", default="/etc/os-release")
    parser.add_argument("--machine", default="", help="architecture; default: this host's")
    parser.add_argument("--status-url", default="https://{certname}:{port}/status/v1/simple")
    parser.add_argument("--ca-url", default="")
    parser.add_argument("--classifier-url", default="")
    parser.add_argument("--puppetdb-url", default="")
    return parser


def _usage_problem(args: argparse.Namespace) -> str:
    """What is missing or malformed in the arguments ('' if nothing)."""
    if args.action == "read":
        return ""
    if not args.name:
        return "{} needs a {}".format(
            args.action, "certname" if args.action in ("join", "leave") else "pool address"
        )
    try:
        if args.action in ("join", "leave"):
            names.certname(args.name)
        else:
            names.dns_name(args.action, args.name)
    except StepError as error:
        return str(error)
    if args.action == "join":
        if not args.pool_address:
            return "join needs --pool-address"
        try:
            args.pool_address = [names.dns_name("--pool-address", name) for name in args.pool_address]
        except StepError as error:
            return str(error)
        if not args.instance_arn:
            return "join needs --instance-arn"
        try:
            names.instance_arn(args.instance_arn)
        except StepError as error:
            return str(error)
    return ""


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    problem = _usage_problem(args)
    if problem:
        print(f"pe-lb: {problem}", file=sys.stderr)
        return 2
    # Imported here so a usage error needs nothing of the primary.
    from .join import join
    from .leave import leave
    from .pool_settings import agent, pe_repo
    from .primary import Primary
    from .read import read

    try:
        primary = Primary(args)
        if args.action == "read":
            read(primary)
        elif args.action == "join":
            join(primary, args.name)
        elif args.action == "leave":
            leave(primary, args.name)
        elif args.action.startswith("pe-repo-"):
            pe_repo(primary, args.name, args.action == "pe-repo-set")
        else:
            agent(primary, args.name, args.action == "agent-set")
    except StepError as failure:
        print(f"pe-lb {args.action}: {failure}", file=sys.stderr)
        return 1
    except OSError as failure:
        # A file of the primary's that cannot be read or written: say which, in one line.
        print(f"pe-lb {args.action}: {failure.strerror}: {failure.filename}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
