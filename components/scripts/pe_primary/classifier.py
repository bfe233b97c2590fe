"""PE's node classifier: node groups, their data, and pinned nodes."""

from typing import Any, Dict

from .api import Api, quoted
from .common import StepError, say


class Classifier:
    def __init__(self, api: Api) -> None:
        self.api = api

    def group(self, name: str) -> Dict[str, Any]:
        for group in self.api.request("GET", "/v1/groups") or []:
            if group.get("name") == name:
                return dict(group)
        raise StepError(f"no node group named {name!r} in the classifier")

    def update(self, group_id: str, delta: Dict[str, Any]) -> None:
        # The classifier merges a group delta; a null value removes the key.
        self.api.request("POST", "/v1/groups/" + quoted(group_id), delta)

    def pin(self, group_name: str, certname: str, pinned: bool) -> None:
        group = self.group(group_name)
        action = "pin" if pinned else "unpin"
        self.api.request(
            "POST", "/v1/groups/{}/{}".format(quoted(group["id"]), action), {"nodes": [certname]}
        )
        say(
            "{} {} {} {!r}".format(
                action + "ned" if pinned else "unpinned", certname, "to" if pinned else "from", group_name
            )
        )
