"""poolctl against moto in server mode: a real AWS API emulator on 127.0.0.1, started here.

What moto does not emulate, found by reading its elbv2 backend (5.2.5):
- no "initial" state after registration and no "draining" state after deregistration:
  a registered running instance is healthy at once, a deregistered one is gone at once;
- no throttling;
- it refuses to delete a target group a listener uses (as AWS does), so a listener whose
  target group vanished cannot be built.
Those cases use botocore's Stubber or a local throttling endpoint, and say so below.
"""

from __future__ import annotations

import http.server
import io
import itertools
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs

import boto3
import pytest
import requests
from botocore.stub import Stubber
from moto.server import ThreadedMotoServer

from components import pe
from components.pool_health_gate import wait_healthy_command
from components.poolctl import cli
from components.poolctl.pool import HEALTHY, Pool, PoolError, TargetHealth
from tests.aws_emulator import POOL, REGION, EmulatedPool, build_pool, free_port
from tests.harness import PROJECT_DIR


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def pool(moto_endpoint: str) -> EmulatedPool:
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    return build_pool(moto_endpoint)


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def json(self) -> Any:
        return json.loads(self.out)


def poolctl(*argv: str) -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, progress=err)
    return Run(code, out.getvalue(), err.getvalue())


def registered(pool: EmulatedPool, port: int) -> set[str]:
    health = pool.elb.describe_target_health(TargetGroupArn=pool.target_group_arns[port])
    return {d["Target"]["Id"] for d in health["TargetHealthDescriptions"]}


def take_out(pool: EmulatedPool, instance_id: str) -> None:
    for port, arn in pool.target_group_arns.items():
        pool.elb.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": instance_id, "Port": port}])


def one_line_error(run: Run, text: str) -> None:
    assert run.code == 2
    assert text in run.err
    assert "Traceback" not in run.err
    assert len(run.err.strip().splitlines()) == 1


def ends_in_error(run: Run, text: str, code: int = 2) -> str:
    """After progress lines, one line of error: returns it."""
    assert run.code == code, run.err
    assert "Traceback" not in run.err
    last = run.err.strip().splitlines()[-1]
    assert last.startswith("poolctl: ") and text in last
    return last


# --- status ------------------------------------------------------------------------------------


def test_status_all_healthy(pool: EmulatedPool) -> None:
    run = poolctl("status", *pool.cli_args())
    assert run.code == 0, run.err
    for index, instance_id in enumerate(pool.instance_ids):
        row = next(line for line in run.out.splitlines() if line.startswith(instance_id))
        assert f"pe-lb-{index}" in row and row.count("healthy") == 2
        assert f"{REGION}a" in row or f"{REGION}b" in row
    assert "listener 8142: TCP, TCP idle timeout 1200 s" in run.out
    assert "listener 8140: TCP, TCP idle timeout 600 s" in run.out
    assert "health check 8140: HTTPS :8140/status/v1/simple every 10 s" in run.out
    assert "health check 8142: HTTPS :8140/status/v1/simple/broker-service every 10 s" in run.out
    assert "out after 2 failures = 20 s, back after 3 = 30 s" in run.out
    # Each compile master's row is under both checks, each by its path.
    header = next(line for line in run.out.splitlines() if line.startswith("INSTANCE"))
    assert "8140 HTTPS :8140/status/v1/simple " in header
    assert header.endswith("8142 HTTPS :8140/status/v1/simple/broker-service")
    assert "3 of 3 compile masters in rotation healthy on every port" in run.out


def test_status_json(pool: EmulatedPool) -> None:
    run = poolctl("status", "--json", *pool.cli_args())
    assert run.code == 0
    data = run.json
    assert data["healthy"] is True
    assert data["listeners"]["8142"]["tcpIdleTimeoutSeconds"] == 1200
    assert data["listeners"]["8140"]["healthCheck"]["failureDetectionSeconds"] == 20
    assert sorted(m["instanceId"] for m in data["compileMasters"]) == sorted(pool.instance_ids)
    assert all(m["health"]["8140"]["state"] == HEALTHY for m in data["compileMasters"])
    assert {m["health"]["8142"]["check"] for m in data["compileMasters"]} == {
        "HTTPS :8140/status/v1/simple/broker-service"
    }


def test_status_by_arn_takes_the_region_from_it(pool: EmulatedPool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    run = poolctl("status", "--load-balancer", pool.load_balancer_arn, "--endpoint-url", pool.endpoint)
    assert run.code == 0, run.err


def test_status_from_saved_stack_outputs(pool: EmulatedPool, tmp_path: Path) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps({"loadBalancerArn": pool.load_balancer_arn, "poolAddress": "pool.example.com"})
    )
    run = poolctl("status", "--outputs", str(outputs), "--endpoint-url", pool.endpoint)
    assert run.code == 0, run.err


def test_stopped_compile_master_makes_status_exit_1(pool: EmulatedPool) -> None:
    stopped = pool.instance_ids[1]
    pool.ec2.stop_instances(InstanceIds=[stopped])
    run = poolctl("status", *pool.cli_args())
    assert run.code == 1
    row = next(line for line in run.out.splitlines() if line.startswith(stopped))
    assert row.count("unused (Target.InvalidState)") == 2
    assert "2 of 3 compile masters in rotation healthy on every port" in run.out


def test_unknown_load_balancer(pool: EmulatedPool) -> None:
    run = poolctl("status", "--load-balancer", "nope", "--endpoint-url", pool.endpoint)
    one_line_error(run, "no load balancer 'nope' in this account and region")


def test_application_load_balancer_is_refused(pool: EmulatedPool) -> None:
    subnets = [
        s["SubnetId"]
        for s in pool.ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [pool.vpc_id]}])["Subnets"]
    ]
    pool.elb.create_load_balancer(Name="web-alb", Subnets=subnets, Type="application")
    run = poolctl("status", "--load-balancer", "web-alb", "--endpoint-url", pool.endpoint)
    one_line_error(run, "web-alb is an application load balancer, not a network load balancer")


def test_missing_pcp_listener_and_target_group(pool: EmulatedPool) -> None:
    pool.elb.delete_listener(ListenerArn=pool.listener_arns[8142])
    pool.elb.delete_target_group(TargetGroupArn=pool.target_group_arns[8142])
    run = poolctl("status", *pool.cli_args())
    one_line_error(run, "has no listener on 8142 (listeners: 8140)")


