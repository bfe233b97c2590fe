#!/usr/bin/env python3
"""Point (or stop pointing) pe_repo on the PE primary at the compile-master pool.

Runs on the primary as root (it reads the primary's own certificates), usually fed
on standard input by the PeRepoPoolAddress component: ``python3 - set ADDRESS ...``.

  set ADDRESS    make pe_repo::compile_master_pool_address ADDRESS in the node group's
                 configuration data (only if it differs), then run Puppet on the primary
                 so the agent install script it serves names the pool.
  unset ADDRESS  remove the setting, but only while it is still ADDRESS: a newer address
                 set by a replacement must survive the old one's deletion.

Exit 0 on success, 1 with the classifier's answer or Puppet's exit code on failure.
Only the standard library is used: the primary has python3 but maybe nothing more.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

PE_REPO_CLASS = "pe_repo"
PUPPET_RUN_OK = (0, 2)
"""puppet agent --detailed-exitcodes: 0 nothing changed, 2 changes applied."""


class PeRepoError(Exception):
    """A failure reported to the user in one line, without a traceback."""


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        classifier = Classifier(args.classifier_url, args.ssl_dir, args.certname)
        group = classifier.group_named(args.group)
        current = group.get("config_data", {}).get(PE_REPO_CLASS, {}).get(args.parameter)
        if args.action == "set":
            if current == args.address:
                print(f"{args.parameter} is already {args.address} in {args.group!r}: unchanged")
            else:
                classifier.update_config_data(group["id"], args.parameter, args.address)
                print(f"{args.parameter} changed from {current!r} to {args.address!r} in {args.group!r}")
        elif current == args.address:
            classifier.update_config_data(group["id"], args.parameter, None)
            print(f"{args.parameter} ({args.address}) removed from {args.group!r}")
        else:
            print(f"{args.parameter} is {current!r}, not {args.address!r}: left alone")
            return 0
        if args.puppet:
            _run_puppet(args.puppet)
    except PeRepoError as failure:
        print(f"pe_repo: {failure}", file=sys.stderr)
        return 1
    return 0


class Classifier:
    """The node classifier API, authenticated with the primary's own certificate."""

    def __init__(self, base_url: str, ssl_dir: str, certname: str) -> None:
        self.base_url = base_url.rstrip("/")
        try:
            context = ssl.create_default_context(cafile=os.path.join(ssl_dir, "certs", "ca.pem"))
            context.load_cert_chain(
                os.path.join(ssl_dir, "certs", f"{certname}.pem"),
                os.path.join(ssl_dir, "private_keys", f"{certname}.pem"),
            )
        except OSError as error:
            raise PeRepoError(f"cannot load the certificates of {certname!r} in {ssl_dir}: {error}") from None
        self.context = context

    def group_named(self, name: str) -> dict[str, Any]:
        groups = self._request("GET", "/v1/groups")
        for group in groups:
            if group.get("name") == name:
                return dict(group)
        raise PeRepoError(f"no node group named {name!r} in the classifier")

    def update_config_data(self, group_id: str, parameter: str, value: str | None) -> None:
        # The classifier merges a group delta; a null value removes the key.
        delta = {"config_data": {PE_REPO_CLASS: {parameter: value}}}
        self._request("POST", f"/v1/groups/{urllib.parse.quote(group_id)}", delta)

    def _request(self, method: str, path: str, body: object = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=60) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace").strip()
            raise PeRepoError(f"{method} {path} answered HTTP {error.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise PeRepoError(f"{method} {self.base_url}{path} failed: {reason}") from None
        return json.loads(text) if text.strip() else None


def _run_puppet(puppet: str) -> None:
    command = [
        puppet,
        "agent",
        "--onetime",
        "--no-daemonize",
        "--no-usecacheonfailure",
        "--detailed-exitcodes",
        "--verbose",
    ]
    result = subprocess.run(command, check=False)
    if result.returncode not in PUPPET_RUN_OK:
        raise PeRepoError(f"the Puppet run on the primary failed (exit {result.returncode})")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("action", choices=("set", "unset"))
    parser.add_argument("address", help="the pool's DNS name")
    parser.add_argument("--certname", required=True, help="the primary's certname")
    parser.add_argument("--classifier-url", required=True, help="e.g. https://primary:4433/classifier-api")
    parser.add_argument("--ssl-dir", default="/etc/puppetlabs/puppet/ssl")
    parser.add_argument("--group", required=True, help="node group, e.g. 'PE Master'")
    parser.add_argument(
        "--parameter", required=True, help="pe_repo parameter, e.g. compile_master_pool_address"
    )
    parser.add_argument(
        "--puppet",
        default="/opt/puppetlabs/bin/puppet",
        help="puppet executable; empty to skip the Puppet run",
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
