"""`join CERTNAME`: a compile master joins PE, in the order PE provisions a compiler.

1. The certname is the instance's: the resource name of --instance-arn's instance.
2. The CA can sign a compiler's request (ca.conf), or nothing happens.
3. Wait for the instance's certificate request.
4. Verify it: exactly what a compile master of this pool asks for, on the primary's
   platform, proven to come from that instance (AWS's signed identity document), with
   the key pe-lb saw before for that certname if any. Refused: nothing has changed.
5. Allow its PuppetDB into PE-PostgreSQL and pin it to PE Infrastructure Agent: its
   first Puppet run starts as soon as it is signed.
6. Sign; read the certificate back and check it is the request verified. A failure
   undoes step 5 (and revokes a certificate that differs).
7. Wait for its first Puppet run, run Puppet on the primary, wait until it serves.
"""

import calendar
import re
import ssl
import time
import urllib.error
import urllib.request
from typing import Any, Dict, List, Optional

from . import names
from .api import quoted
from .ca import settings_missing
from .certificate import CertificateData
from .common import StepError, say, wait_for
from .constants import COMPILER_AUTH_ROLE, PE_INFRASTRUCTURE_AGENT_GROUP, PUPPETSERVER_PORT
from .files import load_json, update_json
from .identity import identity_problems
from .primary import Primary

CLOCK_SKEW_SECONDS = 60
SIGNED_KEYS = "signed-keys.json"
"""certname -> SHA-256 of the public key pe-lb verified for it: a later request with another key
for the same certname (a name is one instance's, forever) is not that instance's."""


def join(primary: Primary, certname: str) -> None:
    args = primary.args
    region, account_id, instance_id = names.instance_arn(args.instance_arn)
    expected_certname = names.instance_certname(instance_id, region)
    if certname != expected_certname:
        raise StepError(f"certname {certname} is not instance {instance_id}'s name {expected_certname}")
    refusal = settings_missing(args.ca_conf)
    if refusal:
        raise StepError(refusal)

    status = wait_for(
        f"the certificate request of {certname}",
        lambda: _status(primary, certname),
        args.csr_timeout,
        args.poll_seconds,
        f"no certificate request from instance {instance_id} (certname {certname}) "
        f"within {args.csr_timeout:.0f} s; look at "
        "/var/log/cloud-init-output.log on the instance (pe-lb bootstrap)",
    )
    platform = primary.platform()
    state = status.get("state")
    if state == "revoked":
        raise StepError(
            f"{certname} has a revoked certificate on the CA; purge it (puppet node purge {certname}) first"
        )
    if state == "requested":
        request = primary.ca.request(certname)
        problems = verification_problems(
            primary, request, certname, instance_id, account_id, region, platform
        )
        if problems:
            raise StepError(
                "the certificate request of {} was refused, nothing was changed: {}. If instance {} did not "
                "make it, clean it (puppetserver ca clean --certname {}) and replace the instance".format(
                    certname, "; ".join(problems), instance_id, certname
                )
            )
        say(
            "certificate request of {} verified: instance {} in {}, {}, alt names {}, pp_auth_role {}".format(
                certname,
                instance_id,
                region,
                platform,
                ", ".join(sorted(request.dns_names)),
                COMPILER_AUTH_ROLE,
            )
        )
        _record_key(primary, certname, request)
        signed_since = time.time()
        _sign(primary, certname, request, platform)
    else:
        signed = primary.ca.certificate(certname)
        problems = signed.problems(certname, args.pool_address, platform)
        if problems:
            raise StepError(
                "{} already has a certificate pe-lb did not sign: {}".format(certname, "; ".join(problems))
            )
        say(f"{certname} is already signed and verified")
        _admit(primary, certname)
        signed_since = 0.0

    first_run = wait_for(
        f"the first Puppet run of {certname} (it starts once its certificate is signed)",
        lambda: _reported_since(primary, certname, signed_since),
        args.run_timeout,
        args.poll_seconds,
        f"{certname} (instance {instance_id}) reported no Puppet run "
        f"within {args.run_timeout:.0f} s; look at /var/log/cloud-init-output.log on the instance",
    )
    say(f"{certname} ran Puppet ({first_run})")
    # PE's order: the compiler, then the primary (its PuppetDB and PostgreSQL allowlists, services).
    primary.puppet_runs.ensure_run_after(_epoch(first_run), f"compile master {certname} joined")

    status_url = args.status_url.format(certname=certname, port=PUPPETSERVER_PORT)
    wait_for(
        f"{certname} to answer {status_url}",
        lambda: _status_ok(status_url, primary.settings.localcacert),
        args.status_timeout,
        args.poll_seconds,
        f"{certname} never answered 200 on {status_url} within {args.status_timeout:.0f} s; "
        "check puppetserver on it and that the primary "
        f"may reach it on {PUPPETSERVER_PORT} (primaryCidrs)",
    )
    say(f"{certname} joined the pool: {status_url} answers 200")