def test_vanished_target_group_uses_stubber(pool: EmulatedPool) -> None:
    """Stubber: moto, like AWS, will not delete a target group a listener forwards to."""
    instance = pool.poolctl_pool()
    with Stubber(instance.elb) as stub:
        stub.add_client_error(
            "describe_target_health", "TargetGroupNotFound", "One or more target groups not found"
        )
        with pytest.raises(PoolError, match=r"target group of the 8140 listener .* does not exist"):
            instance.status()


# --- drain / undrain ---------------------------------------------------------------------------


def test_drain_then_undrain(pool: EmulatedPool) -> None:
    victim = pool.instance_ids[0]
    drained = poolctl("drain", victim, "--interval", "0.05", *pool.cli_args())
    assert drained.code == 0, drained.err
    assert f"{victim} drained" in drained.err
    assert "8140: unused (Target.NotRegistered), 8142: unused (Target.NotRegistered)" in drained.err
    assert victim not in registered(pool, 8140) | registered(pool, 8142)
    assert set(pool.instance_ids[1:]) <= registered(pool, 8140) & registered(pool, 8142)

    undrained = poolctl("undrain", victim, "--interval", "0.05", *pool.cli_args())
    assert undrained.code == 0, undrained.err
    assert f"{victim} healthy on every port" in undrained.err
    assert victim in registered(pool, 8140) & registered(pool, 8142)
    ports = {
        port: next(d["Target"]["Port"] for d in pool.elb.describe_target_health(TargetGroupArn=arn)[
            "TargetHealthDescriptions"] if d["Target"]["Id"] == victim)
        for port, arn in pool.target_group_arns.items()
    }  # fmt: skip
    assert ports == {8140: 8140, 8142: 8142}


def test_refuses_to_drain_the_last_healthy_compile_master(pool: EmulatedPool) -> None:
    pool.ec2.stop_instances(InstanceIds=pool.instance_ids[1:])
    last = pool.instance_ids[0]
    run = poolctl("drain", last, *pool.cli_args())
    one_line_error(run, f"refusing to drain {last}: no other compile master is healthy on every port")
    assert last in registered(pool, 8140) & registered(pool, 8142)

    forced = poolctl("drain", last, "--force", "--interval", "0.05", *pool.cli_args())
    assert forced.code == 0, forced.err
    assert last not in registered(pool, 8140)


def test_drain_unknown_instance_changes_nothing(pool: EmulatedPool) -> None:
    run = poolctl("drain", "i-0123456789abcdef0", *pool.cli_args())
    one_line_error(run, "i-0123456789abcdef0 is not a target of pe-lb-nlb-0a1b2c3")
    assert set(pool.instance_ids) == registered(pool, 8140) == registered(pool, 8142)


def test_malformed_instance_id(pool: EmulatedPool) -> None:
    run = poolctl("drain", "web-01", *pool.cli_args())
    one_line_error(run, "INSTANCE_ID 'web-01' is not an EC2 instance id")


def test_undrain_unknown_instance(pool: EmulatedPool) -> None:
    run = poolctl("undrain", "i-0123456789abcdef0", *pool.cli_args())
    one_line_error(run, "no EC2 instance i-0123456789abcdef0")


def test_drain_progress_through_draining_uses_stubber(pool: EmulatedPool) -> None:
    """Stubber: moto has no 'draining' state; AWS keeps a target draining for the deregistration delay."""
    target = pool.poolctl_pool()
    victim = pool.instance_ids[0]
    draining = {"State": "draining", "Reason": "Target.DeregistrationInProgress"}
    gone = {"State": "unused", "Reason": "Target.NotRegistered"}
    progress = io.StringIO()
    context = cli.Context(
        cli.parser().parse_args(["wait-healthy", "--interval", "0.01"]), io.StringIO(), progress
    )
    with Stubber(target.elb) as stub:
        for states in ((draining, draining), (draining, gone), (gone, gone)):
            for port, state in zip((8140, 8142), states, strict=True):
                stub.add_response(
                    "describe_target_health",
                    {
                        "TargetHealthDescriptions": [
                            {"Target": {"Id": victim, "Port": port}, "TargetHealth": state}
                        ]
                    },
                )
        done = cli.wait_for(
            context,
            lambda: target.target_health(victim),
            lambda health: all(h.state == "unused" for h in health.values()),
            "drained",
        )
        stub.assert_no_pending_responses()
    assert done
    lines = progress.getvalue().splitlines()
    assert "8140: draining (Target.DeregistrationInProgress), 8142: draining" in lines[0]
    assert "8140: draining (Target.DeregistrationInProgress), 8142: unused (Target.NotRegistered)" in lines[1]
    assert lines[-1].startswith("drained after")


# --- wait-healthy ------------------------------------------------------------------------------


def test_wait_healthy_returns_when_healthy(pool: EmulatedPool) -> None:
    run = poolctl("wait-healthy", "--interval", "0.05", *pool.cli_args())
    assert run.code == 0, run.err
    assert "8140: 3/3 healthy; 8142: 3/3 healthy" in run.err


def test_wait_healthy_times_out(pool: EmulatedPool) -> None:
    pool.ec2.stop_instances(InstanceIds=[pool.instance_ids[2]])
    run = poolctl("wait-healthy", "--timeout", "0.3", "--interval", "0.05", *pool.cli_args())
    assert run.code == 1
    assert "timed out after 0.3s waiting for every compile master healthy" in run.err
    assert f"{pool.instance_ids[2]} unused (Target.InvalidState) on 8140" in run.err


def test_wait_healthy_sees_a_compile_master_come_back(pool: EmulatedPool) -> None:
    sick = pool.instance_ids[2]
    pool.ec2.stop_instances(InstanceIds=[sick])

    class StartOnFirstProgress(io.StringIO):
        """Starts the stopped compile master once poolctl has reported it unhealthy."""

        def write(self, text: str) -> int:
            if "2/3 healthy" in text:
                pool.ec2.start_instances(InstanceIds=[sick])
            return super().write(text)

    progress = StartOnFirstProgress()
    argv = ["wait-healthy", "--timeout", "30", "--interval", "0.05", *pool.cli_args()]
    code = cli.main(argv, out=io.StringIO(), progress=progress)
    assert code == 0, progress.getvalue()
    lines = progress.getvalue().splitlines()
    assert "2/3 healthy" in lines[0] and "3/3 healthy" in lines[1]
    assert lines[-1].startswith("every compile master healthy after")


