"""The least-connections tier (balancing: least-connections): HAProxy instances are the NLB's targets,
they find the compile masters through the pool's discovery record, and each says on its stats page
(HAProxy's CSV) what it makes of every compile master.

What poolctl reads of that page: per backend (one per pool port) the server slots that
`server-template compile-master- 1-N <discovery name>` makes, each with its address (empty while
the slot holds no compile master: HAProxy then shows it MAINT (resolution)), status (UP, UP 1/2,
DOWN, MAINT, ...), current sessions (scur) and queued connections (qcur).
"""

from __future__ import annotations

import csv
import http.client
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .. import pe
from .pool import FOREIGN, Discovery, Instance, Pool, PoolError, PoolStatus

BACKENDS = {
    pe.PUPPETSERVER_PORT: pe.HAPROXY_PUPPETSERVER_BACKEND,
    pe.PCP_BROKER_PORT: pe.HAPROXY_PCP_BROKER_BACKEND,
}
"""The backend of each pool port in the rendered haproxy.cfg."""

SLOT_PREFIX = "compile-master-"
"""The server-template's prefix: the backend's rows named compile-master-1.. are its slots."""

STATS_TIMEOUT_SECONDS = 5.0
UP = "UP"
"""A slot's status once its health checks pass (HAProxy writes "UP 1/2" while one more failure
would take it down, e.g. before its first check has passed)."""
ABSENT = "absent"
"""No slot of the backend holds the compile master's address: HAProxy has it out of rotation."""
NOT_READ = "not read"


class StatsError(Exception):
    """An HAProxy's stats could not be read or are not what poolctl can use: one line."""


@dataclass(frozen=True)
class Slot:
    """One server slot of a backend as the stats page shows it."""

    name: str
    address: str
    """The compile master's IP address, without the port; empty when the slot holds none."""
    status: str
    sessions: int
    queued: int
    check: str = ""
    """The last health check's status and code (L7OK 200, L7STS 503, L4CON), when checked."""

    @property
    def state(self) -> str:
        """Its status, with why a DOWN one failed its check."""
        failed = self.status.startswith("DOWN") and self.check
        return f"{self.status} ({self.check})" if failed else self.status

    @property
    def out(self) -> bool:
        """Out of rotation for new connections: HAProxy puts a slot whose address left the record
        in MAINT (resolution); its open sessions finish."""
        return self.status.startswith("MAINT")


def parse_stats(text: str) -> dict[int, list[Slot]]:
    """The server slots of each pool port's backend, from HAProxy's CSV (a `# pxname,svname,...`
    header, then a row per frontend, backend and server)."""
    if not text.startswith("# pxname,svname,"):
        raise StatsError("the answer is not HAProxy's CSV stats (no '# pxname,svname,' header)")
    reader = csv.DictReader(text[2:].splitlines())
    missing = [name for name in ("status", "scur", "qcur", "addr") if name not in (reader.fieldnames or [])]
    if missing:
        raise StatsError(f"HAProxy's CSV stats lack the fields {', '.join(missing)}")
    rows = list(reader)
    slots: dict[int, list[Slot]] = {}
    for port, backend in BACKENDS.items():
        found = [row for row in rows if row["pxname"] == backend]
        if not found:
            raise StatsError(f"no backend {backend} in its stats: is this pe-lb's HAProxy?")
        slots[port] = [_slot(row) for row in found if row["svname"].startswith(SLOT_PREFIX)]
        if any(not slot.address and not slot.out for slot in slots[port]):
            # The HTTP stats page leaves addr empty unless `stats show-legends` is set: poolctl
            # could not tell which compile master a slot holds, and would take every one for absent.
            raise StatsError(
                "its stats page hides the servers' addresses: the `listen stats` section of "
                "haproxy.cfg needs `stats show-legends`"
            )
    return slots


def _slot(row: dict[str, str]) -> Slot:
    address = row["addr"] or ""
    if address:
        address = address.rsplit(":", 1)[0].strip("[]")
    if address == "0.0.0.0":
        # An unused slot: empty in HAProxy 2.6 (init-addr none), 0.0.0.0 where a slot starts unset.
        address = ""
    check = " ".join(part for part in (row.get("check_status"), row.get("check_code")) if part)
    return Slot(row["svname"], address, row["status"], _count(row["scur"]), _count(row["qcur"]), check)


