"""Who holds a pool setting pe-lb made on the primary, so a delete reverts only what is no longer held.

Each command resource that sets a value (pe_repo's pool address, PE Agent's pool lists) is
a holder, named by ``--owner`` (project/stack/resource). The engine replaces a resource
create-before-delete: the new one's create runs, then the old one's delete. When both ask
for the same value (a forced replacement, an upgrade), the value must survive the old
delete: so holds are counted. A create adds one, an update keeps at least one, a delete
takes one back; the value is removed only when nobody holds it any more.
"""

from typing import Any, Dict

from .files import update_json

HOLDERS_FILE = "holders.json"


class Holders:
    def __init__(self, path: str, setting: str) -> None:
        self.path = path
        self.setting = setting

    def hold(self, value: str, owner: str, *, again: bool) -> int:
        """Count ``owner``'s hold on ``value`` (``again``: an update, already counted); its holds now."""

        def change(record: Dict[str, Any]) -> Dict[str, Any]:
            owners = record.setdefault(self.setting, {}).setdefault(value, {})
            held = int(owners.get(owner, 0))
            owners[owner] = max(held, 1) if again else held + 1
            return record

        return int(update_json(self.path, change)[self.setting][value][owner])

    def release(self, value: str, owner: str) -> Dict[str, int]:
        """Take back one of ``owner``'s holds on ``value``; the holds that remain, by owner."""

        def change(record: Dict[str, Any]) -> Dict[str, Any]:
            owners = record.setdefault(self.setting, {}).setdefault(value, {})
            held = int(owners.get(owner, 0)) - 1
            if held > 0:
                owners[owner] = held
            else:
                owners.pop(owner, None)
            if not owners:
                record[self.setting].pop(value)
            return record

        remaining = update_json(self.path, change).get(self.setting, {}).get(value, {})
        return {name: int(count) for name, count in remaining.items()}
