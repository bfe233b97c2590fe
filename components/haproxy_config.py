"""haproxy.cfg for the least-connections tier, rendered from components/scripts/haproxy.cfg.

The timing and paths come from pe.py, as the NLB's target groups take them, so HAProxy ejects
and restores a compile master when the NLB would.
"""

import re
from dataclasses import asdict, dataclass, field
from string import Template

from . import pe
from .scripts import read_script

CONFIG_TEMPLATE = "haproxy.cfg"
BALANCE_ALGORITHMS = ("leastconn", "random(1)", "roundrobin", "random(2)")
"""leastconn is the tier's; the others are there to measure against (benchmarks/): random(1) picks one
server at random as an NLB's flow hash does (in HAProxy 2.6 `random` alone means random(2))."""


@dataclass(frozen=True)
class HaproxySettings:
    discovery_name: str
    """DNS name whose A records are the compile masters in rotation."""
    resolver: str
    """The DNS server that answers it, host:port (the VPC resolver, 169.254.169.253:53)."""
    ca_file: str
    """The PE CA bundle the health checks verify compile masters' certificates against."""
    balance: str = "leastconn"
    bind_address: str = "0.0.0.0"
    puppetserver_port: int = pe.PUPPETSERVER_PORT
    pcp_broker_port: int = pe.PCP_BROKER_PORT
    compile_master_puppetserver_port: int = pe.PUPPETSERVER_PORT
    compile_master_pcp_broker_port: int = pe.PCP_BROKER_PORT
    max_compile_masters: int = pe.MAX_COMPILE_MASTERS
    """Server slots per backend (server-template): as many as a pool may have compile masters."""
    agent_idle_timeout_seconds: int = pe.DEFAULT_AGENT_IDLE_TIMEOUT_SECONDS
    pcp_idle_timeout_seconds: int = pe.DEFAULT_PCP_IDLE_TIMEOUT_SECONDS
    timing: pe.HealthCheckTiming = field(default_factory=pe.HealthCheckTiming)
    status_path: str = pe.STATUS_PATH
    pcp_status_path: str = pe.PCP_STATUS_PATH
    dns_hold_seconds: int = 10
    """How long an answer is kept: a compile master leaves the records, then rotation, within it."""
    stats_address: str = "127.0.0.1"
    stats_port: int = 8404
    stats_socket: str = "/run/haproxy/admin.sock"
    log_target: str = "/dev/log"
    max_connections: int = 100000
    """Every PXP agent holds one 8142 connection, every agent run one on 8140: room for a large
    pool (HAProxy needs two open files per connection; its systemd unit allows them)."""


def render(settings: HaproxySettings) -> str:
    """The config file's text; every value is checked, so nothing can add a line to it."""
    if settings.balance not in BALANCE_ALGORITHMS:
        raise ValueError(f"balance={settings.balance!r} must be one of {', '.join(BALANCE_ALGORITHMS)}")
    if settings.pcp_idle_timeout_seconds < pe.PCP_BROKER_IDLE_SECONDS:
        raise ValueError(
            f"pcp_idle_timeout_seconds={settings.pcp_idle_timeout_seconds} must be at least "
            f"{pe.PCP_BROKER_IDLE_SECONDS} ({pe.PCP_IDLE_TIMEOUT_WHY})"
        )
    values = {key: value for key, value in asdict(settings).items() if key != "timing"}
    values.update(
        check_interval_seconds=settings.timing.interval_seconds,
        check_timeout_seconds=settings.timing.timeout_seconds,
        healthy_threshold=settings.timing.healthy_threshold,
        unhealthy_threshold=settings.timing.unhealthy_threshold,
    )
    for key, value in values.items():
        if not re.fullmatch(r"[A-Za-z0-9_.:/()-]+", str(value)):
            raise ValueError(
                f"{key}={value!r} cannot go into haproxy.cfg (letters, digits, _ . : / ( ) - only)"
            )
    return Template(read_script(CONFIG_TEMPLATE)).substitute(values)
