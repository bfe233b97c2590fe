"""What Puppet Enterprise fixes for a load-balanced compile-master pool.

The one place that knows the ports, the status path and the timing the PE page
("Using load balancers with compile masters") asks for. Components, the stack
config, poolctl and the policy pack all read these names.
"""

import hashlib
import re
from dataclasses import dataclass

PUPPETSERVER_PORT = 8140
"""Agent <-> puppetserver (catalogs, reports, certificates, package repo)."""

PCP_BROKER_PORT = 8142
"""PXP agents' long-lived websocket connections to the PCP brokers."""

POOL_PORTS = (PUPPETSERVER_PORT, PCP_BROKER_PORT)
"""Every port the load balancer forwards to the compile masters."""

CLASSIFIER_PORT = 4433
"""Node classifier API on the primary."""

SSH_PORT = 22

STATUS_PATH = "/status/v1/simple"
"""Answers an unauthenticated GET on 8140 with HTTP 200 while every service there is running
(puppetserver and, on a compiler, the PCP broker): the 8140 target group's check."""

PCP_STATUS_PATH = "/status/v1/simple/broker-service"
"""The PCP broker's own status on 8140 (pcp-broker registers as broker-service): the 8142 group's
check. It turns 503 when the broker has lost the orchestrator, without taking puppetserver's
8140 out of rotation as the aggregate path would."""

PCP_BROKER_IDLE_SECONDS = 15 * 60
"""The longest a PCP broker keeps an idle connection: 15 minutes in older PE (the PE page on load
balancers), 6 minutes since pcp-broker lowered its default in 2020 (PE 2021.7 documents
`timeout tunnel 6m`). The 8142 listener's idle timeout must not be shorter than the broker's
own, so 900 s is the floor: safe for both."""

NLB_IDLE_TIMEOUT_RANGE = (60, 6000)
"""What an NLB TCP listener accepts for tcp_idle_timeout_seconds."""
NLB_IDLE_TIMEOUT_WHY = "the NLB's TCP idle timeout range"

PCP_IDLE_TIMEOUT_RANGE = (PCP_BROKER_IDLE_SECONDS, NLB_IDLE_TIMEOUT_RANGE[1])
"""What the 8142 listener may use: never shorter than the brokers' own idle limit."""
PCP_IDLE_TIMEOUT_WHY = (
    "PCP brokers close idle connections after 15 min in older PE (6 min since 2020); "
    "the NLB must not close them sooner"
)

DEFAULT_PCP_IDLE_TIMEOUT_SECONDS = 1200
"""The 15-minute floor plus a margin of 5, so the broker, not the load balancer, ends idle sessions."""

DEFAULT_AGENT_IDLE_TIMEOUT_SECONDS = 600
"""Long enough for a slow catalog compilation, during which the connection carries no bytes."""

MAX_COMPILE_MASTERS = 500
"""The most compile masters one pool holds (compileMasterCount)."""

COMPILER_AUTH_ROLE = "pe_compiler"
"""pp_auth_role that makes PE classify a node as a compiler."""

ROLE_TAG = "pe-lb:role"
COMPILE_MASTER_ROLE = "compile-master"
"""Tag on compile master instances, so tools and policies can tell them from other instances."""

POOL_TAG = "pe-lb:pool"
"""Tag naming the pool a compile master (or the NLB) belongs to (pool_identity): the role tag and
the VPC cannot tell one pe-lb stack's compile masters from another's in the same VPC, so poolctl
lists, and registers, only instances carrying its own pool's value; a preview finds the stack's
own NLB by it."""


def alarm_name_prefix(pool: str) -> str:
    """How every CloudWatch alarm of a pool (PoolAlarms) begins: its pool identity, then a space."""
    return f"{pool} "


def pool_identity(project: str, stack: str, component: str) -> str:
    """The value of POOL_TAG: ``<pulumi project>/<stack>/<CompileMasterPool's name>``."""
    return f"{project}/{stack}/{component}"


