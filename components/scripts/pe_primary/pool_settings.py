"""`pe-repo-set/unset` and `agent-set/unset`: PE's settings that send agents to the pool."""

import json
import re
import ssl
import time
import urllib.error
import urllib.request
from typing import Any, Dict, List, Optional

from .classifier import Classifier
from .common import StepError, say, wait_for
from .constants import (
    AGENT_PROFILE,
    PCP_BROKER_PORT,
    PE_AGENT_GROUP,
    PE_INFRASTRUCTURE_AGENT_GROUP,
    PE_MASTER_GROUP,
    PE_REPO_CLASS,
    PE_REPO_PARAMETER,
    PUPPETSERVER_PORT,
)
from .files import load_json, locked, replace
from .holders import HOLDERS_FILE, Holders
from .primary import Primary


def names_address(text: str, address: str) -> bool:
    """Whether an install.bash names ``address`` as its server (not as part of a longer name)."""
    return re.search(r"(?<![\w.-])" + re.escape(address) + r"(?![\w.-])", text, re.IGNORECASE) is not None


def installer_names(primary: Primary, host: str, address: str) -> bool:
    """Whether ``host`` serves an agent install script that names ``address``."""
    url = primary.args.package_url.format(host=host, port=PUPPETSERVER_PORT)
    try:
        context = ssl.create_default_context(cafile=primary.settings.localcacert)
        with urllib.request.urlopen(url, context=context, timeout=30) as response:
            return names_address(response.read().decode("utf-8", errors="replace"), address)
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def still_held(primary: Primary, setting: str, address: str) -> bool:
    """Release this command's hold on ``address``; True (and said) if other holds keep it set."""
    owner = primary.args.owner
    if not owner:
        return False
    remaining = Holders(primary.state_file(HOLDERS_FILE), setting).release(address, owner)
    if remaining:
        say(
            "{} {} is still held by {}: left set".format(
                setting, address, ", ".join(f"{name} ({count})" for name, count in sorted(remaining.items()))
            )
        )
        return True
    return False


def hold(primary: Primary, setting: str, address: str) -> None:
    if primary.args.owner:
        holders = Holders(primary.state_file(HOLDERS_FILE), setting)
        holders.hold(address, primary.args.owner, again=primary.args.update)


def pe_repo(primary: Primary, address: str, wanted: bool) -> None:
    """pe_repo::compile_master_pool_address in PE Master, then Puppet in PE's order, checked.

    PE: "Run Puppet on the compiler, and then on the primary server." A compiler's
    install.bash names the pool only after its own run with the new value; the primary's
    run then updates the console's install command. The script cannot start runs on the
    compile masters: it waits until each one's install script names the pool (their next
    scheduled run), then runs Puppet on the primary unless its own install script already
    names the pool. If any of that fails, the previous value is put back: a failed set
    leaves what agents had.
    """
    classifier = primary.classifier
    group = classifier.group(PE_MASTER_GROUP)
    class_parameter = group.get("classes", {}).get(PE_REPO_CLASS, {}).get(PE_REPO_PARAMETER)
    current = group.get("config_data", {}).get(PE_REPO_CLASS, {}).get(PE_REPO_PARAMETER)
    if not wanted:
        if still_held(primary, PE_REPO_CLASS, address):
            return
        if current != address:
            say(f"{PE_REPO_PARAMETER} is {current!r}, not {address!r}: left alone")
            return
        _set_pe_repo(classifier, group, None)
        say(f"{PE_REPO_PARAMETER} ({address}) removed from {PE_MASTER_GROUP!r}")
        primary.puppet_runs.ensure_run_after(time.time(), "pe_repo pool address removed")
        return
    if class_parameter is not None:
        raise StepError(
            f"{PE_MASTER_GROUP!r} sets the {PE_REPO_CLASS} class parameter {PE_REPO_PARAMETER} = "
            f"{class_parameter!r}, which overrides the configuration data pe-lb sets; remove it "
            f"(console: {PE_MASTER_GROUP} > Classes > {PE_REPO_CLASS}) and run pulumi up again"
        )
    if current == address:
        say(f"{PE_REPO_PARAMETER} is already {address} in {PE_MASTER_GROUP!r}: unchanged")
    else:
        _set_pe_repo(classifier, group, address)
        say(f"{PE_REPO_PARAMETER} changed from {current!r} to {address!r} in {PE_MASTER_GROUP!r}")
    try:
        _pe_repo_in_pe_order(primary, address)
    except StepError as failure:
        if current != address:
            _set_pe_repo(classifier, group, current)
            raise StepError(f"{failure} ({PE_REPO_PARAMETER} put back to {current!r})") from None
        raise
    hold(primary, PE_REPO_CLASS, address)


def _set_pe_repo(classifier: Classifier, group: Dict[str, Any], value: Optional[str]) -> None:
    # The classifier merges a group delta; null removes the key.
    classifier.update(group["id"], {"config_data": {PE_REPO_CLASS: {PE_REPO_PARAMETER: value}}})


