"""The primary script (built from components/scripts/pe_primary/) run for real against the stub PE primary."""

import glob
import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.aws_identity import FakeAws
from tests.certs import puppet_request
from tests.stub_primary import (
    ACCOUNT,
    INFRA_AGENT_ID,
    PE_AGENT_ID,
    PE_MASTER_ID,
    PLATFORM,
    PLATFORM_OID,
    POOL,
    PP_AUTH_ROLE_OID,
    PRIMARY,
    REGION,
    StubPrimary,
    instance_arn,
    join_arguments,
    stub_primary,
)

CM = "i-0abc123def4567890.eu-west-1.compute.internal"
OTHER = "i-0fffffffffffffff0.eu-west-1.compute.internal"
INSTANCE = "i-0abc123def4567890"
JOIN = join_arguments(CM)
PUPPET_RUN = "puppet agent --onetime --no-daemonize --no-splay"


@pytest.fixture
def primary(tmp_path: Path) -> Iterator[StubPrimary]:
    with stub_primary(tmp_path) as stub:
        yield stub


def output_until(process: "subprocess.Popen[str]", text: str) -> str:
    """What the running script printed up to and including the first line holding ``text``."""
    assert process.stdout is not None
    seen = ""
    for line in process.stdout:
        seen += line
        if text in line:
            return seen
    raise AssertionError(f"the script ended without printing {text!r}: {seen}")


def finish(process: "subprocess.Popen[str]") -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=60)
    return process.returncode, stdout, stderr


def shape(events: list[str]) -> list[str]:
    """Events without the certname noise: what was called, in order."""
    return [line.replace(CM, "CM").split(" {")[0] for line in events]


def test_join_verifies_signs_pins_and_runs_puppet_in_pe_order(primary: StubPrimary) -> None:
    primary.request_certificate(CM)
    result = primary.run("join", CM, *JOIN)
    assert result.returncode == 0, result.stderr
    assert shape(primary.events()) == [
        "GET /puppet-ca/v1/certificate_status/CM",
        "GET /puppet-ca/v1/certificate_request/CM",
        # PE-PostgreSQL admits the compiler's PuppetDB before it can first start
        "systemctl reload pe-postgresql.service",
        # pinned to PE Infrastructure Agent before it is signed (its first run follows at once)
        "GET /classifier-api/v1/groups",
        f"POST /classifier-api/v1/groups/{INFRA_AGENT_ID}/pin",
        "PUT /puppet-ca/v1/certificate_status/CM",
        "GET /puppet-ca/v1/certificate/CM",
        # the compile master's own first run, then the primary's
        "GET /pdb/query/v4/nodes/CM",
        PUPPET_RUN + " --no-usecacheonfailure --detailed-exitcodes --verbose --color false",
        "GET /status/v1/simple",
    ]
    assert primary.group("PE Infrastructure Agent")["pinned"] == [CM]
    ident = primary.pg_ident.read_text()
    assert f"pe-puppetdb-pe-puppetdb-map {CM} pe-puppetdb" in ident
    assert f"pe-puppetdb-pe-puppetdb-read-map {CM} pe-puppetdb-read" in ident
    assert f"pe-puppetdb-pe-puppetdb-migrator-map {CM} pe-puppetdb-migrator" in ident
    assert "splayed" not in "\n".join(primary.events())
    assert f"{CM} joined the pool" in result.stdout


def test_join_waits_for_the_request_and_the_first_run(primary: StubPrimary) -> None:
    primary.never_reports.add(CM)
    join = primary.start("join", CM, *JOIN)
    output_until(join, f"waiting for the certificate request of {CM}")
    primary.request_certificate(CM)
    output_until(join, f"waiting for the first Puppet run of {CM}")
    assert primary.puppet_runs() == []
    primary.never_reports.discard(CM)
    code, _, stderr = finish(join)
    assert code == 0, stderr
    assert len(primary.puppet_runs()) == 1


OTHER_INSTANCE = "i-0fffffffffffffff0"
PP_CLI_AUTH = "1.3.6.1.4.1.34380.1.3.39"
PP_ENVIRONMENT = "1.3.6.1.4.1.34380.1.1.12"
CHALLENGE_PASSWORD = "1.2.840.113549.1.9.7"
Arrange = Callable[[StubPrimary], dict[str, Any]]


def _signed_elsewhere(primary: StubPrimary) -> dict[str, Any]:
    impostor = FakeAws(primary.root / "impostor")
    return {"identity": impostor.pkcs7(INSTANCE, REGION, ACCOUNT)}