def _count(value: str) -> int:
    try:
        return int(value or 0)
    except ValueError:
        raise StatsError(f"{value!r} is not a count of connections") from None


def read_stats(url: str, timeout: float = STATS_TIMEOUT_SECONDS) -> dict[int, list[Slot]]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            text = answer.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as error:
        raise StatsError(f"HTTP {error.code} from {url}") from None
    except urllib.error.URLError as error:
        reason = error.reason
        why = getattr(reason, "strerror", None) or str(reason)
        raise StatsError(f"cannot reach {url}: {why}") from None
    except TimeoutError:
        raise StatsError(f"no answer from {url} within {timeout:g} s") from None
    except (OSError, http.client.HTTPException) as error:
        raise StatsError(f"reading {url} failed: {error}") from None
    return parse_stats(text)


@dataclass
class HaproxyStats:
    """One HAProxy instance's stats: its slots per pool port, or why they could not be read."""

    url: str
    slots: dict[int, list[Slot]] = field(default_factory=dict)
    error: str = ""

    def slot(self, port: int, address: str) -> Slot | None:
        """The slot holding ``address`` in the port's backend (one in rotation first), else None."""
        holding = [slot for slot in self.slots.get(port, []) if slot.address == address]
        return next((slot for slot in holding if not slot.out), holding[0] if holding else None)

    def named(self, port: int, name: str) -> Slot | None:
        return next((slot for slot in self.slots.get(port, []) if slot.name == name), None)


def read_all(urls: dict[str, str]) -> dict[str, HaproxyStats]:
    """Each HAProxy's stats (by instance id), read side by side: an unreachable one costs one timeout."""

    def read(url: str) -> HaproxyStats:
        try:
            return HaproxyStats(url, read_stats(url))
        except StatsError as error:
            return HaproxyStats(url, error=str(error))

    if not urls:
        return {}
    with ThreadPoolExecutor(max_workers=min(8, len(urls))) as pool:
        return dict(zip(urls, pool.map(read, urls.values()), strict=True))


def stats_url(template: str, address: str) -> str:
    return template.replace("{address}", address)


# --- the tier as a whole ---------------------------------------------------------------------------


