"""The pg_ident.conf maps that let a compiler's PuppetDB reach PE-PostgreSQL, as peadm writes them."""

import glob
import re
from typing import List, Optional, Tuple

from .common import run_checked, say
from .constants import POSTGRESQL_MAPS
from .files import update_text


class PostgresAllowlist:
    def __init__(self, data_glob: str, systemctl: str) -> None:
        found = sorted(glob.glob(data_glob), key=_version_key)
        self.path: Optional[str] = found[-1] if found else None
        self.systemctl = systemctl

    @staticmethod
    def lines(certname: str) -> List[str]:
        return [f"{name} {certname} {user}" for name, user in POSTGRESQL_MAPS]

    def set(self, certname: str, allowed: bool) -> bool:
        """Add (or remove) the certname's maps; True if pg_ident.conf changed (and was reloaded)."""
        if self.path is None:
            say(
                f"PE-PostgreSQL is not on this primary: allow {certname} on your database host as PE's "
                "provision plan does (its next Puppet run there does it too)"
            )
            return False
        wanted = self.lines(certname)

        def change(text: str) -> str:
            lines = text.splitlines()
            if allowed:
                updated = lines + [line for line in wanted if line not in lines]
            else:
                updated = [line for line in lines if line not in wanted]
            return text if updated == lines else "\n".join(updated) + "\n"

        if not update_text(self.path, change):
            say("PE-PostgreSQL already {} {}".format("allows" if allowed else "does not allow", certname))
            return False
        # Concurrent changes each reload; a reload reads the whole file as it is now.
        run_checked([self.systemctl, "reload", "pe-postgresql.service"])
        say(
            "PE-PostgreSQL {} {} (pg_ident.conf, reloaded)".format(
                "allows" if allowed else "no longer allows", certname
            )
        )
        return True


def _version_key(path: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path))