REFUSED: dict[str, tuple[Arrange, str]] = {
    "extra alt name": (
        lambda p: {"alt_names": [CM, "puppet", POOL, "evil.example.com"]},
        "its alt names are ['evil.example.com', '" + CM + "', 'pool.example.com', 'puppet']",
    ),
    "missing alt name": (lambda p: {"alt_names": [CM, "puppet"]}, "its alt names are"),
    "duplicate alt name": (
        lambda p: {"alt_names": [CM, "puppet", POOL, "PUPPET"]},
        f"(allowed: exactly {CM}, pool.example.com, puppet, each once)",
    ),
    "IP alt name": (
        lambda p: {"ip_alt_name": "10.0.0.1"},
        "it asks for alt names that are not DNS names: IP address 10.0.0.1",
    ),
    "no role": (lambda p: {"role": None}, "its pp_auth_role is None, not 'pe_compiler'"),
    "another role": (lambda p: {"role": "pe_postgres"}, "its pp_auth_role is 'pe_postgres'"),
    "another OS": (
        lambda p: {"platform": "el-8-x86_64"},
        f"it runs el-8-x86_64 but the primary runs {PLATFORM} (PE: compilers run the primary's OS",
    ),
    "another architecture": (
        lambda p: {"platform": "el-9-aarch64"},
        "it runs el-9-aarch64 but the primary runs el-9-x86_64",
    ),
    "no platform": (lambda p: {"platform": None}, "it runs an undeclared platform"),
    "CA admin rights": (
        lambda p: {"extra_extensions": {PP_CLI_AUTH: "true"}},
        "it asks for the extension pp_cli_auth, which a compile master never needs",
    ),
    "another extension": (
        lambda p: {"extra_extensions": {PP_ENVIRONMENT: "production"}},
        f"it asks for the extension {PP_ENVIRONMENT}, which a compile master never needs",
    ),
    "two extension requests": (
        lambda p: {"second_extension_request": {PP_AUTH_ROLE_OID: "pe_compiler"}},
        "it has 2 extension requests (allowed: exactly one)",
    ),
    "duplicate extension": (
        lambda p: {"duplicate_extension": True},
        "it asks for the extension pp_auth_role more than once",
    ),
    "another attribute": (
        lambda p: {"custom_attributes": {CHALLENGE_PASSWORD: "let-me-in"}},
        f"it carries the attribute {CHALLENGE_PASSWORD}, which a compile master's request never has",
    ),
    "no proof of origin": (lambda p: {"identity": None}, "it carries no instance identity document"),
    "another instance's proof": (
        lambda p: {"identity": p.aws.pkcs7(OTHER_INSTANCE, REGION, ACCOUNT)},
        f"its identity document names instanceId '{OTHER_INSTANCE}', not '{INSTANCE}'",
    ),
    "another account's proof": (
        lambda p: {"identity": p.aws.pkcs7(INSTANCE, REGION, "210987654321")},
        "its identity document names accountId '210987654321', not '123456789012'",
    ),
    "another region's proof": (
        lambda p: {"identity": p.aws.pkcs7(INSTANCE, "us-east-1", ACCOUNT)},
        "its identity document names region 'us-east-1', not 'eu-west-1'",
    ),
    "an old launch": (
        lambda p: {"identity": p.aws.pkcs7(INSTANCE, REGION, ACCOUNT, pending_time="2026-01-01T00:00:00Z")},
        "its identity document's launch time 2026-01-01T00:00:00Z is older than 604800 s",
    ),
    "a proof AWS did not sign": (_signed_elsewhere, "its instance identity document is not AWS's"),
}


def assert_nothing_changed(primary: StubPrimary, ident_before: str) -> None:
    """Nothing signed (not even signed-then-revoked), no pin, no pg_ident.conf line, no Puppet run."""
    assert not any(line.startswith(("PUT", "POST")) for line in primary.events())
    assert CM not in primary.certificates and CM not in primary.revoked
    assert primary.group("PE Infrastructure Agent")["pinned"] == []
    assert primary.pg_ident.read_text() == ident_before
    assert primary.puppet_runs() == []


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_a_request_that_is_not_exactly_this_instances_compile_master_request_is_refused_untouched(
    primary: StubPrimary, case: str
) -> None:
    arrange, reason = REFUSED[case]
    primary.request_certificate(CM, **arrange(primary))
    before = primary.pg_ident.read_text()
    result = primary.run("join", CM, *JOIN)
    assert result.returncode == 1
    assert f"pe-lb join: the certificate request of {CM} was refused, nothing was changed: " in result.stderr
    assert reason in result.stderr
    assert f"clean it (puppetserver ca clean --certname {CM}) and replace the instance" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert_nothing_changed(primary, before)


def test_every_problem_of_a_request_is_named_at_once(primary: StubPrimary) -> None:
    primary.request_certificate(
        CM, extra_extensions={PP_CLI_AUTH: "true"}, ip_alt_name="10.0.0.1", identity=None
    )
    result = primary.run("join", CM, *JOIN)
    assert result.returncode == 1
    for reason in ("pp_cli_auth", "IP address 10.0.0.1", "no instance identity document"):
        assert reason in result.stderr


