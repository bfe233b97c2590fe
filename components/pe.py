"""What Puppet Enterprise fixes for a load-balanced compile-master pool.

The one place that knows the ports, the status path and the timing the PE page
("Using load balancers with compile masters") asks for. Components, the stack
config, poolctl and the policy pack all read these names.
"""

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
"""Answers an unauthenticated GET with HTTP 200 while the services are healthy."""

PCP_BROKER_IDLE_SECONDS = 15 * 60
"""PCP brokers drop a connection idle this long; the load balancer must not drop it sooner."""

NLB_IDLE_TIMEOUT_RANGE = (60, 6000)
"""What an NLB TCP listener accepts for tcp_idle_timeout_seconds."""
NLB_IDLE_TIMEOUT_WHY = "the NLB's TCP idle timeout range"

PCP_IDLE_TIMEOUT_RANGE = (PCP_BROKER_IDLE_SECONDS, NLB_IDLE_TIMEOUT_RANGE[1])
"""What the 8142 listener may use: never shorter than the brokers' own idle limit."""
PCP_IDLE_TIMEOUT_WHY = "PCP brokers close idle connections after 900 s; the NLB must not close them sooner"

DEFAULT_PCP_IDLE_TIMEOUT_SECONDS = 1200
"""15 minutes plus a margin of 5, so the broker, not the load balancer, ends idle sessions."""

DEFAULT_AGENT_IDLE_TIMEOUT_SECONDS = 600
"""Long enough for a slow catalog compilation, during which the connection carries no bytes."""

COMPILER_AUTH_ROLE = "pe_compiler"
"""pp_auth_role that makes PE classify a node as a compiler."""

ROLE_TAG = "pe-lb:role"
COMPILE_MASTER_ROLE = "compile-master"
"""Tag on compile master instances, so tools and policies can tell them from other instances."""

PE_MASTER_NODE_GROUP = "PE Master"
PE_REPO_POOL_ADDRESS_PARAMETER = "compile_master_pool_address"
PE_REPO_SET_ACTION = "pe-repo-set"
"""The primary script's action that sets pe_repo::compile_master_pool_address (PeRepoPoolAddress)."""


@dataclass(frozen=True)
class HealthCheckTiming:
    """NLB health-check timing; NLB allows an interval of 5..300 s and thresholds of 2..10."""

    interval_seconds: int = 10
    timeout_seconds: int = 5
    healthy_threshold: int = 3
    unhealthy_threshold: int = 2

    @property
    def failure_detection_seconds(self) -> int:
        """How long a dead compile master keeps receiving new connections."""
        return self.interval_seconds * self.unhealthy_threshold

    @property
    def recovery_seconds(self) -> int:
        """How long a recovered compile master waits before it is back in rotation."""
        return self.interval_seconds * self.healthy_threshold


HEALTH_CHECK_TIMING = HealthCheckTiming()
"""Out of rotation in 20 s, back in 30 s."""

HEALTH_CHECK_PROTOCOLS = ("HTTPS", "TCP")
"""HTTPS checks the status endpoint (preferred); TCP only checks that 8140 listens."""

PUPPETSERVER_DEREGISTRATION_DELAY_SECONDS = 300
"""Lets agent runs in flight (a catalog compilation, a report upload) finish on a draining compile master."""

PCP_DEREGISTRATION_DELAY_SECONDS = 30
"""PXP agents reconnect to another broker at once; keeping their sockets on a leaving broker helps nobody."""


def agent_install_command(pool_address: str) -> str:
    """The one-liner PE documents for installing an agent, pointed at the pool."""
    return (
        f"curl --insecure https://{pool_address}:{PUPPETSERVER_PORT}"
        "/packages/current/install.bash | sudo bash"
    )


PE_INFRASTRUCTURE_AGENT_NODE_GROUP = "PE Infrastructure Agent"
"""Infrastructure nodes are pinned here so they talk to the primary directly, never through the pool."""

PLATFORM_EXTENSION_OID = "1.3.6.1.4.1.34380.1.2.6099.1"
"""A private certificate extension (Puppet's ppPrivCertExt arc) in which a compile master states its
platform (e.g. el-9-x86_64); the primary checks it against its own before signing."""
