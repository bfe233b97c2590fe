"""Hosts pe-lb's components for programs in any Pulumi language (`pulumi package add`).

Pulumi infers the package schema from the components' typed Args and outputs
(pulumi.provider.experimental); tests/test_schema.py asserts what it infers.
"""

from pe_lb import (
    CompileMasterPool,
    HaproxyTier,
    PeAgentPoolAddress,
    PeCompilerPool,
    PeRepoPoolAddress,
    PoolAlarms,
    PoolDashboard,
    PoolDnsNames,
    PoolHealthGate,
    PuppetLoadBalancer,
)
from pulumi.provider.experimental import component_provider_host

COMPONENTS = [
    PeCompilerPool,
    PuppetLoadBalancer,
    CompileMasterPool,
    PoolHealthGate,
    PoolDnsNames,
    PeRepoPoolAddress,
    PeAgentPoolAddress,
    PoolAlarms,
    PoolDashboard,
    HaproxyTier,
]

if __name__ == "__main__":
    component_provider_host(name="pe-lb", components=COMPONENTS)