def test_a_ca_that_would_refuse_a_compiler_stops_the_join_before_it_changes_anything(
    primary: StubPrimary,
) -> None:
    primary.write_ca_conf(allow_subject_alt_names=None, allow_authorization_extensions=False)
    primary.request_certificate(CM)
    before = primary.pg_ident.read_text()
    result = primary.run("join", CM, *JOIN)
    assert result.returncode == 1
    assert (
        "the CA would refuse a compile master's request: set allow-subject-alt-names: true and "
        "allow-authorization-extensions: true in the certificate-authority section of "
        f"{primary.ca_conf} and restart pe-puppetserver"
    ) in result.stderr
    assert_nothing_changed(primary, before)


def test_a_signing_the_ca_refuses_takes_back_the_pin_and_the_postgresql_lines(primary: StubPrimary) -> None:
    # ca.conf changed on disk but the CA not restarted: it still refuses alt names (as a real one does).
    primary.write_ca_conf(allow_subject_alt_names=False)
    primary.write_ca_conf(restart=False)
    primary.request_certificate(CM)
    before = primary.pg_ident.read_text()
    result = primary.run("join", CM, *JOIN)
    assert result.returncode == 1
    assert "answered HTTP 409" in result.stderr and "allow-subject-alt-names" in result.stderr
    assert "(its pin and pg_ident.conf entry were taken back)" in result.stderr
    assert CM not in primary.certificates
    assert primary.group("PE Infrastructure Agent")["pinned"] == []
    assert primary.pg_ident.read_text() == before
    assert primary.puppet_runs() == []


def test_a_new_request_for_a_joined_name_with_another_key_is_refused(primary: StubPrimary) -> None:
    primary.request_certificate(CM)
    assert primary.run("join", CM, *JOIN).returncode == 0
    assert primary.run("leave", CM).returncode == 0
    # Someone copies the instance's identity document (readable from the CA) into a request of their own.
    primary.request_certificate(CM)
    result = primary.run("join", CM, *JOIN)
    assert result.returncode == 1
    assert f"its key is not the one pe-lb verified for {CM} before" in result.stderr
    assert CM not in primary.certificates


def test_the_same_instance_may_join_again_and_its_old_puppetdb_record_is_not_its_first_run(
    primary: StubPrimary,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    primary.request_certificate(CM, key=key)
    assert primary.run("join", CM, *JOIN).returncode == 0
    assert primary.run("leave", CM).returncode == 0
    primary.request_certificate(CM, key=key)
    primary.never_reports.add(CM)
    result = primary.run("join", CM, *JOIN, "--run-timeout", "0")
    assert result.returncode == 1, "the deactivated node's last report is not a new first run"
    assert f"{CM} (instance {INSTANCE}) reported no Puppet run" in result.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ("join", "I-0ABC.eu-west-1.compute.internal"),
            "certname 'I-0ABC.eu-west-1.compute.internal' is not one",
        ),
        (("leave", "../etc/passwd"), "certname '../etc/passwd' is not one Puppet allows"),
        (("leave", "a b"), "certname 'a b' is not one Puppet allows"),
        (("leave", "nodé.example.com"), "is not one Puppet allows"),
        (("leave", CM, "--drain-seconds", "nan"), "'nan' is not a finite number of seconds, 0 or more"),
        (("leave", CM, "--drain-seconds", "-5"), "'-5' is not a finite number of seconds, 0 or more"),
        (("pe-repo-set", "pool example.com"), "pe-repo-set 'pool example.com' is not a DNS name"),
        (("agent-set", "pool_1.example.com"), "agent-set 'pool_1.example.com' is not a DNS name"),
        (
            ("join", CM, "--pool-address", "p?ol.example.com"),
            "--pool-address 'p?ol.example.com' is not a DNS",
        ),
        (("join", CM, "--pool-address", POOL), "join needs --instance-arn"),
        (
            ("join", CM, "--pool-address", POOL, "--instance-arn", "arn:foo"),
            "--instance-arn 'arn:foo' is not",
        ),
        (("pe-repo-set", POOL, "--compile-masters", "a,B"), "certname 'B' is not one Puppet allows"),
    ],
)
def test_bad_arguments_are_one_line_usage_errors_before_anything_runs(
    primary: StubPrimary, argv: tuple[str, ...], message: str
) -> None:
    result = primary.run(*argv)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert primary.events() == []


def test_a_certname_that_is_not_the_instances_own_name_is_refused(primary: StubPrimary) -> None:
    result = primary.run("join", CM, "--pool-address", POOL, "--instance-arn", instance_arn(OTHER))
    assert result.returncode == 1
    assert f"certname {CM} is not instance {OTHER_INSTANCE}'s name {OTHER}" in result.stderr
    assert primary.events() == []