def test_wait_healthy_for_the_compile_masters_an_update_adds_ignores_a_sick_one_elsewhere(
    pool: EmulatedPool,
) -> None:
    """Issue 13: one stopped compile master blocked every deployment, the one replacing it too."""
    sick, *added = pool.instance_ids[2], pool.instance_ids[0], pool.instance_ids[1]
    pool.ec2.stop_instances(InstanceIds=[sick])
    instances = [argument for instance in added for argument in ("--instance", instance)]
    run = poolctl("wait-healthy", "--timeout", "30", "--interval", "0.05", *instances, *pool.cli_args())
    assert run.code == 0, run.err
    assert f"{', '.join(added)} healthy in every target group after" in run.err
    blocked = poolctl(
        "wait-healthy", "--timeout", "0.3", "--interval", "0.05", "--instance", sick, *pool.cli_args()
    )
    assert blocked.code == 1
    assert f"waiting for {sick} healthy in every target group" in blocked.err


def test_wait_healthy_refuses_an_instance_that_is_not_an_instance_id(pool: EmulatedPool) -> None:
    run = poolctl("wait-healthy", "--instance", "i-0123\n", *pool.cli_args())
    assert run.code == 2
    assert "is not an EC2 instance id" in run.err


# --- account and endpoint faults ----------------------------------------------------------------


