"""Reusable Pulumi components for a PE compile-master pool behind an AWS NLB.

    from pe_lb import PeCompilerPool          # the whole pool, wired in the safe order
    from pe_lb import CompileMasterPool, PuppetLoadBalancer, ...   # its parts, for your own wiring

(``components`` inside this project's own folder.) The components load on first use, so
``pe_lb.pe`` (ports, status paths, timing) imports without the provider SDKs: the policy
pack and poolctl use it so.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .compile_master_pool import CompileMasterPool, CompileMasterPoolArgs
    from .compiler_pool import PeCompilerPool, PeCompilerPoolArgs
    from .haproxy_tier import HaproxyTier, HaproxyTierArgs
    from .load_balancer import PuppetLoadBalancer, PuppetLoadBalancerArgs
    from .pe_agent import PeAgentPoolAddress, PeAgentPoolAddressArgs
    from .pe_repo import PeRepoPoolAddress, PeRepoPoolAddressArgs
    from .pool_alarms import PoolAlarms, PoolAlarmsArgs
    from .pool_dashboard import PoolDashboard, PoolDashboardArgs
    from .pool_dns import PoolDnsNames, PoolDnsNamesArgs
    from .pool_health_gate import PoolHealthGate, PoolHealthGateArgs
    from .primary import PrimaryAccessArgs

_EXPORTS = {
    "CompileMasterPool": "compile_master_pool",
    "CompileMasterPoolArgs": "compile_master_pool",
    "PeCompilerPool": "compiler_pool",
    "PeCompilerPoolArgs": "compiler_pool",
    "HaproxyTier": "haproxy_tier",
    "HaproxyTierArgs": "haproxy_tier",
    "PeAgentPoolAddress": "pe_agent",
    "PeAgentPoolAddressArgs": "pe_agent",
    "PeRepoPoolAddress": "pe_repo",
    "PeRepoPoolAddressArgs": "pe_repo",
    "PoolAlarms": "pool_alarms",
    "PoolAlarmsArgs": "pool_alarms",
    "PoolDashboard": "pool_dashboard",
    "PoolDashboardArgs": "pool_dashboard",
    "PoolDnsNames": "pool_dns",
    "PoolDnsNamesArgs": "pool_dns",
    "PoolHealthGate": "pool_health_gate",
    "PoolHealthGateArgs": "pool_health_gate",
    "PrimaryAccessArgs": "primary",
    "PuppetLoadBalancer": "load_balancer",
    "PuppetLoadBalancerArgs": "load_balancer",
}

__all__ = [
    "CompileMasterPool",
    "CompileMasterPoolArgs",
    "HaproxyTier",
    "HaproxyTierArgs",
    "PeAgentPoolAddress",
    "PeAgentPoolAddressArgs",
    "PeCompilerPool",
    "PeCompilerPoolArgs",
    "PeRepoPoolAddress",
    "PeRepoPoolAddressArgs",
    "PoolAlarms",
    "PoolAlarmsArgs",
    "PoolDashboard",
    "PoolDashboardArgs",
    "PoolDnsNames",
    "PoolDnsNamesArgs",
    "PoolHealthGate",
    "PoolHealthGateArgs",
    "PrimaryAccessArgs",
    "PuppetLoadBalancer",
    "PuppetLoadBalancerArgs",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