def test_join_signs_only_its_own_certname(primary: StubPrimary) -> None:
    primary.request_certificate("i-0fffffffffffffff0.eu-west-1.compute.internal")
    primary.request_certificate(CM)
    assert primary.run("join", CM, *JOIN).returncode == 0
    assert "i-0fffffffffffffff0.eu-west-1.compute.internal" in primary.requests
    assert list(primary.certificates) == [CM]


def test_no_request_within_the_bound_fails_naming_the_instance_and_where_to_look(
    primary: StubPrimary,
) -> None:
    result = primary.run("join", CM, *JOIN, "--csr-timeout", "0.3")
    assert result.returncode == 1
    assert (
        f"no certificate request from instance {INSTANCE} (certname {CM}) within 0 s; "
        "look at /var/log/cloud-init-output.log on the instance"
    ) in result.stderr


def test_no_first_run_within_the_bound_fails(primary: StubPrimary) -> None:
    primary.request_certificate(CM)
    primary.never_reports.add(CM)
    result = primary.run("join", CM, *JOIN, "--run-timeout", "0.3")
    assert result.returncode == 1
    assert f"{CM} (instance {INSTANCE}) reported no Puppet run" in result.stderr
    assert primary.puppet_runs() == []


def test_a_request_swapped_while_it_was_signed_is_revoked(primary: StubPrimary) -> None:
    primary.request_certificate(CM)
    primary.swap_before_signing[CM] = puppet_request(
        CM, [CM, "puppet", POOL], {PP_AUTH_ROLE_OID: "pe_compiler", PLATFORM_OID: PLATFORM}
    )
    result = primary.run("join", CM, *JOIN)
    assert result.returncode == 1
    assert f"the certificate signed for {CM} is not the request verified; revoked it" in result.stderr
    assert CM in primary.revoked
    assert f"PUT /puppet-ca/v1/certificate_status/{CM} " + json.dumps({"desired_state": "revoked"}) in (
        primary.events()
    )


def test_a_revoked_certname_is_refused_with_the_fix(primary: StubPrimary) -> None:
    primary.request_certificate(CM)
    assert primary.run("join", CM, *JOIN).returncode == 0
    primary.revoked.add(CM)
    result = primary.run("join", CM, *JOIN)
    assert result.returncode == 1
    assert f"purge it (puppet node purge {CM}) first" in result.stderr


def test_join_again_changes_nothing(primary: StubPrimary) -> None:
    primary.request_certificate(CM)
    assert primary.run("join", CM, *JOIN).returncode == 0
    events, ident = len(primary.events()), primary.pg_ident.read_text()
    again = primary.run("join", CM, *JOIN)
    assert again.returncode == 0, again.stderr
    later = shape(primary.events()[events:])
    assert not any(line.startswith(("PUT", "systemctl", "puppet")) for line in later), later
    assert primary.pg_ident.read_text() == ident
    assert "already signed and verified" in again.stdout
    assert "covers compile master" in again.stdout


def test_a_held_agent_lock_is_waited_for(primary: StubPrimary) -> None:
    primary.request_certificate(CM)
    lock = primary.root / "agent_catalog_run.lock"
    lock.touch()
    join = primary.start("join", CM, *JOIN)
    output_until(join, "waiting for the Puppet run in progress on the primary to finish")
    assert primary.puppet_runs() == []
    lock.unlink()
    code, _, stderr = finish(join)
    assert code == 0, stderr
    assert len(primary.puppet_runs()) == 1


def test_a_lock_held_too_long_fails_clearly(primary: StubPrimary) -> None:
    primary.request_certificate(CM)
    (primary.root / "agent_catalog_run.lock").touch()
    result = primary.run("join", CM, *JOIN, "--lock-timeout", "0.2")
    assert result.returncode == 1
    assert "another Puppet run on the primary held" in result.stderr


def test_a_disabled_agent_is_reported_as_such(primary: StubPrimary) -> None:
    primary.request_certificate(CM)
    (primary.root / "agent_disabled.lock").write_text(json.dumps({"disabled_message": "change freeze"}))
    result = primary.run("join", CM, *JOIN)
    assert result.returncode == 1
    assert "Puppet is disabled on the primary (change freeze); enable it with `puppet agent --enable`" in (
        result.stderr
    )
    assert primary.puppet_runs() == []


def test_a_failed_primary_run_fails_the_join(primary: StubPrimary) -> None:
    primary.request_certificate(CM)
    primary.set_puppet(exit_code=6)
    result = primary.run("join", CM, *JOIN)
    assert result.returncode == 1
    assert "the Puppet run on the primary failed (exit 6)" in result.stderr