def _status(primary: Primary, certname: str) -> Optional[Dict[str, Any]]:
    """certificate_status; for a request the CA cannot describe (it answers 500 for one with a
    repeated extension), the request itself, so the checks below name what is wrong with it."""
    try:
        return primary.ca.status(certname)
    except StepError as failure:
        if "HTTP 500" not in str(failure):
            raise
        primary.ca.request(certname)  # raises if there is no readable request either
        return {"state": "requested", "name": certname}


def verification_problems(
    primary: Primary,
    request: CertificateData,
    certname: str,
    instance_id: str,
    account_id: str,
    region: str,
    platform: str,
) -> List[str]:
    """Everything that keeps ``request`` from being signed (empty: sign it)."""
    args = primary.args
    problems = request.problems(certname, args.pool_address, platform)
    problems += identity_problems(
        request,
        instance_id=instance_id,
        account_id=account_id,
        region=region,
        certificates_path=args.identity_certificates,
        max_age_seconds=args.identity_max_age,
    )
    known = load_json(primary.state_file(SIGNED_KEYS)).get(certname)
    if known and known != request.key_fingerprint():
        problems.append(
            f"its key is not the one pe-lb verified for {certname} before (SHA-256 {str(known)[:16]}...)"
        )
    return problems


def _record_key(primary: Primary, certname: str, request: CertificateData) -> None:
    def change(keys: Dict[str, str]) -> Dict[str, str]:
        keys[certname] = request.key_fingerprint()
        return keys

    update_json(primary.state_file(SIGNED_KEYS), change)


def _admit(primary: Primary, certname: str) -> None:
    """PE-PostgreSQL admits its PuppetDB; PE Infrastructure Agent holds it (the primary, not the pool)."""
    # Before its PuppetDB first starts, as PE's provision plan and peadm do.
    primary.postgres.set(certname, True)
    # Before it is signed: its first Puppet run starts as soon as it is, and must already get
    # PE Infrastructure Agent's settings (the primary), never PE Agent's (the pool).
    primary.classifier.pin(PE_INFRASTRUCTURE_AGENT_GROUP, certname, True)


def _withdraw(primary: Primary, certname: str) -> None:
    """Undo _admit after a failed signing, so nothing of the refused node stays behind."""
    try:
        primary.classifier.pin(PE_INFRASTRUCTURE_AGENT_GROUP, certname, False)
    finally:
        primary.postgres.set(certname, False)


def _sign(primary: Primary, certname: str, request: CertificateData, platform: str) -> None:
    pool_names = primary.args.pool_address
    try:
        _admit(primary, certname)
        primary.ca.set_state(certname, "signed")
        signed = primary.ca.certificate(certname)
        if signed.public_key != request.public_key or signed.problems(certname, pool_names, platform):
            # The request changed between the check and the signing: take the certificate back.
            primary.ca.set_state(certname, "revoked")
            raise StepError(f"the certificate signed for {certname} is not the request verified; revoked it")
    except StepError as failure:
        try:
            _withdraw(primary, certname)
        except StepError as undo_failure:
            raise StepError(
                f"{failure}; undoing the pin and pg_ident.conf entry failed too: {undo_failure}"
            ) from None
        raise StepError(f"{failure} (its pin and pg_ident.conf entry were taken back)") from None
    say(f"signed {certname}")


def _reported_since(primary: Primary, certname: str, since: float) -> str:
    """The node's last report time in PuppetDB if it is an active node's, from ``since`` on ('' if not).

    PuppetDB keeps a purged node's record, deactivated, with its old report: a certname that
    joins again must not take that for its first run.
    """
    node = primary.puppetdb.request("GET", "/nodes/" + quoted(certname)) or {}
    reported = str(node.get("report_timestamp") or "")
    if not reported or node.get("deactivated") or node.get("expired"):
        return ""
    # The report's time is the compile master's clock: allow for a little skew.
    return reported if _epoch(reported) >= since - CLOCK_SKEW_SECONDS else ""


def _epoch(timestamp: str) -> float:
    """PuppetDB's ISO 8601 UTC timestamp (2026-11-25T08:40:47.123Z) as epoch seconds."""
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?", timestamp)
    if not match:
        return time.time()
    return calendar.timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")) + float(match.group(2) or 0)


def _status_ok(url: str, cafile: str) -> bool:
    try:
        context = ssl.create_default_context(cafile=cafile)
        with urllib.request.urlopen(url, context=context, timeout=10) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False
