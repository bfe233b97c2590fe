"""HTTPS to PE's services, authenticated with the primary's own certificate, verified by the PE CA."""

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .common import StepError, one_line
from .settings import Settings


def quoted(name: str) -> str:
    """A checked name as one URL path segment."""
    return urllib.parse.quote(name, safe="")


class Api:
    """One PE service."""

    def __init__(self, base_url: str, settings: Settings) -> None:
        self.base_url = base_url.rstrip("/")
        try:
            context = ssl.create_default_context(cafile=settings.localcacert)
            context.load_cert_chain(settings.hostcert, settings.hostprivkey)
        except (OSError, ssl.SSLError) as error:
            raise StepError(f"cannot load the certificates of {settings.certname!r}: {error}") from None
        self.context = context

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        accept: str = "application/json",
        content_type: str = "application/json",
    ) -> Any:
        """The decoded JSON answer (text for non-JSON), or None for 404."""
        if body is None:
            data = None
        elif isinstance(body, str):
            data = body.encode("utf-8")
        else:
            data = json.dumps(body).encode("utf-8")
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": content_type, "Accept": accept},
        )
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=60) as response:
                text = response.read().decode("utf-8", errors="replace")
                answered_json = "json" in (response.headers.get("Content-Type") or "")
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            detail = one_line(error.read().decode("utf-8", errors="replace"), 300)
            raise StepError(f"{method} {path} answered HTTP {error.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise StepError(f"{method} {self.base_url}{path} failed: {reason}") from None
        if accept != "application/json":
            return text
        if not text.strip():
            return {}
        try:
            return json.loads(text)
        except ValueError:
            kind = "JSON" if answered_json else "a non-JSON answer"
            raise StepError(
                f"{method} {path} answered {kind} pe-lb cannot read: {one_line(text, 120)}"
            ) from None
