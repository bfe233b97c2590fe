"""Each row of README's "Changing a running pool", replayed: the engine's steps in its order
(tests/engine.py) against the stub primary, an emulated NLB, Route53 and compile masters, with
agents checked after every step (tests/replay.py).

A test named ``..._strands_agents_today`` pins what the program does now: the step after which
an agent is first not served. When the program is fixed, it is served throughout and the
test fails: turn it into a ``..._serves_agents_throughout`` test.
"""

import dataclasses
import functools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.engine import Step
from tests.harness import PROJECT_DIR, Graph, run_file, run_main
from tests.replay import Up, World, deployed, previous_release, stranded_at

INSTANCE = "aws:ec2/instance:Instance"
ATTACHMENT = "aws:lb/targetGroupAttachment:TargetGroupAttachment"
COMMAND = "command:remote:Command"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
RECORD = "aws:route53/record:Record"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
DNS = {"poolDnsName": "puppet-pool.example.com", "hostedZoneId": "Z0123456789ABC"}
NEW_IMAGE = "ami-0fedcba9876543210"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
WIRED_BY_HAND = PROJECT_DIR / "tests" / "programs" / "wired_by_hand.py"


@pytest.fixture
def config(stack_config: dict[str, Any]) -> dict[str, Any]:
    """The test stack with two compile masters (each join runs the primary script)."""
    return {**stack_config, "compileMasterCount": 2}


def program(config: dict[str, Any]) -> Graph:
    """The program's graph for ``config`` (each config run once: the replay only reads graphs)."""
    return _program(json.dumps(config, sort_keys=True))


@functools.cache
def _program(config: str) -> Graph:
    return run_main(json.loads(config))


@contextmanager
def pool(tmp_path: Path, config: dict[str, Any], **options: Any) -> Iterator[World]:
    """A pool deployed from ``config``."""
    with deployed(tmp_path, program(config), **options) as world:
        yield world


def change(world: World, config: dict[str, Any]) -> Up:
    """The next `pulumi up` with ``config``; it must succeed."""
    up = world.up(program(config))
    assert up.failed is None, up.error
    return up


def served(up: Up) -> bool:
    return up.served_throughout


def step_of(up: Up, op: str, type_token: str, name: str) -> int:
    return next(i for i, s in enumerate(up.ran) if (s.op, s.type, s.name) == (op, type_token, name))


def is_step(step: Step | None, op: str, type_token: str, name_pattern: str = "") -> bool:
    return step is not None and (step.op, step.type) == (op, type_token) and name_pattern in step.name


def problem_at(up: Up, step: Step | None) -> str:
    return next((check.problem for check in up.checks if check.step is step and check.problem), "")


def test_scaling_out_serves_agents_throughout(tmp_path: Path, config: dict[str, Any]) -> None:
    with pool(tmp_path, config) as world:
        up = change(world, {**config, "compileMasterCount": 3})
        assert served(up), up.report()
        assert len(world.primary.signed) == 3
        assert {len(targets) for targets in world.target_groups.values()} == {3}


def test_scaling_in_serves_agents_throughout(tmp_path: Path, config: dict[str, Any]) -> None:
    with pool(tmp_path, {**config, "compileMasterCount": 3}) as world:
        up = change(world, config)
        assert served(up), up.report()
        # Out of both target groups before its leave (purge), the instance last.
        leave = step_of(up, "delete", COMMAND, "pe-lb-2-join")
        assert (
            step_of(up, "delete", ATTACHMENT, "pe-lb-2-8140")
            < leave
            < step_of(up, "delete", INSTANCE, "pe-lb-2")
        )
        assert len(world.primary.signed) == 2


def rolls_the_pool(tmp_path: Path, config: dict[str, Any], **after: Any) -> None:
    with pool(tmp_path, config) as world:
        old = world.primary.signed
        up = change(world, {**config, **after})
        assert served(up), up.report()
        assert world.primary.signed.isdisjoint(old) and len(world.primary.signed) == 2
        first_leave = min(i for i, s in enumerate(up.ran) if s.op == "delete-replaced" and s.type == COMMAND)
        assert step_of(up, "update", COMMAND, "pe-lb-pe-repo") < first_leave


