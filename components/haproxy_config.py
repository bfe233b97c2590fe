"""haproxy.cfg for the least-connections tier, rendered from components/scripts/haproxy.cfg.

The timing and paths come from pe.py, as the NLB's target groups take them, so HAProxy ejects
and restores a compile master when the NLB would.
"""

import re
import shlex
from dataclasses import asdict, dataclass, field, replace
from string import Template
from typing import Any

from . import pe
from .scripts import read_script

CONFIG_TEMPLATE = "haproxy.cfg"
BOOTSTRAP_SCRIPT = "haproxy_bootstrap.sh"
HAPROXY_CA_FILE = "/etc/haproxy/pe-ca.pem"
"""Where an HAProxy instance keeps the PE CA bundle (the bootstrap writes it; the checks read it)."""
HAPROXY_STATS_SOCKET = "/var/lib/haproxy/admin.sock"
"""An HAProxy instance's admin socket: /var/lib/haproxy is made by Debian's and RHEL's packages alike,
survives a reboot (/run/haproxy is made at boot on Debian only), and RHEL's SELinux policy lets
HAProxy make a socket there (its own config keeps one there)."""
USER_DATA_MAX_BYTES = 16384
"""EC2's limit on user data, counted raw, before the base64 encoding the API carries it in (EC2 user
guide, "Work with instance user data")."""
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
    dns_hold_seconds: int = pe.DISCOVERY_TTL_SECONDS
    """How long an answer is kept: a compile master leaves the records, then rotation, within it."""
    stats_address: str = "127.0.0.1"
    stats_port: int = pe.HAPROXY_STATS_PORT
    stats_socket: str = "/run/haproxy/admin.sock"
    log_target: str = "/dev/log"
    max_connections: int = 100000
    """Every PXP agent holds one 8142 connection, every agent run one on 8140: room for a large
    pool (HAProxy needs two open files per connection; its systemd unit allows them)."""
    run_as: str = "haproxy"
    """User and group HAProxy runs as once its ports are bound (Debian's and RHEL's packages make
    haproxy; a test that starts HAProxy itself passes its own user)."""


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


def instance_settings(discovery_name: str, **overrides: Any) -> HaproxySettings:
    """The settings of an EC2 instance of the tier: the VPC resolver, the CA where user_data's script
    writes it, the admin socket in HAPROXY_STATS_SOCKET, and the stats page on every address at
    pe.HAPROXY_STATS_PORT (private: the security group admits admins only, and the NLB never
    forwards it).

    ``overrides`` are other HaproxySettings fields, as the pool's config sets them: ``timing``
    (pe.HealthCheckTiming), ``agent_idle_timeout_seconds``, ``pcp_idle_timeout_seconds``,
    ``status_path``, ``pcp_status_path``; an unknown name is a TypeError.
    """
    settings = HaproxySettings(
        discovery_name=discovery_name,
        resolver=pe.VPC_RESOLVER,
        ca_file=HAPROXY_CA_FILE,
        stats_address="0.0.0.0",
        stats_port=pe.HAPROXY_STATS_PORT,
        stats_socket=HAPROXY_STATS_SOCKET,
    )
    return replace(settings, **overrides)


def user_data(settings: HaproxySettings, ca_certificate: str) -> str:
    """User data of an HAProxy instance: components/scripts/haproxy_bootstrap.sh with its parameters
    (the rendered haproxy.cfg, the PE CA bundle, the admin socket's path) set in front of it."""
    if "-----BEGIN CERTIFICATE-----" not in ca_certificate:
        raise ValueError(
            "ca_certificate must be the PE CA bundle in PEM (-----BEGIN CERTIFICATE-----): HAProxy's "
            f"health checks verify compile masters against it; got {ca_certificate[:40]!r}"
        )
    config = render(settings)
    parameters = {
        # The script ends each file with one newline.
        "PE_LB_HAPROXY_CFG": config.rstrip("\n"),
        "PE_CA_CERTIFICATE": ca_certificate.strip(),
        "PE_LB_HAPROXY_STATS_SOCKET": settings.stats_socket,
    }
    shebang, body = read_script(BOOTSTRAP_SCRIPT).split("\n", 1)
    assignments = "".join(f"export {key}={shlex.quote(value)}\n" for key, value in parameters.items())
    text = f"{shebang}\n# Parameters rendered by pe-lb.\n{assignments}{body}"
    size = len(text.encode())
    if size > USER_DATA_MAX_BYTES:
        ca_bytes = len(parameters["PE_CA_CERTIFICATE"].encode())
        config_bytes = len(config.encode())
        raise ValueError(
            f"the HAProxy instances' user data would be {size} bytes, over EC2's limit of "
            f"{USER_DATA_MAX_BYTES} (counted before base64): the PE CA bundle takes {ca_bytes}, "
            f"haproxy.cfg {config_bytes}, the bootstrap script and the rest "
            f"{size - ca_bytes - config_bytes}. "
            f"The CA bundle is what varies: it must shrink by {size - USER_DATA_MAX_BYTES} bytes or more"
        )
    return text