def test_missing_credentials(pool: EmulatedPool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    run = poolctl("status", *pool.cli_args())
    one_line_error(run, "no AWS credentials found: run `aws configure`, set AWS_PROFILE, or pass --profile")


def test_unknown_profile(pool: EmulatedPool) -> None:
    run = poolctl("status", "--profile", "nobody", *pool.cli_args())
    one_line_error(run, "AWS profile 'nobody' not found")


def test_unreachable_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    endpoint = f"http://127.0.0.1:{free_port()}"
    run = poolctl("status", "--load-balancer", "pe-lb", "--endpoint-url", endpoint)
    one_line_error(run, f"cannot reach {endpoint}")


def test_no_pool_named() -> None:
    run = poolctl("status")
    one_line_error(run, "say which pool: --load-balancer NAME_OR_ARN, --stack STACK or --outputs FILE")


def test_stack_without_pulumi_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    run = poolctl("status", "--stack", "dev")
    one_line_error(run, "--stack needs the Pulumi CLI")


def test_usage_error_exits_2_on_one_line() -> None:
    run = poolctl("drain")
    one_line_error(run, "poolctl drain: the following arguments are required: INSTANCE_ID")


class Throttler(http.server.BaseHTTPRequestHandler):
    """An AWS endpoint that throttles the first ``throttle`` requests, refuses the actions in
    ``refuse`` once they have been let through that many times, and forwards the rest to moto."""

    throttle = 0
    seen = 0
    upstream = ""
    refuse: ClassVar[dict[str, int]] = {}

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        cls = type(self)
        cls.seen += 1
        action = parse_qs(body.decode()).get("Action", [""])[0]
        refused = action in cls.refuse and cls.refuse[action] <= 0
        if action in cls.refuse:
            cls.refuse[action] -= 1
        if cls.seen <= cls.throttle or refused:
            code, message = ("AccessDenied", "not allowed") if refused else ("Throttling", "Rate exceeded")
            payload = (
                b'<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"><Error>'
                b"<Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>"
                b"<RequestId>1</RequestId></ErrorResponse>" % (code.encode(), message.encode())
            )
            self.send_response(403 if refused else 400)
        else:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            answer = requests.post(cls.upstream + self.path, data=body, headers=headers, timeout=10)
            payload = answer.content
            self.send_response(answer.status_code)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def throttler(pool: EmulatedPool) -> Iterator[tuple[str, type[Throttler]]]:
    handler = type("T", (Throttler,), {"throttle": 0, "seen": 0, "upstream": pool.endpoint, "refuse": {}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def test_throttling_is_retried_with_standard_mode(
    pool: EmulatedPool, throttler: tuple[str, type[Throttler]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local endpoint in front of moto, since moto never throttles."""
    endpoint, handler = throttler
    handler.throttle = 2
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    started = time.monotonic()
    run = poolctl("status", "--load-balancer", pool.load_balancer_name, "--endpoint-url", endpoint)
    assert run.code == 0, run.err
    assert handler.seen > 2
    assert time.monotonic() - started < 60


def test_persistent_throttling_gives_a_clear_error(
    throttler: tuple[str, type[Throttler]], monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint, handler = throttler
    handler.throttle = 10**6
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    run = poolctl("status", "--load-balancer", "pe-lb", "--endpoint-url", endpoint)
    one_line_error(run, "AWS kept throttling poolctl's requests, even after retrying with backoff")
    assert handler.seen == 3


@pytest.mark.parametrize(
    "account",
    [(None, None, None), ("eu-west-1", None, "arn:aws:iam::123456789012:role/pe-lb-deployer")],
    ids=["environment", "the provider's region and role (moto's STS answers AssumeRole)"],
)
def test_the_pulumi_health_gate_command_runs_poolctl(
    pool: EmulatedPool, account: tuple[str | None, str | None, str | None]
) -> None:
    """The exact command line PoolHealthGate hands to pulumi-command, run by a shell as pulumi-command
    runs it, from another folder, with poolctl from PATH (this venv's, as `make up` puts first)."""
    instance = pool.instance_ids[1]
    command = wait_healthy_command(pool.load_balancer_arn, 60, *account, instances=[instance])
    path = f"{Path(sys.executable).parent}:/usr/bin:/bin"
    env = {**os.environ, "AWS_ENDPOINT_URL": pool.endpoint, "PATH": path}
    result = subprocess.run(
        ["/bin/sh", "-c", command],
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"{instance} healthy in every target group" in result.stderr


def test_undrain_refuses_an_instance_from_another_vpc(pool: EmulatedPool) -> None:
    other_vpc = pool.ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    subnet = pool.ec2.create_subnet(VpcId=other_vpc, CidrBlock="10.99.0.0/24")["Subnet"]["SubnetId"]
    stranger = pool.compile_master("pe-lb-7", POOL, subnet)
    run = poolctl("undrain", stranger, *pool.cli_args())
    one_line_error(run, f"{stranger} is in {other_vpc}, not in the load balancer's {pool.vpc_id}")
    assert stranger not in registered(pool, 8140)


def test_undrain_refuses_a_stopped_instance(pool: EmulatedPool) -> None:
    victim = pool.instance_ids[0]
    assert poolctl("drain", victim, "--interval", "0.05", *pool.cli_args()).code == 0
    pool.ec2.stop_instances(InstanceIds=[victim])
    pool.ec2.describe_instances(InstanceIds=[victim])
    run = poolctl("undrain", victim, *pool.cli_args())
    one_line_error(run, f"{victim} is stopped; start it before undrain")


# --- drained on purpose, and out of rotation by surprise ---------------------------------------


STUB_PULUMI = """
# Stub Pulumi CLI: records each call; stack outputs from outputs.json, drainedCompileMasters kept in
# drained.json as `pulumi config` keeps it; a call starting with a line of the file "fail" fails.
import json, os, sys
from pathlib import Path

stub = Path(os.environ["STUB_DIR"])
args = sys.argv[1:]
call = " ".join(args)
with open(stub / "pulumi.calls", "a") as calls:
    calls.write(f"pulumi {call}\\n")
fail = stub / "fail"
if fail.exists() and any(line and call.startswith(line) for line in fail.read_text().splitlines()):
    sys.exit("error: could not save the stack's configuration:\\n  Pulumi.dev.yaml: permission denied")
saved = stub / "drained.json"
drained = json.loads(saved.read_text()) if saved.exists() else None
if args[:2] == ["stack", "output"]:
    print((stub / "outputs.json").read_text())
elif args[:2] == ["config", "get"]:
    if drained is None:
        sys.exit("error: configuration key 'drainedCompileMasters' not found for stack 'dev'")
    print(json.dumps({"value": json.dumps(drained), "objectValue": drained}))
elif args[:2] == ["config", "rm"]:
    saved.unlink(missing_ok=True)
elif args[:3] == ["config", "set", "--path"]:
    position, values = int(args[3].split("[")[1].rstrip("]")), drained or []
    if position > len(values):
        sys.exit("error: index out of range")
    values[position : position + 1] = [int(args[4])]
    saved.write_text(json.dumps(values))
"""


@pytest.fixture
def stub_pulumi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pool: EmulatedPool) -> Path:
    binary = tmp_path / "bin" / "pulumi"
    binary.parent.mkdir()
    binary.write_text(f"#!{sys.executable}" + STUB_PULUMI)
    binary.chmod(0o755)
    (tmp_path / "outputs.json").write_text(
        json.dumps({"loadBalancerArn": pool.load_balancer_arn, "compileMasterPoolTag": POOL})
    )
    monkeypatch.setenv("PATH", f"{binary.parent}:{os.environ['PATH']}")
    monkeypatch.setenv("STUB_DIR", str(tmp_path))
    return tmp_path


def config(stub: Path) -> list[int] | None:
    """drainedCompileMasters as the stub's stack config holds it (None: unset)."""
    saved = stub / "drained.json"
    return json.loads(saved.read_text()) if saved.exists() else None


def test_status_shows_compile_masters_out_of_rotation_instead_of_hiding_them(pool: EmulatedPool) -> None:
    out = pool.instance_ids[2]
    for port, arn in pool.target_group_arns.items():
        pool.elb.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": out, "Port": port}])
    run = poolctl("status", *pool.cli_args())
    assert run.code == 1, "a compile master out of rotation that nobody drained on purpose"
    row = next(line for line in run.out.splitlines() if line.startswith(out))
    assert " out " in row and row.count("unused (Target.NotRegistered)") == 2
    assert "2 of 2 compile masters in rotation healthy on every port" in run.out
    assert f"1 out of rotation and not drained by the stack: {out}" in run.out
    assert poolctl("status", "--json", *pool.cli_args()).json["outOfRotation"] == [out]


def test_a_compile_master_the_stack_drains_is_shown_as_drained(pool: EmulatedPool, tmp_path: Path) -> None:
    drained = pool.instance_ids[0]
    for port, arn in pool.target_group_arns.items():
        pool.elb.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": drained, "Port": port}])
    outputs = tmp_path / "outputs.json"
    outputs.write_text(
        json.dumps(
            {
                "loadBalancerArn": pool.load_balancer_arn,
                "drainedCompileMasterIds": [drained],
                "compileMasterPoolTag": POOL,
            }
        )
    )
    run = poolctl("status", "--outputs", str(outputs), "--endpoint-url", pool.endpoint)
    assert run.code == 0, run.out
    row = next(line for line in run.out.splitlines() if line.startswith(drained))
    assert " drained " in row
    assert "1 drained on purpose (drainedCompileMasters)" in run.out


def test_drain_says_how_to_keep_it_drained(pool: EmulatedPool) -> None:
    run = poolctl("drain", pool.instance_ids[1], "--interval", "0.05", *pool.cli_args())
    assert run.code == 0, run.err
    assert (
        "to keep it out of rotation across `pulumi refresh` and `pulumi up`, add pool index 1 to the "
        "stack's drainedCompileMasters (poolctl does it with --stack)"
    ) in run.err


def test_drain_with_a_stack_makes_it_the_stacks_desired_state(pool: EmulatedPool, stub_pulumi: Path) -> None:
    (stub_pulumi / "drained.json").write_text("[0]")
    run = poolctl(
        "drain", pool.instance_ids[2], "--stack", "dev", "--interval", "0.05", "--endpoint-url", pool.endpoint
    )
    assert run.code == 0, run.err
    calls = (stub_pulumi / "pulumi.calls").read_text().splitlines()
    # Appended in one command: a failure cannot leave the list half-written.
    assert calls[-1] == "pulumi config set --path drainedCompileMasters[1] 2 --stack dev"
    assert config(stub_pulumi) == [0, 2]
    assert "stack dev: drainedCompileMasters = [0, 2]" in run.err
    # The config is changed before the target groups are.
    assert run.err.index("drainedCompileMasters = [0, 2]") < run.err.index("deregistering")
    assert pool.instance_ids[2] not in registered(pool, 8140) | registered(pool, 8142)


def test_undrain_with_a_stack_takes_it_out_of_the_drained_list(pool: EmulatedPool, stub_pulumi: Path) -> None:
    (stub_pulumi / "drained.json").write_text("[1]")
    victim = pool.instance_ids[1]
    poolctl("drain", victim, "--interval", "0.05", *pool.cli_args())
    run = poolctl("undrain", victim, "--stack", "dev", "--interval", "0.05", "--endpoint-url", pool.endpoint)
    assert run.code == 0, run.err
    calls = (stub_pulumi / "pulumi.calls").read_text().splitlines()
    assert "pulumi config rm drainedCompileMasters --stack dev" in calls
    assert not any(call.startswith("pulumi config set") for call in calls)
    assert config(stub_pulumi) is None
    assert "drainedCompileMasters = []" in run.err


def test_drain_whose_config_change_fails_changes_nothing(pool: EmulatedPool, stub_pulumi: Path) -> None:
    """Issue 13: the target used to be drained already when `pulumi config set` failed."""
    (stub_pulumi / "fail").write_text("config set\n")
    victim = pool.instance_ids[2]
    run = poolctl("drain", victim, "--stack", "dev", "--interval", "0.05", "--endpoint-url", pool.endpoint)
    one_line_error(
        run, "`pulumi config set --path drainedCompileMasters[0] 2 --stack dev` failed: error: could"
    )
    assert run.err.rstrip().endswith("; nothing changed")
    assert victim in registered(pool, 8140) & registered(pool, 8142)
    assert config(stub_pulumi) is None


def test_undrain_whose_config_change_fails_is_put_back_and_changes_nothing(
    pool: EmulatedPool, stub_pulumi: Path
) -> None:
    victim = pool.instance_ids[1]
    take_out(pool, victim)
    (stub_pulumi / "drained.json").write_text("[1, 2]")
    # Removing 1 rewrites the list: `config rm`, then the write of [2] fails; poolctl puts [1, 2] back.
    (stub_pulumi / "fail").write_text("config set --path drainedCompileMasters[0] 2\n")
    run = poolctl("undrain", victim, "--stack", "dev", "--interval", "0.05", "--endpoint-url", pool.endpoint)
    one_line_error(run, "`pulumi config set --path drainedCompileMasters[0] 2 --stack dev` failed")
    assert run.err.rstrip().endswith("; nothing changed")
    assert config(stub_pulumi) == [1, 2]
    assert victim not in registered(pool, 8140) | registered(pool, 8142)


def test_undrain_whose_config_is_left_half_written_exits_3_and_says_what_it_holds(
    pool: EmulatedPool, stub_pulumi: Path
) -> None:
    victim = pool.instance_ids[1]
    take_out(pool, victim)
    (stub_pulumi / "drained.json").write_text("[1, 2]")
    (stub_pulumi / "fail").write_text("config set\n")  # putting [1, 2] back fails too
    run = poolctl("undrain", victim, "--stack", "dev", "--interval", "0.05", "--endpoint-url", pool.endpoint)
    assert run.code == 3, run.err
    assert "Traceback" not in run.err and len(run.err.strip().splitlines()) == 1
    assert run.err.strip().endswith(
        "stopped part-way, changed: stack dev: drainedCompileMasters = [] (was [1, 2])"
    )
    assert config(stub_pulumi) is None
    assert victim not in registered(pool, 8140) | registered(pool, 8142), "never registered"


def test_drain_whose_deregistration_fails_puts_the_config_back(
    pool: EmulatedPool, stub_pulumi: Path, throttler: tuple[str, type[Throttler]]
) -> None:
    """AWS refuses the 8142 deregistration: the 8140 one and the config change are undone."""
    endpoint, handler = throttler
    handler.refuse = {"DeregisterTargets": 1}
    victim = pool.instance_ids[2]
    run = poolctl("drain", victim, "--stack", "dev", "--interval", "0.05", "--endpoint-url", endpoint)
    last = ends_in_error(run, "AWS denied the request (AccessDenied)")
    assert last.endswith(
        "; nothing changed (stack dev: drainedCompileMasters = [2] (was []), "
        f"deregistered {victim} from the 8140 target group: undone)"
    )
    assert victim in registered(pool, 8140) & registered(pool, 8142)
    assert config(stub_pulumi) is None


def test_drain_that_cannot_be_undone_exits_3_and_lists_what_changed(
    pool: EmulatedPool, stub_pulumi: Path, throttler: tuple[str, type[Throttler]]
) -> None:
    endpoint, handler = throttler
    handler.refuse = {"DeregisterTargets": 1, "RegisterTargets": 0}
    victim = pool.instance_ids[2]
    run = poolctl("drain", victim, "--stack", "dev", "--interval", "0.05", "--endpoint-url", endpoint)
    last = ends_in_error(run, "AWS denied the request (AccessDenied)", code=3)
    assert (
        "; stopped part-way, changed: stack dev: drainedCompileMasters = [2] (was []); "
        f"deregistered {victim} from the 8140 target group; undoing failed: AWS denied the request"
    ) in last
    assert victim not in registered(pool, 8140) and victim in registered(pool, 8142)
    assert config(stub_pulumi) == [2]


def test_interrupted_while_waiting_says_what_changed(
    pool: EmulatedPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(*_: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "wait_for_instance", interrupt)
    victim = pool.instance_ids[0]
    run = poolctl("drain", victim, *pool.cli_args())
    assert run.code == 3
    assert run.err.strip().splitlines()[-1] == (
        f"poolctl: interrupted; stopped part-way, changed: deregistered {victim} from the 8140 target group; "
        f"deregistered {victim} from the 8142 target group"
    )


# --- which compile masters are this pool's: its pe-lb:pool tag, never the VPC alone ---------------


OTHER_POOL = pe.pool_identity("pe-lb", "staging", "pe-lb")


def test_another_stacks_compile_master_in_the_vpc_is_not_this_pools(pool: EmulatedPool) -> None:
    other = pool.compile_master("pe-lb-0", OTHER_POOL)
    run = poolctl("status", *pool.cli_args())
    assert run.code == 0, run.out
    assert other not in run.out
    undrain = poolctl("undrain", other, *pool.cli_args())
    one_line_error(
        undrain,
        f"{other} is not a compile master of pool {POOL} (its {pe.POOL_TAG} tag is '{OTHER_POOL}'): "
        "undrain registers only the pool's own compile masters",
    )
    assert other not in registered(pool, 8140) | registered(pool, 8142)


def test_a_target_that_is_not_this_pools_is_shown_as_foreign(pool: EmulatedPool, stub_pulumi: Path) -> None:
    other = pool.compile_master("pe-lb-1", OTHER_POOL)
    for port, arn in pool.target_group_arns.items():
        pool.elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": other, "Port": port}])
    run = poolctl("status", *pool.cli_args())
    assert run.code == 1, "a target that is not the pool's own"
    row = next(line for line in run.out.splitlines() if line.startswith(other))
    assert " foreign " in row
    assert f"1 in the target groups but not compile masters of pool {POOL}" in run.out
    data = poolctl("status", "--json", *pool.cli_args()).json
    assert data["foreign"] == [other] and data["pool"] == POOL
    # Its Name tag's index is the other stack's: --stack must not write it into this stack's config.
    refused = poolctl("drain", other, "--stack", "dev", "--endpoint-url", pool.endpoint)
    one_line_error(refused, f"{other} is not a compile master of pool {POOL}")
    assert not (stub_pulumi / "drained.json").exists()
    drained = poolctl("drain", other, "--interval", "0.05", *pool.cli_args())
    assert drained.code == 0, drained.err
    assert other not in registered(pool, 8140) | registered(pool, 8142)
    assert (
        f"{other} is not a compile master of pool {POOL}: its `pulumi up` never registers it" in drained.err
    )
    assert "drainedCompileMasters" not in drained.err


def test_undrain_needs_to_know_the_pool(pool: EmulatedPool) -> None:
    victim = pool.instance_ids[0]
    assert poolctl("drain", victim, "--interval", "0.05", *pool.cli_args()).code == 0
    run = poolctl(
        "undrain", victim, "--load-balancer", pool.load_balancer_name, "--endpoint-url", pool.endpoint
    )
    one_line_error(run, "undrain needs the pool's identity: pass --pool PROJECT/STACK/COMPONENT")
    assert victim not in registered(pool, 8140)


def test_a_stack_whose_outputs_do_not_name_the_pool_says_to_run_pulumi_up(
    pool: EmulatedPool, stub_pulumi: Path
) -> None:
    (stub_pulumi / "outputs.json").write_text(json.dumps({"loadBalancerArn": pool.load_balancer_arn}))
    run = poolctl("drain", pool.instance_ids[0], "--stack", "dev", "--endpoint-url", pool.endpoint)
    one_line_error(
        run,
        "drain --stack needs the pool's identity and the stack's outputs have no compileMasterPoolTag "
        "(run `pulumi up` with this pe-lb), or pass --pool PROJECT/STACK/COMPONENT",
    )
    assert pool.instance_ids[0] in registered(pool, 8140)


def test_undrain_refuses_a_compile_master_made_before_the_pool_tag(pool: EmulatedPool) -> None:
    untagged = pool.compile_master("pe-lb-5", None)
    run = poolctl("undrain", untagged, *pool.cli_args())
    one_line_error(run, f"it has no {pe.POOL_TAG} tag; `pulumi up` tags the stack's own")


def test_without_the_pool_status_shows_only_targets_and_says_so(pool: EmulatedPool) -> None:
    out = pool.instance_ids[2]
    for port, arn in pool.target_group_arns.items():
        pool.elb.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": out, "Port": port}])
    run = poolctl("status", "--load-balancer", pool.load_balancer_name, "--endpoint-url", pool.endpoint)
    assert out not in run.out
    assert "only targets shown: without the pool's identity (--pool PROJECT/STACK/COMPONENT" in run.out


def test_the_pool_comes_from_the_stacks_outputs(pool: EmulatedPool, tmp_path: Path) -> None:
    out = pool.instance_ids[2]
    for port, arn in pool.target_group_arns.items():
        pool.elb.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": out, "Port": port}])
    pool.compile_master("pe-lb-2", OTHER_POOL)
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"loadBalancerArn": pool.load_balancer_arn, "compileMasterPoolTag": POOL}))
    run = poolctl("status", "--json", "--outputs", str(outputs), "--endpoint-url", pool.endpoint)
    assert run.code == 1
    assert run.json["outOfRotation"] == [out] and run.json["pool"] == POOL


# --- faults: no traceback, a heartbeat, JSON everywhere ------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["wait-healthy", "--timeout", "nan"], "'nan' must be a finite number of seconds above 0"),
        (["wait-healthy", "--timeout", "inf"], "'inf' must be a finite number of seconds above 0"),
        (
            ["probe", "--address", "pool.example.com", "--port", "70000"],
            "'70000' is not a TCP port (1..65535)",
        ),
        (["probe", "--address", "pool.example.com", "--port", "0"], "'0' is not a TCP port (1..65535)"),
    ],
)
def test_bad_flags_are_usage_errors_without_a_traceback(argv: list[str], message: str) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "poolctl", *argv],
        capture_output=True, text=True, check=False, cwd=PROJECT_DIR,
    )  # fmt: skip
    assert run.returncode == 2
    assert message in run.stderr
    assert "Traceback" not in run.stderr


