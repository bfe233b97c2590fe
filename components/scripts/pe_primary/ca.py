"""PE's certificate authority: what it holds for a certname, and signing only what was verified."""

import re
from typing import Any, Dict, Optional

from .api import Api, quoted
from .certificate import CertificateData
from .common import StepError
from .constants import CA_CONF_SETTINGS
from .files import read_text


class CertificateAuthority:
    """`/puppet-ca/v1`, reached with the primary's own certificate (which carries pp_cli_auth)."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def status(self, certname: str) -> Optional[Dict[str, Any]]:
        """certificate_status (state: requested, signed, revoked), or None if the CA has nothing."""
        answer = self.api.request("GET", "/certificate_status/" + quoted(certname))
        return None if answer is None else dict(answer)

    def request(self, certname: str) -> CertificateData:
        return CertificateData(self._pem("/certificate_request/", certname))

    def certificate(self, certname: str) -> CertificateData:
        return CertificateData(self._pem("/certificate/", certname))

    def set_state(self, certname: str, state: str) -> None:
        self.api.request("PUT", "/certificate_status/" + quoted(certname), {"desired_state": state})

    def remove(self, certname: str) -> None:
        """Everything the CA holds for ``certname`` (an unsigned request, here)."""
        self.api.request("DELETE", "/certificate_status/" + quoted(certname))

    def _pem(self, path: str, certname: str) -> str:
        text = self.api.request("GET", path + quoted(certname), accept="text/plain")
        if text is None:
            raise StepError(f"the CA has no {path.strip('/').replace('_', ' ')} for {certname}")
        return str(text)


def settings_missing(ca_conf_path: str) -> str:
    """Why the CA would refuse a compiler's request ('' if it accepts alt names and pp_auth_role).

    Puppet Server's CA answers 409 to signing a request with extra alt names unless
    ``allow-subject-alt-names: true``, and one with an authorization extension unless
    ``allow-authorization-extensions: true`` (both in ca.conf's certificate-authority
    section; a change needs a restart). Read before anything is changed, so a CA that
    would refuse leaves nothing behind.
    """
    try:
        text = read_text(ca_conf_path)
    except OSError as error:
        return f"cannot read {ca_conf_path} ({error.strerror}), the CA's settings"
    settings = re.sub(r"(#|//).*", "", text)
    missing = [
        name
        for name in CA_CONF_SETTINGS
        if not re.search(r"(?<![\w-])\"?" + re.escape(name) + r"\"?\s*[:=]\s*true\b", settings)
    ]
    if not missing:
        return ""
    return (
        "the CA would refuse a compile master's request: set {} in the certificate-authority section "
        "of {} and restart pe-puppetserver (PE enables both for compilers)".format(
            " and ".join(f"{name}: true" for name in missing), ca_conf_path
        )
    )