PE_MASTER_NODE_GROUP = "PE Master"
PE_REPO_POOL_ADDRESS_PARAMETER = "compile_master_pool_address"
PE_REPO_ACTION = "pe-repo"
PE_REPO_SET_ACTION = f"{PE_REPO_ACTION}-set"
"""The primary script's action that sets pe_repo::compile_master_pool_address (PeRepoPoolAddress)."""
PE_AGENT_ACTION = "agent"
"""The primary script's agent-set/agent-unset: PE Agent's server lists at the pool (PeAgentPoolAddress)."""

COMPILE_MASTER_RUN_WAIT_SECONDS = 40 * 60
"""How long pe_repo waits for the compile masters' own next Puppet runs: PE's default
runinterval (30 min) plus a margin. It cannot start runs on them."""


HEALTH_CHECK_INTERVAL_RANGE = (5, 300)
HEALTH_CHECK_THRESHOLD_RANGE = (2, 10)
"""What an NLB target group accepts for the health-check interval and the two thresholds."""
HEALTH_CHECK_MAX_TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class HealthCheckTiming:
    """NLB health-check timing; NLB allows an interval of 5..300 s and thresholds of 2..10."""

    interval_seconds: int = 10
    timeout_seconds: int = 5
    healthy_threshold: int = 3
    unhealthy_threshold: int = 2

    @classmethod
    def every(
        cls, interval_seconds: int, healthy_threshold: int, unhealthy_threshold: int
    ) -> "HealthCheckTiming":
        """Checks every ``interval_seconds``; each answer may take 5 s, or less than the interval."""
        timeout = min(HEALTH_CHECK_MAX_TIMEOUT_SECONDS, interval_seconds - 1)
        return cls(interval_seconds, timeout, healthy_threshold, unhealthy_threshold)

    @property
    def failure_detection_seconds(self) -> int:
        """How long a dead compile master keeps receiving new connections."""
        return self.interval_seconds * self.unhealthy_threshold

    @property
    def recovery_seconds(self) -> int:
        """How long a recovered compile master waits before it is back in rotation."""
        return self.interval_seconds * self.healthy_threshold


HEALTH_CHECK_PROTOCOLS = ("HTTPS", "TCP")
"""HTTPS checks the status endpoint (preferred); TCP only checks that 8140 listens."""

PUPPETSERVER_DEREGISTRATION_DELAY_SECONDS = 300
"""Lets agent runs in flight (a catalog compilation, a report upload) finish on a draining compile master."""

PCP_DEREGISTRATION_DELAY_SECONDS = 30
"""PXP agents reconnect to another broker at once; keeping their sockets on a leaving broker helps nobody."""


INSTALL_SCRIPT_PATH = "/packages/current/install.bash"
"""The agent install script pe_repo serves on 8140; it names the server new agents will use."""


def install_script_names(text: str, address: str) -> bool:
    """Whether an install script names ``address`` as its server (not as part of a longer name).

    The primary script has the same check (pool_settings.names_address): it runs alone on the primary.
    """
    return re.search(r"(?<![\w.-])" + re.escape(address) + r"(?![\w.-])", text, re.IGNORECASE) is not None


def agent_install_command(pool_address: str) -> str:
    """The one-liner PE documents for installing an agent, pointed at the pool."""
    return f"curl --insecure https://{pool_address}:{PUPPETSERVER_PORT}{INSTALL_SCRIPT_PATH} | sudo bash"


PE_INFRASTRUCTURE_AGENT_NODE_GROUP = "PE Infrastructure Agent"
"""Infrastructure nodes are pinned here so they talk to the primary directly, never through the pool."""

PLATFORM_EXTENSION_OID = "1.3.6.1.4.1.34380.1.2.6099.1"
"""A private certificate extension (Puppet's ppPrivCertExt arc) in which a compile master states its
platform (e.g. el-9-x86_64); the primary checks it against its own before signing."""

INSTANCE_IDENTITY_OID = "1.3.6.1.4.1.34380.1.2.6099.2"
"""The CSR attribute in which a compile master's bootstrap carries its EC2 identity document with
AWS's PKCS#7 signature: the primary signs only a request proven to come from that instance."""