BAD_FILES = {
    "not-utf8.json": b"\xff\xfe{}",
    "arn-number.json": b'{"loadBalancerArn": 5}',
    "arn-garbage.json": b'{"loadBalancerArn": "arn:foo"}',
    "drained-number.json": b'{"loadBalancerArn": "%s", "drainedCompileMasterIds": 5}',
    "drained-string.json": b'{"loadBalancerArn": "%s", "drainedCompileMasterIds": "i-0123456789abcdef0"}',
    "address.json": b'{"poolAddress": "pool example com"}',
    "pool-tag.json": b'{"loadBalancerArn": "%s", "compileMasterPoolTag": 7}',
    "list.json": b"[1]",
    "not-a-cert.pem": b"hello",
    "key.pem": b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
}
ARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/pe-lb/0123456789abcdef"
LB = ["--load-balancer", "pe-lb"]
PROBE = ["probe", "--address", "pool.example.com"]
IID = "i-0123456789abcdef0"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["status", "--outputs", "{dir}"], "--outputs {dir}: cannot read it (Is a directory)"),
        (["status", "--outputs", "{dir}/nope.json"], "--outputs {dir}/nope.json: no such file"),
        (["status", "--outputs", "{dir}/not-utf8.json"], "not-utf8.json: not UTF-8 text"),
        (
            ["status", "--outputs", "{dir}/arn-number.json"],
            "output loadBalancerArn: 5 is not a load balancer ARN",
        ),
        (
            ["status", "--outputs", "{dir}/arn-garbage.json"],
            "loadBalancerArn: 'arn:foo' is not a load balancer",
        ),
        (
            ["status", "--outputs", "{dir}/drained-number.json"],
            "drainedCompileMasterIds: 5 is not a list of EC2",
        ),
        (
            ["status", "--outputs", "{dir}/drained-string.json"],
            "drainedCompileMasterIds: 'i-0123456789abcdef0' is",
        ),
        (
            [*PROBE[:1], "--outputs", "{dir}/address.json"],
            "poolAddress: 'pool example com' is not a DNS name",
        ),
        (
            ["undrain", IID, "--outputs", "{dir}/pool-tag.json"],
            "output compileMasterPoolTag: 7 is not a pool identity",
        ),
        (
            ["status", "--outputs", "{dir}/list.json"],
            "list.json is not the JSON of `pulumi stack output --json`",
        ),
        (["status", "--outputs", ""], "argument --outputs: '' is empty"),
        (
            [*PROBE, "--cacert", "{dir}/missing.pem"],
            "--cacert: '{dir}/missing.pem' is not a readable file of PEM",
        ),
        (
            [*PROBE, "--cacert", "{dir}/not-a-cert.pem"],
            "not-a-cert.pem' is not a readable file of PEM certificates",
        ),
        ([*PROBE, "--cacert", "{dir}/key.pem"], "key.pem' is not a readable file of PEM certificates"),
        (
            [*PROBE, "--cacert", "{dir}"],
            "argument --cacert: '{dir}' is not a readable file of PEM certificates",
        ),
        ([*PROBE, "--cacert", ""], "argument --cacert: '' is not a file"),
        (
            ["status", *LB, "--endpoint-url", "notaurl"],
            "--endpoint-url: 'notaurl' is not an http:// or https://",
        ),
        (["status", *LB, "--endpoint-url", ""], "argument --endpoint-url: '' is not an http://"),
        (["status", *LB, "--endpoint-url", "http://x:99999"], "--endpoint-url: 'http://x:99999' is not"),
        (["status", *LB, "--endpoint-url", "ftp://x"], "--endpoint-url: 'ftp://x' is not an http://"),
        (
            ["status", "--load-balancer", "arn:foo"],
            "--load-balancer: 'arn:foo' is neither a load balancer name",
        ),
        (["status", "--load-balancer", ""], "argument --load-balancer: '' is neither"),
        (["status", "--load-balancer", "a b"], "argument --load-balancer: 'a b' is neither"),
        (["status", "--load-balancer", "x" * 33], "is neither a load balancer name (1 to 32 letters"),
        (["status", *LB, "--region", ""], "argument --region: '' is not an AWS region name"),
        (["status", *LB, "--region", "eu west 1"], "argument --region: 'eu west 1' is not an AWS region"),
        (["status", *LB, "--profile", ""], "argument --profile: '' is not an AWS profile name"),
        (["status", *LB, "--role-arn", ""], "argument --role-arn: '' is not an IAM role ARN"),
        (["status", *LB, "--role-arn", "pe-lb-deployer"], "--role-arn: 'pe-lb-deployer' is not an IAM role"),
        (["status", "--stack", ""], "argument --stack: '' is not a Pulumi stack name"),
        (["status", "--stack", "dev;rm -rf"], "argument --stack: 'dev;rm -rf' is not a Pulumi stack"),
        (["status", *LB, "--pool", ""], "argument --pool: '' is not a pool identity"),
        (["status", *LB, "--pool", "pe-lb"], "argument --pool: 'pe-lb' is not a pool identity"),
        (["status", *LB, "--pool", "pe-lb/dev/"], "argument --pool: 'pe-lb/dev/' is not a pool identity"),
        (["probe", "--address", ""], "argument --address: '' is not a DNS name or an IP address"),
        (["probe", "--address", "pool\r\nX: 1"], "--address: 'pool\\r\\nX: 1' is not a DNS name"),
        (["probe", "--address", "a..b"], "argument --address: 'a..b' is not a DNS name"),
        (["probe", "--address", "a" * 64 + ".com"], "is not a DNS name or an IP address"),
        ([*PROBE, "--connect-to", ""], "argument --connect-to: '' is not a DNS name"),
        ([*PROBE, "--connect-to", "ü" * 70], "argument --connect-to: '" + "ü" * 70 + "' is not a DNS name"),
        ([*PROBE, "--port", ""], "argument --port: '' is not a TCP port (1..65535)"),
        ([*PROBE, "--port", "\u0663"], "argument --port: '\u0663' is not a TCP port"),
        ([*PROBE, "--port", "70000"], "argument --port: '70000' is not a TCP port (1..65535)"),
        (["wait-healthy", *LB, "--timeout", ""], "argument --timeout: '' is not a number of seconds"),
        (["wait-healthy", *LB, "--timeout", "-1"], "argument --timeout: '-1' must be a finite number"),
        (["wait-healthy", *LB, "--interval", "0"], "argument --interval: '0' must be a finite number"),
        (["drain", f"{IID}\n", *LB], "INSTANCE_ID 'i-0123456789abcdef0\\n' is not an EC2 instance id"),
        (["undrain", f"{IID}\n", *LB], "INSTANCE_ID 'i-0123456789abcdef0\\n' is not an EC2 instance id"),
        (["drain", "", *LB], "INSTANCE_ID '' is not an EC2 instance id"),
        (["status", "--json=yes", *LB], "argument --json: ignored explicit argument 'yes'"),
        (["drain", IID, *LB, "--force=1"], "argument --force: ignored explicit argument '1'"),
        (["launch"], "argument COMMAND: invalid choice: 'launch'"),
    ],
)
def test_every_flag_with_a_bad_value_is_one_line_naming_it(
    argv: list[str], message: str, tmp_path: Path
) -> None:
    """Empty, garbage and wrong-type values for each flag: exit 2, one line, no traceback."""
    for name, content in BAD_FILES.items():
        (tmp_path / name).write_bytes(content.replace(b"%s", ARN.encode()))
    run = poolctl(*(arg.replace("{dir}", str(tmp_path)) for arg in argv))
    one_line_error(run, message.replace("{dir}", str(tmp_path)))


