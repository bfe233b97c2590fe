"""A program of your own that runs a PE compile-master pool with pe-lb's components.

pip install -r requirements.txt      # pe-lb from this repository (../..), its dependencies with it
pulumi config set --secret sshPrivateKey < ~/.ssh/pe-primary
pulumi up
"""

import pulumi
from pe_lb import (
    CompileMasterPool,
    PeAgentPoolAddress,
    PeRepoPoolAddress,
    PrimaryAccessArgs,
    PuppetLoadBalancer,
)

from components import team_tags

config = pulumi.Config()
tags = team_tags("puppet")
# A list that is one Output, as a VPC component hands it out.
subnets = pulumi.Output.from_input(["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"])
primary: PrimaryAccessArgs = {
    "primary_host": "puppet.example.com",
    "primary_host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleHostKeyOfThePrimary0000000000000000",
    "ssh_private_key": config.require_secret("sshPrivateKey"),
}

lb = PuppetLoadBalancer(
    "pe",
    {
        "vpc_id": "vpc-0123456789abcdef0",
        "subnet_ids": subnets,
        "agent_cidrs": ["10.0.0.0/8"],
        "tags": tags,
    },
)
pool = CompileMasterPool(
    "pe",
    {
        "primary": primary,
        "pool_address": lb.pool_address,
        "vpc_id": "vpc-0123456789abcdef0",
        "subnet_ids": subnets,
        "load_balancer_security_group_id": lb.security_group_id,
        "target_group_arns": lb.target_group_arns,
        "primary_cidrs": ["10.0.1.10/32"],
        "ami_id": "ami-0123456789abcdef0",
        "count": 3,
        "tags": tags,
    },
)
after_joins = pulumi.ResourceOptions(depends_on=[lb, pool])
PeRepoPoolAddress(
    "pe",
    {"primary": primary, "pool_address": lb.pool_address, "compile_master_certnames": pool.certnames},
    opts=after_joins,
)
PeAgentPoolAddress("pe", {"primary": primary, "pool_address": lb.pool_address}, opts=after_joins)

pulumi.export("poolAddress", lb.pool_address)
pulumi.export("compileMasterCertnames", pool.certnames)