def test_concurrent_joins_share_primary_runs(primary: StubPrimary) -> None:
    names = [f"i-0{index:016x}.eu-west-1.compute.internal" for index in range(6)]
    for name in names:
        primary.request_certificate(name)
    primary.set_puppet(run_seconds=0.6)
    with ThreadPoolExecutor(len(names)) as pool:
        results = list(pool.map(lambda name: primary.run("join", name, *join_arguments(name)), names))
    assert all(result.returncode == 0 for result in results), [r.stderr for r in results]
    runs = len(primary.puppet_runs())
    assert 1 <= runs <= 2, f"{runs} primary runs for {len(names)} joins"
    assert sum("covers compile master" in result.stdout for result in results) == len(names) - runs


def test_leave_purges_unpins_and_drops_the_postgresql_maps(primary: StubPrimary) -> None:
    primary.request_certificate(CM)
    assert primary.run("join", CM, *JOIN).returncode == 0
    events = len(primary.events())
    started = time.monotonic()
    result = primary.run("leave", CM, "--drain-seconds", "0.5")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 0.5, "waited out the deregistration delay"
    assert shape(primary.events()[events:]) == [
        "GET /puppet-ca/v1/certificate_status/CM",
        "puppet node purge CM",
        "GET /classifier-api/v1/groups",
        f"POST /classifier-api/v1/groups/{INFRA_AGENT_ID}/unpin",
        "systemctl reload pe-postgresql.service",
        PUPPET_RUN + " --no-usecacheonfailure --detailed-exitcodes --verbose --color false",
    ]
    assert primary.group("PE Infrastructure Agent")["pinned"] == []
    assert CM not in primary.pg_ident.read_text()
    assert "fetch the new CRL on their next Puppet run" in result.stdout


def test_leave_again_changes_nothing(primary: StubPrimary) -> None:
    primary.request_certificate(CM)
    assert primary.run("join", CM, *JOIN).returncode == 0
    assert primary.run("leave", CM).returncode == 0
    events = len(primary.events())
    again = primary.run("leave", CM)
    assert again.returncode == 0, again.stderr
    assert "already purged" in again.stdout
    later = shape(primary.events()[events:])
    assert not any(line.startswith(("puppet", "systemctl")) for line in later), later


def test_read_prints_the_ca_bundle_hiera_and_platform(primary: StubPrimary) -> None:
    result = primary.run("read")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["caCertificate"] == primary.ca.cert_pem.decode()
    assert answer["hieraYaml"].startswith("---\nversion: 5")
    assert answer["platform"] == PLATFORM


def test_missing_arguments_are_usage_errors(primary: StubPrimary) -> None:
    assert primary.run("join").returncode == 2
    result = primary.run("join", CM)
    assert result.returncode == 2
    assert "join needs --pool-address" in result.stderr


# ---- pe_repo::compile_master_pool_address, in PE's order


def test_pe_repo_set_then_compile_masters_then_the_primary(primary: StubPrimary) -> None:
    result = primary.run("pe-repo-set", POOL, "--compile-masters", f"{CM},{OTHER}")
    assert result.returncode == 0, result.stderr
    assert primary.pool_address == POOL
    assert shape(primary.events()) == [
        "GET /classifier-api/v1/groups",
        f"POST /classifier-api/v1/groups/{PE_MASTER_ID}",
        "GET /packages/current/install.bash",  # the compile masters' own scripts name the pool...
        "GET /packages/current/install.bash",
        "GET /packages/current/install.bash",  # ...the primary's does not yet: run Puppet there
        PUPPET_RUN + " --no-usecacheonfailure --detailed-exitcodes --verbose --color false",
    ]
    assert primary.events()[1].endswith(
        json.dumps({"config_data": {"pe_repo": {"compile_master_pool_address": POOL}}}, sort_keys=True)
    )
    master = primary.group("PE Master")
    assert master["config_data"]["puppet_enterprise::profile::master"] == {
        "code_manager_auto_configure": True
    }


def test_pe_repo_waits_for_each_compile_masters_own_run_before_the_primarys(primary: StubPrimary) -> None:
    primary.compile_masters_run_on_their_own = False
    pe_repo = primary.start("pe-repo-set", POOL, "--compile-masters", CM)
    output_until(pe_repo, f"waiting for {CM}'s next Puppet run to serve an install script naming {POOL}")
    assert primary.puppet_runs() == []
    primary.compile_master_runs(CM)
    code, _, stderr = finish(pe_repo)
    assert code == 0, stderr
    events = primary.events()
    last_check = max(i for i, line in enumerate(events) if "install.bash" in line)
    assert events.index(next(line for line in events if line.startswith("puppet agent"))) > last_check


def test_pe_repo_says_how_to_finish_when_a_compile_master_does_not_run(primary: StubPrimary) -> None:
    primary.compile_masters_run_on_their_own = False
    result = primary.run("pe-repo-set", POOL, "--compile-masters", CM, "--run-timeout", "0.3")
    assert result.returncode == 1
    assert f"{CM} still serves an install script that does not name {POOL}" in result.stderr
    assert "run Puppet on it (puppet agent -t, or Run Puppet in the console)" in result.stderr
    assert primary.puppet_runs() == [], "never the primary before the compile masters"