def test_a_reader_that_goes_away_gets_no_traceback(pool: EmulatedPool) -> None:
    command = [
        sys.executable,
        "-m",
        "poolctl",
        "status",
        "--json",
        *pool.cli_args(),
    ]
    shell = f"{shlex.join(command)} | head -c 1"
    run = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, check=False, cwd=PROJECT_DIR)
    assert run.stdout == "{"
    assert "Traceback" not in run.stderr and "BrokenPipe" not in run.stderr


def test_waiting_prints_a_heartbeat_at_least_every_30_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(time, "sleep", lambda seconds: clock.__setitem__(0, clock[0] + seconds))
    args = cli.parser().parse_args(
        ["wait-healthy", "--load-balancer", "x", "--timeout", "100", "--interval", "7"]
    )
    progress = io.StringIO()
    context = cli.Context(args, io.StringIO(), progress)
    done, _, _ = cli.wait_for(context, lambda: {8140: HEALTHY_NOT}, lambda _: False, "never")
    assert not done
    stamps = [
        float(line.split("]")[0].strip(" [s")) for line in progress.getvalue().splitlines() if "[" in line
    ]
    assert stamps[0] == 0 and all(b - a <= 30 for a, b in itertools.pairwise(stamps))
    assert len(stamps) >= 4, "the same state, said again while waiting"