def instance_certname(instance_arn: str) -> str:
    """A compile master's certname: its instance's resource name (the primary script derives the same).

    ``i-0123456789abcdef0.eu-west-1.compute.internal``, or ``….ec2.internal`` in us-east-1:
    one source, the instance id and region, on both sides.
    """
    match = re.fullmatch(r"arn:aws[a-z-]*:ec2:([a-z0-9-]+):\d{12}:instance/(i-[0-9a-f]+)", instance_arn)
    if not match:
        raise ValueError(f"{instance_arn!r} is not an EC2 instance ARN")
    region, instance_id = match.groups()
    domain = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    return f"{instance_id}.{domain}"


@dataclass(frozen=True)
class AlarmTiming:
    """How long CloudWatch waits before an alarm about the pool fires (periods of one minute).

    EC2 publishes status checks every minute; the NLB publishes target health every minute.
    """

    period_seconds: int = 60
    system_check_minutes: int = 2
    """A failed system status check (the host: power, network, hardware) for this long recovers the
    instance on new hardware: same instance id, private IP, volumes, so the same certname."""
    instance_check_minutes: int = 3
    """A failed instance status check (the OS: kernel, memory, network config) for this long reboots it."""
    below_floor_minutes: int = 2
    """Fewer healthy compile masters than the floor for this long pages: capacity is short now."""


DEFAULT_UNHEALTHY_TARGET_MINUTES = 5
"""A compile master out of rotation this long is not a restart (puppetserver starts in 1-3
minutes): someone should look."""
UNHEALTHY_TARGET_MINUTES_RANGE = (1, 60)


@dataclass(frozen=True)
class CompilerSizing:
    """PE's published figures for sizing compile masters (the figures `poolctl size` uses).

    PE's hardware guidance: a compile master serves roughly 1,500 to 3,000 agents at the default
    30-minute run interval; puppetserver runs about 0.75 JRuby instances per CPU
    (max-active-instances), each wanting about 512 MB of JVM heap.
    """

    agents_low: int = 1500
    agents_high: int = 3000
    run_interval_minutes: int = 30
    reference_cpus: int = 4
    """The compile master those agent figures are for: PE's minimum of 4 CPUs."""
    jrubies_per_cpu: float = 0.75
    jruby_heap_mb: int = 512


INSTANCE_SIZES = (("m6i.xlarge", 4, 16), ("m6i.2xlarge", 8, 32), ("m6i.4xlarge", 16, 64))
"""Instance types `poolctl size` picks from: name, vCPUs, GiB (the default first)."""


BALANCING_MODES = ("flow-hash", "least-connections")
"""How the pool spreads agents (config `balancing`): the NLB's flow hash straight to the compile
masters, or an HAProxy tier behind the NLB balancing by least connections, as the PE page recommends."""
FLOW_HASH, LEAST_CONNECTIONS = BALANCING_MODES

HAPROXY_ROLE = "haproxy"
"""ROLE_TAG value of the least-connections tier's HAProxy instances (POOL_TAG as the pool's)."""

HAPROXY_STATS_PORT = 8404
"""HAProxy's stats page (CSV at /;csv) on each HAProxy instance's private address: admitted from
adminCidrs only, never behind the NLB."""

HAPROXY_PUPPETSERVER_BACKEND = "compile_masters_puppetserver"
HAPROXY_PCP_BROKER_BACKEND = "compile_masters_pcp_broker"
"""The rendered haproxy.cfg's backends, one per pool port."""

VPC_RESOLVER = "169.254.169.253:53"
"""The Amazon-provided DNS server every VPC instance can ask: it answers the pool's private zone."""

DISCOVERY_RECORD_LABEL = "compile-masters"
"""The discovery record's first label: one A record per compile master in rotation."""

DISCOVERY_TTL_SECONDS = 10
"""TTL of the discovery record, and how long HAProxy holds an answer: a drained compile master
leaves rotation within it."""


def discovery_zone_name(pool: str) -> str:
    """The private hosted zone of a pool's discovery record: one per pool (POOL_TAG value), so two
    pools in one VPC never share a name, and a valid DNS name whatever the pool is called."""
    digest = hashlib.sha256(pool.encode()).hexdigest()[:16]
    return f"pool-{digest}.pe-lb.internal"


def discovery_name(pool: str) -> str:
    """The name HAProxy resolves for a pool's compile masters (server-template)."""
    return f"{DISCOVERY_RECORD_LABEL}.{discovery_zone_name(pool)}"