@dataclass
class TierStatus:
    """The NLB (its targets: HAProxy instances), the discovery record, each HAProxy's stats, and
    every compile master of the pool as the HAProxy instances see it."""

    nlb: PoolStatus
    pool: str
    compile_masters: dict[str, Instance]
    stats: dict[str, HaproxyStats]
    """By HAProxy instance id: the pool's HAProxy targets that are running."""
    discovery: Discovery | None = None
    discovery_problem: str = ""

    @property
    def targets(self) -> list[str]:
        return self.nlb.in_rotation

    @property
    def urls(self) -> dict[str, str]:
        """Where each running HAProxy's stats are read."""
        return {haproxy: stats.url for haproxy, stats in self.stats.items()}

    @property
    def haproxies(self) -> list[str]:
        """The target groups' targets that are this pool's HAProxy instances."""
        return [i for i in self.targets if is_pool_haproxy(self.nlb.instances.get(i), self.pool)]

    @property
    def foreign(self) -> list[str]:
        """Targets that are not the pool's HAProxy instances (another stack's, or a compile master
        still registered from flow-hash balancing)."""
        return [i for i in self.targets if i not in self.haproxies]

    def target_rotation(self, instance_id: str) -> str:
        return "in" if instance_id in self.haproxies else FOREIGN

    @property
    def record(self) -> tuple[str, ...]:
        return self.discovery.values if self.discovery else ()

    def in_record(self, instance_id: str) -> bool:
        address = self.compile_masters[instance_id].private_ip
        return bool(address) and address in self.record

    def rotation(self, instance_id: str) -> str:
        """in (its address in the discovery record), drained (by the stack's config), or out; unknown
        while the record cannot be read."""
        if self.discovery is None:
            return "unknown"
        if self.in_record(instance_id):
            return "in"
        return "drained" if instance_id in self.nlb.drained else "out"

    @property
    def in_rotation(self) -> list[str]:
        return [i for i in self.compile_masters if self.in_record(i)]

    @property
    def unexpectedly_out(self) -> list[str]:
        return [i for i in self.compile_masters if self.rotation(i) == "out"]

    @property
    def drained(self) -> list[str]:
        return [i for i in self.compile_masters if self.rotation(i) == "drained"]

    @property
    def stray_addresses(self) -> list[str]:
        """Record values that are no compile master's of the pool (a replaced one's, a typo)."""
        known = {instance.private_ip for instance in self.compile_masters.values()}
        return [address for address in self.record if address not in known]

    @property
    def unread(self) -> list[str]:
        return [i for i, stats in self.stats.items() if stats.error]

    def finishing(self, haproxy: str) -> dict[int, int]:
        """Sessions still open on the HAProxy's slots out of rotation, by port: drained compile
        masters' connections finishing (once its address left the record, a slot no longer says whose)."""
        slots = self.stats[haproxy].slots
        return {
            port: sum(s.sessions for s in slots.get(port, []) if s.out and not s.address) for port in BACKENDS
        }

    def seen(self, instance_id: str, port: int) -> dict[str, Slot | None]:
        """Each read HAProxy's slot for the compile master (None: absent)."""
        address = self.compile_masters[instance_id].private_ip
        return {h: stats.slot(port, address) for h, stats in self.stats.items() if not stats.error}

    def state(self, instance_id: str, port: int) -> str:
        """What the HAProxy instances make of it: one state when they agree, else each with how many."""
        return summary(slot.state if slot else ABSENT for slot in self.seen(instance_id, port).values())

    def sessions(self, instance_id: str, port: int) -> int:
        return sum(slot.sessions for slot in self.seen(instance_id, port).values() if slot)

    def queued(self, instance_id: str, port: int) -> int:
        return sum(slot.queued for slot in self.seen(instance_id, port).values() if slot)

    def is_up(self, instance_id: str) -> bool:
        """UP in both backends of every HAProxy, each of which was read."""
        return (
            bool(self.stats)
            and not self.unread
            and all(
                slot is not None and slot.status == UP
                for port in BACKENDS
                for slot in self.seen(instance_id, port).values()
            )
        )

    @property
    def healthy_targets(self) -> bool:
        return bool(self.haproxies) and all(self.nlb.is_healthy(i) for i in self.haproxies)

    @property
    def all_healthy(self) -> bool:
        """Every HAProxy healthy in the NLB and read, every compile master in the record UP on each."""
        return (
            self.healthy_targets
            and self.discovery is not None
            and bool(self.in_rotation)
            and all(self.is_up(i) for i in self.in_rotation)
        )

    @property
    def problems(self) -> bool:
        """Anything that makes `poolctl status` exit 1 (besides alarms)."""
        return bool(
            not self.all_healthy
            or self.unexpectedly_out
            or self.foreign
            or self.stray_addresses
            or self.unread
        )


def read_tier(pool: Pool, nlb: PoolStatus, identity: str) -> TierStatus:
    """The tier behind ``nlb`` (read with the pool's identity, so its compile masters are listed):
    the discovery record (a problem finding it is kept, to be shown) and the running HAProxy
    instances' stats."""
    compile_masters = {
        i: instance
        for i, instance in nlb.instances.items()
        if instance.role == pe.COMPILE_MASTER_ROLE and instance.pool == identity
    }
    urls = {
        i: stats_url(pool.stats_url, nlb.instances[i].private_ip)
        for i in nlb.in_rotation
        if is_pool_haproxy(nlb.instances[i], identity)
        and nlb.instances[i].state == "running"
        and nlb.instances[i].private_ip
    }
    view = TierStatus(nlb, identity, compile_masters, read_all(urls))
    try:
        view.discovery = pool.discovery(identity)
    except PoolError as error:
        view.discovery_problem = str(error)
    return view


def is_pool_haproxy(instance: Instance | None, pool: str) -> bool:
    return instance is not None and instance.role == pe.HAPROXY_ROLE and instance.pool == pool


