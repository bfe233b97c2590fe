"""`leave CERTNAME`: a compile master leaves PE, as PE removes a compiler.

1. Wait out the load balancer's deregistration delay: its last connections finish.
2. Purge the node (`puppet node purge`: certificate revoked and cleaned, node deactivated).
3. Unpin it from PE Infrastructure Agent and drop its PE-PostgreSQL maps.
4. Run Puppet on the primary, so its services forget the node.
"""

import time
from typing import Any, Dict

from .common import StepError, run_checked, say
from .constants import PE_INFRASTRUCTURE_AGENT_GROUP
from .primary import Primary


def _status(primary: Primary, certname: str) -> Dict[str, Any]:
    """What the CA holds for ``certname`` ({} for nothing). A request it cannot describe (it answers
    500 for one with a repeated extension) is never signed: removed through the API, which does."""
    try:
        return primary.ca.status(certname) or {}
    except StepError as failure:
        if "HTTP 500" not in str(failure):
            raise
        primary.ca.remove(certname)
        return {"state": "removed"}


def leave(primary: Primary, certname: str) -> None:
    args = primary.args
    if args.drain_seconds > 0:
        say(f"waiting {args.drain_seconds:.0f} s for connections to {certname} to drain")
        time.sleep(args.drain_seconds)
    changed = False
    status = _status(primary, certname)
    if status.get("state") == "removed":
        say(f"{certname} had only an unsigned request the CA could not read: removed it")
    elif not status:
        say(f"{certname} has no certificate on the CA: already purged")
    elif status.get("state") == "requested":
        # Never signed (its join refused it or never ran): nothing to revoke; `puppet node purge`
        # (puppetserver ca clean) refuses an unsigned request, the CA API removes it.
        primary.ca.remove(certname)
        say(f"{certname} had only an unsigned request on the CA: removed it")
    else:
        run_checked([args.puppet, "node", "purge", certname, "--color=false"])
        say(f"purged {certname} (certificate revoked and cleaned, node deactivated in PuppetDB)")
        changed = True
    primary.classifier.pin(PE_INFRASTRUCTURE_AGENT_GROUP, certname, False)
    changed = primary.postgres.set(certname, False) or changed
    if changed:
        primary.puppet_runs.ensure_run_after(time.time(), f"compile master {certname} left")
    say(
        "the other compile masters fetch the new CRL on their next Puppet run (PE's runinterval, "
        f"30 min by default); {certname}'s key ends with its instance"
    )