def test_a_pe_repo_class_parameter_in_pe_master_is_refused(primary: StubPrimary) -> None:
    primary.group("PE Master")["classes"]["pe_repo"] = {"compile_master_pool_address": "old.example.com"}
    result = primary.run("pe-repo-set", POOL)
    assert result.returncode == 1
    assert (
        "'PE Master' sets the pe_repo class parameter compile_master_pool_address = 'old.example.com', "
        "which overrides the configuration data pe-lb sets; remove it"
    ) in result.stderr
    assert primary.pool_address is None
    assert primary.puppet_runs() == []


def test_pe_repo_set_again_is_a_no_op(primary: StubPrimary) -> None:
    assert primary.run("pe-repo-set", POOL, "--compile-masters", CM).returncode == 0
    events = len(primary.events())
    again = primary.run("pe-repo-set", POOL, "--compile-masters", CM)
    assert again.returncode == 0
    assert "unchanged" in again.stdout
    assert not any(line.startswith(("POST", "puppet")) for line in primary.events()[events:])


def test_pe_repo_unset_reverts_only_its_own_address(primary: StubPrimary) -> None:
    """The engine's order on a new address: the new command's create, then the old one's delete."""
    primary.run("pe-repo-set", "old-pool.example.com")
    primary.run("pe-repo-set", "new-pool.example.com")
    left = primary.run("pe-repo-unset", "old-pool.example.com")
    assert left.returncode == 0 and "left alone" in left.stdout
    assert primary.pool_address == "new-pool.example.com"
    removed = primary.run("pe-repo-unset", "new-pool.example.com")
    assert removed.returncode == 0, removed.stderr
    assert primary.pool_address is None


# ---- PE Agent: agents and PXP agents through the pool


POOL_SETTINGS = {
    "server_list": [f"{POOL}:8140"],
    "primary_uris": [f"https://{POOL}:8140"],
    "pcp_broker_list": [f"{POOL}:8142"],
}


def test_agent_set_points_pe_agent_at_the_pool_on_both_ports(primary: StubPrimary) -> None:
    result = primary.run("agent-set", POOL)
    assert result.returncode == 0, result.stderr
    assert primary.agent_settings() == POOL_SETTINGS
    assert shape(primary.events()) == [
        "GET /classifier-api/v1/groups",
        "GET /classifier-api/v1/groups",
        f"POST /classifier-api/v1/groups/{PE_AGENT_ID}",
        PUPPET_RUN + " --no-usecacheonfailure --detailed-exitcodes --verbose --color false",
    ]
    assert "warning" not in result.stdout


def test_agent_set_again_changes_nothing(primary: StubPrimary) -> None:
    assert primary.run("agent-set", POOL).returncode == 0
    events = len(primary.events())
    assert primary.run("agent-set", POOL).returncode == 0
    assert not any(line.startswith(("POST", "puppet")) for line in primary.events()[events:])


def test_agent_set_leaves_a_value_someone_else_set_and_says_so(primary: StubPrimary) -> None:
    primary.agent_settings()["pcp_broker_list"] = ["broker.example.com:8142"]
    result = primary.run("agent-set", POOL)
    assert result.returncode == 0, result.stderr
    assert "pcp_broker_list is ['broker.example.com:8142'], set by someone else: left alone" in result.stdout
    assert primary.agent_settings()["pcp_broker_list"] == ["broker.example.com:8142"]
    assert primary.agent_settings()["server_list"] == [f"{POOL}:8140"]
    unset = primary.run("agent-unset", POOL)
    assert unset.returncode == 0
    assert primary.agent_settings() == {"pcp_broker_list": ["broker.example.com:8142"]}


def test_agent_unset_reverts_exactly_its_own_values(primary: StubPrimary) -> None:
    assert primary.run("agent-set", POOL).returncode == 0
    primary.agent_settings()["server_list"] = ["changed-by-hand.example.com:8140"]
    result = primary.run("agent-unset", POOL)
    assert result.returncode == 0, result.stderr
    assert primary.agent_settings() == {"server_list": ["changed-by-hand.example.com:8140"]}
    assert "not pe-lb's" in result.stdout


def test_agent_settings_survive_a_new_pool_address_in_the_engines_order(primary: StubPrimary) -> None:
    """A new address replaces the command: the new create runs, then the old delete."""
    assert primary.run("agent-set", "old-pool.example.com").returncode == 0
    assert primary.run("agent-set", POOL).returncode == 0
    assert primary.run("agent-unset", "old-pool.example.com").returncode == 0
    assert primary.agent_settings() == POOL_SETTINGS