def summary(states: Iterable[str]) -> str:
    counts = Counter(states)
    if not counts:
        return NOT_READ
    if len(counts) == 1:
        return next(iter(counts))
    total = sum(counts.values())
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{state} on {count} of {total}" for state, count in ranked)


# --- waiting for a drain or undrain to show --------------------------------------------------------


@dataclass
class Sighting:
    """What every HAProxy shows of one compile master at one read, for a drain (``leaving``) or an
    undrain: each HAProxy's slot per port, or why its stats were not read."""

    leaving: bool
    slots: dict[str, dict[int, Slot | None]]
    errors: dict[str, str]
    finishing: dict[str, int]
    """Drain: sessions still open on the slot that held it, by HAProxy (they finish there)."""

    @property
    def done(self) -> bool:
        if self.errors or not self.slots:
            return False
        if self.leaving:
            return all(slot is None or slot.out for seen in self.slots.values() for slot in seen.values())
        return all(
            slot is not None and slot.status == UP for seen in self.slots.values() for slot in seen.values()
        )

    def line(self) -> str:
        parts = []
        for haproxy in sorted({*self.slots, *self.errors}):
            if haproxy in self.errors:
                parts.append(f"{haproxy}: stats not read ({self.errors[haproxy]})")
                continue
            seen = ", ".join(
                f"{port} {slot.state if slot else ABSENT}" for port, slot in self.slots[haproxy].items()
            )
            left = self.finishing.get(haproxy, 0)
            parts.append(f"{haproxy}: {seen}" + (f" ({left} sessions finishing)" if left else ""))
        return "; ".join(parts)

    def as_json(self) -> dict[str, Any]:
        return {
            haproxy: {
                "error": self.errors.get(haproxy),
                "finishingSessions": self.finishing.get(haproxy, 0),
                "backends": {
                    str(port): slot_json(slot) for port, slot in self.slots.get(haproxy, {}).items()
                },
            }
            for haproxy in sorted({*self.slots, *self.errors})
        }


def slot_json(slot: Slot | None) -> dict[str, Any]:
    if slot is None:
        return {"state": ABSENT, "slot": None, "sessions": 0, "queued": 0, "check": None}
    return {
        "state": slot.status,
        "slot": slot.name,
        "sessions": slot.sessions,
        "queued": slot.queued,
        "check": slot.check or None,
    }


@dataclass
class Watch:
    """Reads every HAProxy's stats for one compile master until its drain or undrain shows."""

    address: str
    leaving: bool
    urls: dict[str, str]
    held: dict[str, str] = field(default_factory=dict)
    """Drain: the slot that held the compile master on each HAProxy before (8140's backend), so its
    sessions can be followed once the address is gone from it."""

    @property
    def ports(self) -> tuple[int, ...]:
        # A drain is done when no new agent run reaches it (8140); PXP agents on 8142 reconnect when
        # their broker goes. An undrain waits for both: every port serving, as the NLB's undrain.
        return (pe.PUPPETSERVER_PORT,) if self.leaving else tuple(BACKENDS)

    def remember(self, stats: dict[str, HaproxyStats]) -> None:
        for haproxy, read in stats.items():
            slot = read.slot(pe.PUPPETSERVER_PORT, self.address)
            if slot is not None:
                self.held[haproxy] = slot.name

    def read(self) -> Sighting:
        return self.see(read_all(self.urls))

    def see(self, stats: dict[str, HaproxyStats]) -> Sighting:
        slots: dict[str, dict[int, Slot | None]] = {}
        errors: dict[str, str] = {}
        finishing: dict[str, int] = {}
        for haproxy, read in stats.items():
            if read.error:
                errors[haproxy] = read.error
                continue
            slots[haproxy] = {port: read.slot(port, self.address) for port in self.ports}
            held = read.named(pe.PUPPETSERVER_PORT, self.held.get(haproxy, ""))
            if self.leaving and held is not None and held.address in ("", self.address) and held.out:
                finishing[haproxy] = held.sessions
        return Sighting(self.leaving, slots, errors, finishing)
