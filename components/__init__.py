"""Reusable Pulumi components for a PE compile-master pool behind an AWS NLB.

from components import CompileMasterPool, PeAgentPoolAddress, PeRepoPoolAddress, PuppetLoadBalancer
"""

from components.compile_master_pool import CompileMasterPool, CompileMasterPoolArgs
from components.load_balancer import PuppetLoadBalancer, PuppetLoadBalancerArgs
from components.pe_agent import PeAgentPoolAddress, PeAgentPoolAddressArgs
from components.pe_repo import PeRepoPoolAddress, PeRepoPoolAddressArgs
from components.pool_health_gate import PoolHealthGate, PoolHealthGateArgs

__all__ = [
    "CompileMasterPool",
    "CompileMasterPoolArgs",
    "PeAgentPoolAddress",
    "PeAgentPoolAddressArgs",
    "PeRepoPoolAddress",
    "PeRepoPoolAddressArgs",
    "PoolHealthGate",
    "PoolHealthGateArgs",
    "PuppetLoadBalancer",
    "PuppetLoadBalancerArgs",
]