def test_agent_set_warns_when_infrastructure_nodes_would_use_the_pool(primary: StubPrimary) -> None:
    primary.group("PE Infrastructure Agent")["classes"]["puppet_enterprise::profile::agent"] = {}
    result = primary.run("agent-set", POOL)
    assert result.returncode == 0
    assert "warning: 'PE Infrastructure Agent' sets no server_list, pcp_broker_list" in result.stdout


def test_classifier_errors_are_reported_in_one_line(primary: StubPrimary) -> None:
    primary.groups = [group for group in primary.groups if group["name"] != "PE Master"]
    result = primary.run("pe-repo-set", POOL)
    assert result.returncode == 1
    assert result.stderr.strip() == "pe-lb pe-repo-set: no node group named 'PE Master' in the classifier"


def test_unreadable_certificates_are_reported(primary: StubPrimary) -> None:
    (primary.root / "ssl" / "private_keys" / f"{PRIMARY}.pem").unlink()
    result = primary.run("pe-repo-set", POOL)
    assert result.returncode == 1
    assert f"cannot load the certificates of '{PRIMARY}'" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_script_agrees_with_components_pe() -> None:
    """The script runs alone on the primary, so it has its own copies of pe.py's names."""
    from components import pe
    from components.scripts.pe_primary import __main__ as cli
    from components.scripts.pe_primary import constants, names, pool_settings

    assert constants.PUPPETSERVER_PORT == pe.PUPPETSERVER_PORT
    assert constants.CLASSIFIER_PORT == pe.CLASSIFIER_PORT
    assert constants.PE_MASTER_GROUP == pe.PE_MASTER_NODE_GROUP
    assert constants.PE_INFRASTRUCTURE_AGENT_GROUP == pe.PE_INFRASTRUCTURE_AGENT_NODE_GROUP
    assert constants.PE_REPO_PARAMETER == pe.PE_REPO_POOL_ADDRESS_PARAMETER
    assert constants.COMPILER_AUTH_ROLE == pe.COMPILER_AUTH_ROLE
    assert constants.OID_PLATFORM == pe.PLATFORM_EXTENSION_OID == PLATFORM_OID
    assert constants.OID_INSTANCE_IDENTITY == pe.INSTANCE_IDENTITY_OID
    assert constants.PCP_BROKER_PORT == pe.PCP_BROKER_PORT
    assert pe.PE_REPO_SET_ACTION in cli.ACTIONS and f"{pe.PE_AGENT_ACTION}-set" in cli.ACTIONS
    for arn in (instance_arn(CM), "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc123def4567890"):
        region, _, instance_id = names.instance_arn(arn)
        assert names.instance_certname(instance_id, region) == pe.instance_certname(arn)
    for text, address in [
        ("PE_MASTER='pool.example.com'", "pool.example.com"),
        ("PE_MASTER='old-pool.example.com'", "pool.example.com"),
        ("https://pool.example.com.au:8140", "pool.example.com"),
        ("https://POOL.example.com:8140", "pool.example.com"),
    ]:
        assert pool_settings.names_address(text, address) == pe.install_script_names(text, address)


def python_36() -> str | None:
    """A working Python 3.6 (pyenv's, or one on PATH), as RHEL 8's platform-python is."""
    for candidate in [
        *sorted(glob.glob("/root/.pyenv/versions/3.6*/bin/python3.6")),
        shutil.which("python3.6"),
    ]:
        if candidate:
            answer = subprocess.run([candidate, "--version"], capture_output=True, text=True, check=False)
            if answer.returncode == 0 and "3.6" in answer.stdout + answer.stderr:
                return candidate
    return None


PYTHON_36 = python_36()


