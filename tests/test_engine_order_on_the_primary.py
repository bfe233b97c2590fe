"""What PE ends up with after a later `pulumi up`, its commands run in the engine's order.

The program's graphs before and after a change go through tests/engine.py; tests/replay.py runs
each command's create, update or delete on the stub primary in that order (a replaced command's
new create first, its old delete with the other deletes at the end; an updated command runs
its create, or its update, again and no delete). Whatever ran last, the PE settings must come
out as the new program says.
"""

from pathlib import Path
from typing import Any

import pytest

from components import pe
from tests.harness import Graph, run_main
from tests.replay import World, deployed, previous_release
from tests.stub_primary import StubPrimary

DNS = {"poolDnsName": "puppet-pool.example.com", "hostedZoneId": "Z0123456789ABC"}


@pytest.fixture
def config(stack_config: dict[str, Any]) -> dict[str, Any]:
    return {**stack_config, **DNS, "compileMasterCount": 2}


def assert_pool_in_use(primary: StubPrimary, address: str, compile_masters: set[str]) -> None:
    assert primary.pool_address == address
    assert primary.agent_settings() == {
        "server_list": [f"{address}:8140"],
        "primary_uris": [f"https://{address}:8140"],
        "pcp_broker_list": [f"{address}:8142"],
    }
    assert set(primary.group("PE Infrastructure Agent")["pinned"]) == compile_masters
    assert primary.signed == compile_masters


def up(world: World, config: dict[str, Any]) -> None:
    result = world.up(run_main(config))
    assert result.failed is None, result.error


def live_certnames(world: World) -> set[str]:
    """The certnames of the compile masters the stack holds now."""
    return {
        pe.instance_certname(r.outputs["arn"])
        for r in world.state.resources
        if r.type == "aws:ec2/instance:Instance"
    }


def test_scaling_out_reruns_pe_repo_and_keeps_the_pool(tmp_path: Path, config: dict[str, Any]) -> None:
    with deployed(tmp_path, run_main(config)) as world:
        up(world, {**config, "compileMasterCount": 3})
        assert_pool_in_use(world.primary, DNS["poolDnsName"], live_certnames(world))
        assert len(live_certnames(world)) == 3


def test_a_new_image_joins_the_new_compile_masters_then_the_old_ones_leave(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    with deployed(tmp_path, run_main(config)) as world:
        old = world.primary.signed
        up(world, {**config, "amiId": "ami-0fedcba9876543210"})
        new = live_certnames(world)
        assert new.isdisjoint(old)
        assert_pool_in_use(world.primary, DNS["poolDnsName"], new)
        ident = world.primary.pg_ident.read_text()
        assert all(c not in ident for c in old) and all(c in ident for c in new)


def test_a_new_pool_address_ends_with_the_new_one_only(tmp_path: Path, config: dict[str, Any]) -> None:
    with deployed(tmp_path, run_main(config)) as world:
        up(world, {**config, "poolDnsName": "pool2.example.com"})
        assert_pool_in_use(world.primary, "pool2.example.com", live_certnames(world))


def test_destroy_takes_back_everything_pe_lb_set(tmp_path: Path, config: dict[str, Any]) -> None:
    with deployed(tmp_path, run_main(config)) as world:
        destroyed = world.up(Graph([]))
        assert destroyed.failed is None, destroyed.error
        assert world.state.resources == []
        assert world.primary.pool_address is None
        assert world.primary.agent_settings() == {}
        assert world.primary.group("PE Infrastructure Agent")["pinned"] == []
        assert world.primary.signed == set()


def test_upgrading_from_the_previous_release_keeps_the_pool(tmp_path: Path, config: dict[str, Any]) -> None:
    """The previous release sent the script on every command's stdin; this one installs it on the
    primary. Every command's text changes: an update, which runs create (or update) again."""
    with deployed(tmp_path, previous_release(run_main(config))) as world:
        compile_masters = world.primary.signed
        up(world, config)
        assert_pool_in_use(world.primary, DNS["poolDnsName"], compile_masters)
        # And a later change of address still ends with the new one only.
        up(world, {**config, "poolDnsName": "pool2.example.com"})
        assert_pool_in_use(world.primary, "pool2.example.com", live_certnames(world))