def _pe_repo_in_pe_order(primary: Primary, address: str) -> None:
    args = primary.args
    for certname in args.compile_masters:
        wait_for(
            f"{certname}'s next Puppet run to serve an install script naming {address}",
            lambda certname=certname: installer_names(primary, certname, address),  # type: ignore[misc]
            args.run_timeout,
            args.poll_seconds,
            f"{certname} still serves an install script that does not name {address} after "
            f"{args.run_timeout:.0f} s; run Puppet on it (puppet agent -t, or Run Puppet in the console) "
            "and run pulumi up again",
        )
    if installer_names(primary, primary.settings.certname, address):
        say(f"every compile master and the primary hand out install scripts naming {address}")
        return
    primary.puppet_runs.ensure_run_after(time.time(), "pe_repo pool address")


def agent_settings(address: str) -> Dict[str, List[str]]:
    """PE Agent's settings that send agents (8140) and PXP agents (8142) to the pool."""
    return {
        "server_list": [f"{address}:{PUPPETSERVER_PORT}"],
        "primary_uris": [f"https://{address}:{PUPPETSERVER_PORT}"],
        "pcp_broker_list": [f"{address}:{PCP_BROKER_PORT}"],
    }


def agent(primary: Primary, address: str, wanted: bool) -> None:
    """Point PE Agent's puppet_enterprise::profile::agent at the pool, or take back exactly pe-lb's values.

    pe-lb remembers on the primary which values it set, so a new pool address replaces
    pe-lb's old one while a value someone else set is left alone, and said so.
    """
    classifier = primary.classifier
    group = classifier.group(PE_AGENT_GROUP)
    current = group.get("classes", {}).get(AGENT_PROFILE)
    if current is None:
        raise StepError(f"{PE_AGENT_GROUP!r} has no {AGENT_PROFILE} class; PE's default groups are needed")
    if not wanted and still_held(primary, PE_AGENT_GROUP, address):
        return
    record_path = primary.state_file("pe-agent.json")
    with locked(record_path):
        before = {parameter: current.get(parameter) for parameter in agent_settings(address)}
        delta = _agent_delta(classifier, group, current, record_path, address, wanted)
    if delta:
        try:
            # PE: then Puppet on the primary, then on agents (their next runs pick it up).
            primary.puppet_runs.ensure_run_after(time.time(), "PE Agent pool settings")
        except StepError as failure:
            if not wanted:
                raise
            restored = {name: before[name] for name in delta}
            classifier.update(group["id"], {"classes": {AGENT_PROFILE: restored}})
            raise StepError(f"{failure} (PE Agent's {', '.join(sorted(delta))} put back)") from None
    if wanted:
        hold(primary, PE_AGENT_GROUP, address)


def _agent_delta(
    classifier: Classifier,
    group: Dict[str, Any],
    current: Dict[str, Any],
    record_path: str,
    address: str,
    wanted: bool,
) -> Dict[str, Any]:
    """Change PE Agent's settings and pe-lb's record of them (under the record's lock); the change."""
    ours = load_json(record_path)
    delta: Dict[str, Any] = {}
    for parameter, value in agent_settings(address).items():
        present = current.get(parameter)
        if wanted:
            if present == value:
                say(f"{parameter} is already {value} in {PE_AGENT_GROUP!r}")
            elif present in (None, []) or present == ours.get(parameter):
                delta[parameter] = value
                ours[parameter] = value
                say(f"{parameter}: {present!r} -> {value} in {PE_AGENT_GROUP!r}")
            else:
                say(f"{parameter} is {present!r}, set by someone else: left alone (agents keep using it)")
        elif present == value:
            delta[parameter] = None
            ours.pop(parameter, None)
            say(f"{parameter} {value} removed from {PE_AGENT_GROUP!r}")
        else:
            say(f"{parameter} is {present!r}, not pe-lb's {value}: left alone")
    if wanted:
        _warn_unless_infrastructure_pinned_to_primary(classifier)
    if delta:
        classifier.update(group["id"], {"classes": {AGENT_PROFILE: delta}})
        replace(record_path, json.dumps(ours, sort_keys=True) + "\n")
    return delta


def _warn_unless_infrastructure_pinned_to_primary(classifier: Classifier) -> None:
    infrastructure = (
        classifier.group(PE_INFRASTRUCTURE_AGENT_GROUP).get("classes", {}).get(AGENT_PROFILE) or {}
    )
    missing = [name for name in ("server_list", "pcp_broker_list") if not infrastructure.get(name)]
    if missing:
        say(
            f"warning: {PE_INFRASTRUCTURE_AGENT_GROUP!r} sets no {', '.join(missing)}: infrastructure nodes "
            f"(compile masters included) inherit PE Agent's pool settings and would connect through the "
            "pool to themselves; set them to the primary there"
        )