@pytest.mark.skipif(PYTHON_36 is None, reason="no Python 3.6 on this machine; vermin still checks the syntax")
def test_every_action_runs_on_python_3_6_as_rhel_8s_platform_python(
    primary: StubPrimary, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without LANG or LC_ALL, as over RHEL's non-interactive SSH, and with a non-ASCII hiera.yaml."""
    assert PYTHON_36 is not None
    for name in ("LANG", "LC_ALL", "LC_CTYPE", "PYTHONIOENCODING", "PYTHONUTF8"):
        monkeypatch.delenv(name, raising=False)
    hiera = "---\nversion: 5\n# Zürich, 東京\nhierarchy: []\n"
    (primary.root / "hiera.yaml").write_text(hiera, encoding="utf-8")
    read = primary.run("read", python=PYTHON_36)
    assert read.returncode == 0, read.stderr
    assert json.loads(read.stdout)["hieraYaml"] == hiera
    primary.request_certificate(CM)
    for argv in (
        ("join", CM, *JOIN),
        ("pe-repo-set", POOL, "--compile-masters", CM),
        ("agent-set", POOL),
        ("read",),
        ("agent-unset", POOL),
        ("pe-repo-unset", POOL),
        ("leave", CM),
    ):
        result = primary.run(*argv, python=PYTHON_36)
        assert result.returncode == 0, (argv, result.stderr)
    assert primary.signed == set() and primary.pool_address is None


def test_leave_of_a_node_whose_join_was_refused_removes_its_unsigned_request(primary: StubPrimary) -> None:
    primary.request_certificate(CM, identity=None)
    assert primary.run("join", CM, *JOIN).returncode == 1
    result = primary.run("leave", CM)
    assert result.returncode == 0, result.stderr
    assert f"{CM} had only an unsigned request on the CA: removed it" in result.stdout
    assert CM not in primary.requests and CM not in primary.certificates
    assert not any(line.startswith("puppet node purge") for line in primary.events())


# ---- holders: a setting stays while any command resource holds it


OWNER = ("--owner", "pe-lb/dev/pe-lb-pe-repo")


@pytest.mark.parametrize(
    ("set_action", "unset_action"), [("pe-repo-set", "pe-repo-unset"), ("agent-set", "agent-unset")]
)
def test_a_replacement_that_asks_for_the_same_address_keeps_it_through_the_old_delete(
    primary: StubPrimary, set_action: str, unset_action: str
) -> None:
    """The engine's order for `pulumi up --replace` or an upgrade: new create, then old delete."""
    assert primary.run(set_action, POOL, *OWNER).returncode == 0  # the old resource's create
    assert primary.run(set_action, POOL, *OWNER).returncode == 0  # the new resource's create
    old_delete = primary.run(unset_action, POOL, *OWNER)
    assert old_delete.returncode == 0, old_delete.stderr
    assert "is still held by pe-lb/dev/pe-lb-pe-repo (1): left set" in old_delete.stdout
    assert POOL in json.dumps(primary.agent_settings() if set_action == "agent-set" else primary.pool_address)
    assert primary.run(unset_action, POOL, *OWNER).returncode == 0  # destroy
    assert primary.pool_address is None and primary.agent_settings() == {}


def test_an_update_sets_again_without_counting_another_hold(primary: StubPrimary) -> None:
    assert primary.run("pe-repo-set", POOL, *OWNER).returncode == 0
    assert primary.run("pe-repo-set", POOL, *OWNER, "--update").returncode == 0
    assert primary.run("pe-repo-unset", POOL, *OWNER).returncode == 0
    assert primary.pool_address is None, "one create, one delete: nothing holds it any more"


def test_a_new_address_is_set_before_the_old_is_released_and_never_unset_by_it(primary: StubPrimary) -> None:
    assert primary.run("pe-repo-set", "old-pool.example.com", *OWNER).returncode == 0
    assert primary.run("pe-repo-set", POOL, *OWNER).returncode == 0
    released = primary.run("pe-repo-unset", "old-pool.example.com", *OWNER)
    assert released.returncode == 0
    assert "is 'pool.example.com', not 'old-pool.example.com': left alone" in released.stdout
    assert primary.pool_address == POOL


def test_a_failed_pe_repo_set_puts_the_previous_address_back(primary: StubPrimary) -> None:
    assert primary.run("pe-repo-set", "old-pool.example.com", *OWNER).returncode == 0
    primary.compile_masters_run_on_their_own = False
    failed = primary.run("pe-repo-set", POOL, *OWNER, "--compile-masters", CM, "--run-timeout", "0")
    assert failed.returncode == 1
    assert "(compile_master_pool_address put back to 'old-pool.example.com')" in failed.stderr
    assert primary.pool_address == "old-pool.example.com"
    holders = json.loads((primary.root / "state" / "holders.json").read_text())
    assert POOL not in holders["pe_repo"], "a failed set holds nothing"


def test_a_failed_agent_set_puts_pe_agents_values_back(primary: StubPrimary) -> None:
    assert primary.run("agent-set", "old-pool.example.com", *OWNER).returncode == 0
    before = dict(primary.agent_settings())
    primary.set_puppet(exit_code=1)
    failed = primary.run("agent-set", POOL, *OWNER)
    assert failed.returncode == 1
    assert "PE Agent's pcp_broker_list, primary_uris, server_list put back" in failed.stderr
    assert primary.agent_settings() == before


def test_leave_of_a_refused_request_the_ca_cannot_describe_removes_it(primary: StubPrimary) -> None:
    """A repeated extension: the real CA answers 500 to certificate_status but deletes the request."""
    primary.request_certificate(CM, duplicate_extension=True)
    assert primary.run("join", CM, *JOIN).returncode == 1
    result = primary.run("leave", CM)
    assert result.returncode == 0, result.stderr
    assert f"{CM} had only an unsigned request the CA could not read: removed it" in result.stdout
    assert CM not in primary.requests and CM not in primary.certificates
