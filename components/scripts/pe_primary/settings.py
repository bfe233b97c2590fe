"""The primary's own settings: paths from `puppet config print`, and its platform."""

from typing import Dict

from .common import StepError, run_checked


class Settings:
    """Paths and names from `puppet config print`, never rebuilt from a host name."""

    KEYS = (
        "certname",
        "hostcert",
        "hostprivkey",
        "localcacert",
        "agent_catalog_run_lockfile",
        "agent_disabled_lockfile",
    )

    def __init__(self, puppet: str) -> None:
        output = run_checked([puppet, "config", "print", *self.KEYS, "--section", "agent"])
        values: Dict[str, str] = {}
        for line in output.splitlines():
            key, sep, value = line.partition(" = ")
            if sep:
                values[key.strip()] = value.strip()
        missing = [key for key in self.KEYS if not values.get(key)]
        if missing:
            raise StepError("puppet config print did not answer " + ", ".join(missing))
        self.certname = values["certname"]
        self.hostcert = values["hostcert"]
        self.hostprivkey = values["hostprivkey"]
        self.localcacert = values["localcacert"]
        self.run_lockfile = values["agent_catalog_run_lockfile"]
        self.disabled_lockfile = values["agent_disabled_lockfile"]


def platform_tag(os_release: str, machine: str) -> str:
    """OS family, major release and architecture, e.g. el-9-x86_64 (the bootstrap computes the same)."""
    fields = {}
    for line in os_release.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip("\"'")
    os_id = fields.get("ID", "")
    family_ids = (" " + os_id + " " + fields.get("ID_LIKE", "") + " ").lower()
    if os_id == "amzn":
        family = "amazon"
    elif os_id in ("ubuntu", "debian", "sles"):
        family = os_id
    elif any(f" {name} " in family_ids for name in ("rhel", "fedora", "centos")):
        family = "el"
    elif any(f" {name} " in family_ids for name in ("suse", "sles")):
        family = "sles"
    else:
        family = os_id
    version = fields.get("VERSION_ID", "")
    major = version if family == "ubuntu" else version.split(".")[0]
    return f"{family}-{major}-{machine}"