HEALTHY_NOT = TargetHealth("unhealthy", "Target.Timeout")


def test_every_command_speaks_json_in_one_key_style(pool: EmulatedPool) -> None:
    victim = pool.instance_ids[0]
    for argv in (["status"], ["wait-healthy"], ["drain", victim], ["undrain", victim]):
        run = (
            poolctl(*argv, "--json", "--interval", "0.05", *pool.cli_args())
            if argv != ["status"]
            else poolctl(*argv, "--json", *pool.cli_args())
        )
        assert run.code == 0, (argv, run.err)
        keys = _all_keys(run.json)
        assert keys and all("_" not in key for key in keys), (argv, sorted(k for k in keys if "_" in k))
    drained = poolctl("drain", victim, "--json", "--interval", "0.05", *pool.cli_args()).json
    assert drained["instanceId"] == victim and drained["done"] is True
    assert set(drained["health"]) == {"8140", "8142"}


def _all_keys(data: Any) -> set[str]:
    if isinstance(data, dict):
        return {key for key in data if not key.isdigit()} | {
            k for value in data.values() for k in _all_keys(value)
        }
    if isinstance(data, list):
        return {k for value in data for k in _all_keys(value)}
    return set()


def test_role_arn_calls_are_made_with_the_roles_credentials(pool: EmulatedPool) -> None:
    args = cli.parser().parse_args(
        ["status", "--load-balancer", pool.load_balancer_arn, "--endpoint-url", pool.endpoint,
         "--role-arn", "arn:aws:iam::123456789012:role/pe-lb-deployer"]
    )  # fmt: skip
    credentials = cli.session(args, pool.load_balancer_arn).get_credentials()
    assert credentials is not None
    assert credentials.access_key != "testing" and credentials.token, "temporary credentials from AssumeRole"
    assert (
        cli.session(cli.parser().parse_args(["status", "--load-balancer", "x"]), "x")
        .get_credentials()
        .access_key
        == "testing"
    )


