"""The engine's order on a later `pulumi up`, replayed against the stub primary.

Pulumi replaces create-before-delete and runs every delete at the end of the update: a
replaced command's new `create` runs first, its old `delete` last; an updated command
runs its `create` again and no `delete`. The PE settings must come out as the new program
says, whatever was deleted last.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stub_primary import POOL, StubPrimary, instance_arn, join_arguments, stub_primary

OLD = [f"i-0{c * 16}.eu-west-1.compute.internal" for c in "ab"]
NEW = [f"i-0{c * 16}.eu-west-1.compute.internal" for c in "cd"]
AGENT = {
    "server_list": [f"{POOL}:8140"],
    "primary_uris": [f"https://{POOL}:8140"],
    "pcp_broker_list": [f"{POOL}:8142"],
}


@pytest.fixture
def primary(tmp_path: Path) -> Iterator[StubPrimary]:
    with stub_primary(tmp_path) as stub:
        yield stub


def ok(primary: StubPrimary, *argv: str) -> None:
    result = primary.run(*argv)
    assert result.returncode == 0, result.stderr


def first_up(primary: StubPrimary) -> None:
    for certname in OLD:
        primary.request_certificate(certname)
        ok(primary, "join", certname, *join_arguments(certname))
    ok(primary, "pe-repo-set", POOL, "--compile-masters", ",".join(OLD))
    ok(primary, "agent-set", POOL)


def assert_pool_in_use(primary: StubPrimary, compile_masters: list[str]) -> None:
    assert primary.pool_address == POOL
    assert primary.agent_settings() == AGENT
    assert sorted(primary.group("PE Infrastructure Agent")["pinned"]) == sorted(compile_masters)


def test_scaling_out_reruns_pe_repo_and_keeps_the_pool(primary: StubPrimary) -> None:
    first_up(primary)
    primary.request_certificate(NEW[0])
    ok(primary, "join", NEW[0], *join_arguments(NEW[0]))  # the new compile master's command: create
    ok(primary, "pe-repo-set", POOL, "--compile-masters", ",".join([*OLD, NEW[0]]))  # update: create again
    assert_pool_in_use(primary, [*OLD, NEW[0]])


def test_a_new_image_joins_the_new_compile_masters_then_the_old_ones_leave(primary: StubPrimary) -> None:
    first_up(primary)
    for certname in NEW:  # replaced joins: the new creates first...
        primary.request_certificate(certname)
        ok(primary, "join", certname, *join_arguments(certname))
    ok(primary, "pe-repo-set", POOL, "--compile-masters", ",".join(NEW))  # pe_repo: an update
    for certname in OLD:  # ...the old deletes at the end of the update
        ok(primary, "leave", certname)
    assert_pool_in_use(primary, NEW)
    assert primary.signed == set(NEW)
    ident = primary.pg_ident.read_text()
    assert all(certname not in ident for certname in OLD) and all(certname in ident for certname in NEW)


def test_a_new_pool_address_sets_the_new_one_before_the_old_one_is_removed(primary: StubPrimary) -> None:
    old_pool = "old-pool.example.com"
    for certname in OLD:
        primary.request_certificate(certname, alt_names=[certname, "puppet", old_pool])
        ok(primary, "join", certname, "--pool-address", old_pool, "--instance-arn", instance_arn(certname))
    ok(primary, "pe-repo-set", old_pool, "--compile-masters", ",".join(OLD))
    ok(primary, "agent-set", old_pool)
    # New certificates name the new pool: new compile masters, new pe_repo and PE Agent commands...
    for certname in NEW:
        primary.request_certificate(certname)
        ok(primary, "join", certname, *join_arguments(certname))
    ok(primary, "pe-repo-set", POOL, "--compile-masters", ",".join(NEW))
    ok(primary, "agent-set", POOL)
    # ...then every old command's delete, last.
    ok(primary, "pe-repo-unset", old_pool)
    ok(primary, "agent-unset", old_pool)
    for certname in OLD:
        ok(primary, "leave", certname)
    assert_pool_in_use(primary, NEW)


def test_destroy_takes_back_everything_pe_lb_set(primary: StubPrimary) -> None:
    first_up(primary)
    ok(primary, "agent-unset", POOL)
    ok(primary, "pe-repo-unset", POOL)
    for certname in OLD:
        ok(primary, "leave", certname)
    assert primary.pool_address is None
    assert primary.agent_settings() == {}
    assert primary.group("PE Infrastructure Agent")["pinned"] == []
    assert primary.signed == set()


def test_upgrading_a_stack_from_before_pe_lb_0_5_keeps_the_pool_address(primary: StubPrimary) -> None:
    """The earlier command's triggers listed the instance ids, so the first `pulumi up` after the
    upgrade replaces it; its delete (from state) unsets the address when it equals its own, as
    `pe-repo-unset` does. Create-before-delete would end with no address; pe_repo's command is
    delete-before-replace, so the old unset runs first."""
    first_up(primary)
    # Create-before-delete: the new set finds the address already there, then the old unset...
    ok(primary, "pe-repo-set", POOL, "--compile-masters", ",".join(OLD))
    ok(primary, "pe-repo-unset", POOL)
    assert primary.pool_address is None, "...leaves new agents without the pool"
    ok(primary, "pe-repo-set", POOL)  # back to the running pool's state
    # Delete-before-replace, as the command is declared: the old unset, then the new set.
    ok(primary, "pe-repo-unset", POOL)
    ok(primary, "pe-repo-set", POOL, "--compile-masters", ",".join(OLD))
    assert primary.pool_address == POOL