def test_a_new_image_rolls_the_pool_and_serves_agents_throughout(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    rolls_the_pool(tmp_path, config, amiId=NEW_IMAGE)


def test_a_new_instance_type_rolls_the_pool_and_serves_agents_throughout(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    rolls_the_pool(tmp_path, config, instanceType="m6i.2xlarge")


def test_a_bigger_root_volume_grows_in_place_and_serves_agents_throughout(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    with pool(tmp_path, config) as world:
        up = change(world, {**config, "rootVolumeSizeGb": 100})
        assert served(up), up.report()
        assert {(s.op, s.name) for s in up.ran if s.type == INSTANCE} == {
            ("update", "pe-lb-0"),
            ("update", "pe-lb-1"),
        }


def test_appending_a_subnet_serves_agents_throughout(tmp_path: Path, config: dict[str, Any]) -> None:
    with pool(tmp_path, config) as world:
        up = change(world, {**config, "subnetIds": [*config["subnetIds"], "subnet-0ccccccccccccccc3"]})
        assert served(up), up.report()
        assert not [s for s in up.ran if s.op in ("create-replacement", "delete-replaced", "delete")]


def old_nlb_emptied(up: Up) -> bool:
    """Agents still on the old NLB's name lose it at the end of the update: its targets go."""
    step = stranded_at(up)
    emptied = "no healthy compile master" in problem_at(up, step)
    return is_step(step, "delete-replaced", ATTACHMENT) and emptied


def test_swapping_an_nlb_subnet_without_pool_dns_name_would_strand_agents_so_the_preview_refuses_it(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    """The replay of the change itself strands agents still on the old NLB's name: so the stack
    config refuses it at preview (tests/test_stack_config.py, an NLB rebuild without poolDnsName)."""
    with pool(tmp_path, config) as world:
        up = change(world, {**config, "subnetIds": ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0ccccccccccccccc3"]})
        assert old_nlb_emptied(up), up.report()


def test_an_nlb_rebuild_without_pool_dns_name_would_strand_agents_so_the_preview_refuses_it(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    """The pool's address is the NLB's name: agents that have not run since PE Agent got the new
    one still use the old NLB, whose compile masters leave at the end of the same update."""
    with pool(tmp_path, config) as world:
        up = change(world, {**config, "internal": False})
        assert old_nlb_emptied(up), up.report()
        stranded = [check for check in up.checks if check.problem]
        assert {check.agent for check in stranded} == {
            "an agent still on the address it had when the update began"
        }


def test_giving_the_pool_a_name_then_rebuilding_the_nlb_serves_agents_throughout(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    """The way the preview points to: a poolDnsName first (the NLB's own name stays in every
    certificate), then the rebuild, whose alias moves only after the gate."""
    with pool(tmp_path, config) as world:
        zone, name = {"hostedZoneId": DNS["hostedZoneId"]}, DNS["poolDnsName"]
        for step in ({**zone, "additionalPoolDnsNames": [name]}, {**zone, "poolDnsName": name}):
            named = change(world, {**config, **step})
            assert named.served_throughout, named.report()
        rebuilt = change(world, {**config, **DNS, "internal": False})
        assert rebuilt.served_throughout, rebuilt.report()


def test_an_nlb_rebuild_with_pool_dns_name_serves_agents_throughout(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    """The alias moves to the new NLB only after the gate: once its new compile masters serve."""
    with pool(tmp_path, {**config, **DNS}) as world:
        up = change(world, {**config, **DNS, "internal": False})
        assert up.served_throughout, up.report()
        moved = next(
            step for step in up.ran if is_step(step, "update", RECORD, "pe-lb-puppet-pool.example.com")
        )
        gate = next(step for step in up.ran if "command:local:Command" in step.urn)
        assert up.ran.index(gate) < up.ran.index(moved)


def test_a_new_pool_dns_name_in_one_step_would_strand_agents_so_the_preview_refuses_it(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    """Agents on the old name meet new compile masters without it and lose its record at the end;
    the stack config refuses this at preview (tests/test_stack_config.py) and names the steps below."""
    with pool(tmp_path, {**config, **DNS}) as world:
        up = change(world, {**config, **DNS, "poolDnsName": "pool2.example.com"})
        assert stranded_at(up) is not None, up.report()


def test_moving_to_a_new_pool_dns_name_in_three_steps_serves_agents_throughout(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    old, new = DNS["poolDnsName"], "pool2.example.com"
    with pool(tmp_path, {**config, **DNS}) as world:
        steps: list[dict[str, Any]] = [
            {"poolDnsName": old, "additionalPoolDnsNames": [new]},
            {"poolDnsName": new, "additionalPoolDnsNames": [old]},
            {"poolDnsName": new},
        ]
        for number, step in enumerate(steps, 1):
            up = change(world, {**config, **DNS, **step})
            assert up.served_throughout, f"step {number}: {up.report()}"
        assert world.address == new


def test_a_first_pool_dns_name_in_one_step_would_strand_agents_so_the_preview_refuses_it(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    """Agents told the new name at once meet the old compile masters, whose certificates lack it."""
    with pool(tmp_path, config) as world:
        up = change(world, {**config, **DNS})
        assert stranded_at(up) is not None, up.report()


def test_a_first_pool_dns_name_in_two_steps_serves_agents_throughout(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    """The name is added first (records, certificates), then given to agents; the NLB's own name
    stays in every certificate for agents that still hold it."""
    name = DNS["poolDnsName"]
    with pool(tmp_path, config) as world:
        steps: list[dict[str, Any]] = [{"additionalPoolDnsNames": [name]}, {"poolDnsName": name}]
        for number, step in enumerate(steps, 1):
            up = change(world, {**config, "hostedZoneId": DNS["hostedZoneId"], **step})
            assert up.served_throughout, f"step {number}: {up.report()}"
        assert world.address == name


def test_removing_an_agent_cidr_serves_agents_in_the_others(tmp_path: Path, config: dict[str, Any]) -> None:
    cidrs = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
    before, after = {**config, "agentCidrs": cidrs}, {**config, "agentCidrs": cidrs[1:]}
    with pool(tmp_path / "kept", before, agent_ip="172.16.5.5") as world:
        assert served(change(world, after))
    # An agent in the removed CIDR loses the pool with the first rule deleted: as it should.
    with pool(tmp_path / "removed", before) as world:
        up = change(world, after)
        assert is_step(stranded_at(up), "delete", INGRESS, "10.0.0.0-8"), up.report()


def test_switching_health_checks_to_tcp_serves_agents_throughout(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    with pool(tmp_path, config) as world:
        up = change(world, {**config, "healthCheckProtocol": "TCP"})
        assert served(up), up.report()
        assert {(s.op, s.type) for s in up.ran if s.op != "same"} == {("update", TARGET_GROUP)}


def test_draining_a_compile_master_serves_agents_throughout(tmp_path: Path, config: dict[str, Any]) -> None:
    with pool(tmp_path, config) as world:
        up = change(world, {**config, "drainedCompileMasters": [1]})
        assert served(up), up.report()
        drained = world.state.live(next(s.urn for s in up.ran if s.name == "pe-lb-1"))
        assert drained is not None
        assert all(drained.outputs["id"] not in targets for targets in world.target_groups.values())
        assert len(world.primary.signed) == 2, "still joined"


def test_upgrading_pe_lb_serves_agents_throughout(tmp_path: Path, config: dict[str, Any]) -> None:
    """From the previous release (the script on every command's stdin) to this one: every command's
    text changes (an update: its create, or its update, runs again; no delete), no compile
    master is replaced."""
    with deployed(tmp_path, previous_release(program(config))) as world:
        pool_address = world.primary.pool_address
        up = world.up(program(config))
        assert up.failed is None, up.error
        assert served(up), up.report()
        assert not [s for s in up.ran if s.op.startswith("delete") or s.op == "create-replacement"]
        assert {s.name for s in up.ran if s.op == "update" and s.type == COMMAND} >= {
            "pe-lb-0-join",
            "pe-lb-1-join",
            "pe-lb-pe-repo",
            "pe-lb-pe-agent",
        }
        assert world.primary.pool_address == pool_address
        assert world.primary.agent_settings()["server_list"] == [f"{pool_address}:8140"]


def test_a_failed_step_leaves_the_old_compile_masters_until_the_next_up(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    def gate(step: Step) -> bool:
        return step.op == "create-replacement" and step.name == "pe-lb-wait-healthy-0"

    new_image = program({**config, "amiId": NEW_IMAGE})
    with pool(tmp_path, config) as world:
        old = world.primary.signed
        first = world.up(new_image, fail=gate)
        # The update stops at the gate: the new compile masters joined, the old ones did not leave.
        assert first.failed is not None and gate(first.failed)
        assert served(first), first.report()
        assert not [s for s in first.ran if s.op.startswith("delete")]
        assert old < world.primary.signed
        pending = {r.name for r in world.state.pending_delete}
        replaced = {"pe-lb-0", "pe-lb-1", "pe-lb-0-join", "pe-lb-1-join"} | {
            f"pe-lb-{i}-{port}" for i in range(2) for port in (8140, 8142)
        }
        # The other compile master's wait may have run before the failing one (registration order
        # under mocks varies): its old wait is then pending too.
        assert replaced <= pending <= replaced | {"pe-lb-wait-healthy-1"}
        second = world.up(new_image)
        assert second.failed is None, second.error
        assert served(second), second.report()
        # The next update retries the gate, then deletes what the first one left, at its end.
        deleted = [s for s in second.ran if s.op == "delete-replaced"]
        assert {s.name for s in deleted} == pending | {"pe-lb-wait-healthy-0", "pe-lb-wait-healthy-1"}
        assert all(s.op.startswith("delete") for s in second.ran[second.ran.index(deleted[0]) :])
        assert world.state.pending_delete == []
        assert world.primary.signed.isdisjoint(old) and len(world.primary.signed) == 2


def test_the_next_update_diffs_against_the_stack_values(tmp_path: Path, config: dict[str, Any]) -> None:
    """After a rolling replacement the stack holds new instance ids while the mocks still answer
    with the first ones: the update after it changes nothing."""
    with pool(tmp_path, config) as world:
        first_ids = {r.outputs["id"] for r in world.state.resources if r.type == INSTANCE}
        change(world, {**config, "amiId": NEW_IMAGE})
        again = change(world, {**config, "amiId": NEW_IMAGE})
        assert {s.op for s in again.ran} == {"same"}
        assert first_ids.isdisjoint(r.outputs["id"] for r in world.state.resources if r.type == INSTANCE)


def test_a_later_pe_lb_upgrade_runs_only_the_install_commands(
    tmp_path: Path, config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the script is installed by version, a new version changes the install commands alone:
    no join, read, pe_repo or PE Agent command runs again, no compile master is touched."""
    from components import primary, scripts

    with pool(tmp_path, config) as world:
        newer = scripts.primary_script() + "# pe-lb, a later version\n"
        monkeypatch.setattr(scripts, "primary_script", lambda: newer)
        monkeypatch.setattr(primary, "primary_script", scripts.primary_script)
        up = world.up(run_main(config))
        assert up.failed is None, up.error
        assert up.served_throughout, up.report()
        changed = {(s.op, s.name) for s in up.ran if s.op != "same"}
        assert {name for _, name in changed} == {
            "pe-lb-primary-script",
            "pe-lb-pe-repo-script",
            "pe-lb-pe-agent-script",
        }
        assert {op for op, _ in changed} <= {"create-replacement", "replace", "delete-replaced"}


def _before_pe_compiler_pool(config: dict[str, Any]) -> Graph:
    """The stack as pe-lb's former program made it: its parts at the top of the stack, no
    maintenance options, no alarms, no dashboard."""
    graph = run_file(WIRED_BY_HAND, config)
    return dataclasses.replace(
        graph,
        resources=[
            dataclasses.replace(
                r, raw_inputs={k: v for k, v in r.raw_inputs.items() if k != "maintenanceOptions"}
            )
            for r in graph.resources
        ],
    )


def test_moving_to_pe_compiler_pool_serves_agents_throughout(tmp_path: Path, config: dict[str, Any]) -> None:
    """The parts are taken over in place (aliases); instances are updated in place; alarms and the
    dashboard are made after the gate; nothing is replaced or deleted."""
    with deployed(tmp_path, _before_pe_compiler_pool(config)) as world:
        signed = set(world.primary.signed)
        up = world.up(program(config))
        assert up.failed is None, up.error
        assert served(up), up.report()
        assert {s.op for s in up.ran} <= {"same", "update", "create"}
        assert {s.type for s in up.ran if s.op == "create"} == {ALARM, DASHBOARD}
        assert {s.name for s in up.ran if s.op == "update"} == {"pe-lb-0", "pe-lb-1"}
        gate = max(i for i, s in enumerate(up.ran) if s.type == "command:local:Command")
        assert all(i > gate for i, s in enumerate(up.ran) if s.type == ALARM), "alarms after the gate"
        assert world.primary.signed == signed


def test_a_failed_alarm_leaves_the_pool_serving_and_the_next_up_makes_the_rest(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    """CloudWatch refuses an alarm (no permission, no service-linked role): the update stops there,
    nothing in the agents' path has changed, and the next `up` makes the alarms still missing."""

    def alarm(step: Step) -> bool:
        return step.op == "create" and step.type == ALARM

    with deployed(tmp_path, _before_pe_compiler_pool(config)) as world:
        first = world.up(program(config), fail=alarm)
        assert first.failed is not None and alarm(first.failed)
        assert served(first), first.report()
        assert not [s for s in first.ran if s.op.startswith("delete") or s.op == "create-replacement"]
        second = world.up(program(config))
        assert second.failed is None, second.error
        assert served(second), second.report()
        made = {s.name for s in [*first.ran, *second.ran] if s.type == ALARM and s.op == "create"}
        assert len(made) == 2 * 2 + 2 * 2


LEAST = {"balancing": "least-connections"}


def behind_the_nlb(world: World) -> set[str]:
    """What the NLB's target groups hold: "haproxy" and/or "compile-master"."""
    targets = {target for group in world.target_groups.values() for target in group}
    return {"haproxy" if t in world.haproxies else "compile-master" for t in targets}


def test_switching_to_least_connections_serves_agents_throughout(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    with pool(tmp_path, config) as world:
        signed = set(world.primary.signed)
        up = change(world, {**config, **LEAST})
        assert served(up), up.report()
        assert behind_the_nlb(world) == {"haproxy"}
        # The HAProxy instances serve (the gate) before the compile masters leave the target groups.
        gate = max(i for i, s in enumerate(up.ran) if s.op.startswith("create") and "wait-healthy" in s.name)
        assert gate < min(i for i, s in enumerate(up.ran) if s.op == "delete" and s.type == ATTACHMENT)
        # The compile masters stay: no join, no leave, and the discovery record lists them all.
        assert world.primary.signed == signed
        assert sorted(world.discovery.popitem()[1]) == sorted(
            c.address for c in world.compile_masters.values()
        )


def test_switching_back_to_flow_hash_serves_agents_throughout(tmp_path: Path, config: dict[str, Any]) -> None:
    with pool(tmp_path, {**config, **LEAST}) as world:
        up = change(world, config)
        assert served(up), up.report()
        assert behind_the_nlb(world) == {"compile-master"} and not world.haproxies and not world.discovery
        # Each HAProxy leaves the target groups, then goes, and only then loses its way to the
        # compile masters (its rules): never in rotation without it.
        for index in range(2):
            instance = step_of(up, "delete", INSTANCE, f"pe-lb-haproxy-{index}")
            drain = step_of(up, "delete", "command:local:Command", f"pe-lb-haproxy-{index}-drain")
            for port in (8140, 8142):
                assert step_of(up, "delete", ATTACHMENT, f"pe-lb-haproxy-{index}-{port}") < drain < instance
            for port in (8140, 8142):
                assert instance < step_of(up, "delete", INGRESS, f"pe-lb-from-haproxy-{port}")
            assert instance < step_of(up, "delete", RECORD, "pe-lb-discovery")


def test_scaling_out_and_draining_with_least_connections_serve_agents_throughout(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    with pool(tmp_path, {**config, **LEAST}) as world:
        haproxies = set(world.haproxies)
        up = change(world, {**config, **LEAST, "compileMasterCount": 3})
        assert served(up), up.report()
        (values,) = world.discovery.values()
        assert len(values) == 3
        up = change(world, {**config, **LEAST, "compileMasterCount": 3, "drainedCompileMasters": [0]})
        assert served(up), up.report()
        (values,) = world.discovery.values()
        assert len(values) == 2
        # Scaling and draining change the record, never an HAProxy instance.
        assert set(world.haproxies) == haproxies


def test_a_new_compile_master_image_with_least_connections_serves_agents_throughout(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    with pool(tmp_path, {**config, **LEAST}) as world:
        old, haproxies = world.primary.signed, set(world.haproxies)
        up = change(world, {**config, **LEAST, "amiId": NEW_IMAGE, "haproxyAmiId": config["amiId"]})
        assert served(up), up.report()
        assert world.primary.signed.isdisjoint(old)
        assert set(world.haproxies) == haproxies


def test_a_new_haproxy_image_replaces_haproxy_new_before_old_and_serves_agents_throughout(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    with pool(tmp_path, {**config, **LEAST}) as world:
        old, signed = set(world.haproxies), set(world.primary.signed)
        up = change(world, {**config, **LEAST, "haproxyAmiId": NEW_IMAGE})
        assert served(up), up.report()
        # New ones in rotation (the gate) before an old one leaves it; each drained before it goes.
        gates = [i for i, s in enumerate(up.ran) if s.op.startswith("create") and "wait-healthy" in s.name]
        for index in range(2):
            drain = step_of(up, "delete-replaced", "command:local:Command", f"pe-lb-haproxy-{index}-drain")
            instance = step_of(up, "delete-replaced", INSTANCE, f"pe-lb-haproxy-{index}")
            assert max(gates) < step_of(up, "delete-replaced", ATTACHMENT, f"pe-lb-haproxy-{index}-8140")
            assert (
                step_of(up, "delete-replaced", ATTACHMENT, f"pe-lb-haproxy-{index}-8140") < drain < instance
            )
        assert set(world.haproxies).isdisjoint(old) and len(world.haproxies) == 2
        assert world.primary.signed == signed