def test_a_stack_command_reads_the_stacks_outputs_once(pool: EmulatedPool, stub_pulumi: Path) -> None:
    run = poolctl("status", "--stack", "dev", "--endpoint-url", pool.endpoint)
    assert run.code == 0, run.err
    calls = (stub_pulumi / "pulumi.calls").read_text().splitlines()
    assert calls == ["pulumi stack output --json --stack dev"]


# --- alarms ------------------------------------------------------------------------------------


def put_alarm(pool: EmulatedPool, name: str, state: str | None) -> None:
    """An alarm as PoolAlarms makes one (put_metric_alarm), set to ``state`` (set_alarm_state)."""
    cloudwatch = boto3.client("cloudwatch", region_name=REGION, endpoint_url=pool.endpoint)
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/NetworkELB",
        MetricName="HealthyHostCount",
        Dimensions=[{"Name": "TargetGroup", "Value": "targetgroup/pe-lb-8140/abc"}],
        Statistic="Minimum",
        Period=60,
        EvaluationPeriods=2,
        Threshold=2,
        ComparisonOperator="LessThanThreshold",
    )
    if state is not None:
        cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason=f"{name} is {state}")


def test_status_shows_the_pools_alarms_in_alarm_and_exits_1(pool: EmulatedPool) -> None:
    firing = f"{pe.alarm_name_prefix(POOL)}port 8140: too few healthy compile masters"
    put_alarm(pool, firing, "ALARM")
    put_alarm(pool, f"{pe.alarm_name_prefix(POOL)}port 8142: a compile master stays unhealthy", "OK")
    put_alarm(
        pool,
        f"{pe.alarm_name_prefix('pe-lb/other/pe-lb')}port 8140: too few healthy compile masters",
        "ALARM",
    )
    put_alarm(pool, f"{POOL}x port 8140", "ALARM")  # another pool whose name begins like this one's
    run = poolctl("status", *pool.cli_args())
    assert run.code == 1, "healthy targets, but an alarm of the pool fires"
    alarm_lines = [line for line in run.out.splitlines() if line.startswith("ALARM")]
    assert len(alarm_lines) == 1
    assert firing in alarm_lines[0] and f"({firing} is ALARM)" in alarm_lines[0]
    data = poolctl("status", "--json", *pool.cli_args()).json
    assert [alarm["name"] for alarm in data["alarms"]] == [firing]
    assert data["alarms"][0]["reason"] == f"{firing} is ALARM"


def test_status_without_alarms_in_alarm_exits_0(pool: EmulatedPool) -> None:
    put_alarm(pool, f"{pe.alarm_name_prefix(POOL)}port 8140: too few healthy compile masters", "OK")
    run = poolctl("status", *pool.cli_args())
    assert run.code == 0, run.out
    assert "ALARM" not in run.out
    assert poolctl("status", "--json", *pool.cli_args()).json["alarms"] == []


def test_status_says_when_the_alarms_cannot_be_read(
    pool: EmulatedPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AccessDenied from CloudWatch (botocore's Stubber: moto has no IAM enforcement here): the pool
    is still shown, with one line saying what is missing."""
    original = Pool.firing_alarms

    def denied(self: Any, identity: str) -> Any:
        stubber = Stubber(self.cloudwatch)
        stubber.add_client_error("describe_alarms", service_error_code="AccessDenied", http_status_code=403)
        with stubber:
            return original(self, identity)

    monkeypatch.setattr(Pool, "firing_alarms", denied)
    run = poolctl("status", *pool.cli_args())
    assert run.code == 0, run.err
    assert "alarms not read (AccessDenied): allow cloudwatch:DescribeAlarms" in run.out
