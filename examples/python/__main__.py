"""A program of your own that runs a PE compile-master pool with pe-lb.

pip install -r requirements.txt      # pe-lb from this repository (../..), its dependencies with it
pulumi config set --secret sshPrivateKey < ~/.ssh/pe-primary
pulumi up
"""

import pulumi
from pe_lb import PeCompilerPool

from components import team_tags

config = pulumi.Config()
# A list that is one Output, as a VPC component hands it out.
subnets = pulumi.Output.from_input(["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"])

pool = PeCompilerPool(
    "pe",
    {
        "primary_host": "puppet.example.com",
        "primary_host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleHostKeyOfThePrimary0000000000000000",
        "ssh_private_key": config.require_secret("sshPrivateKey"),
        "vpc_id": "vpc-0123456789abcdef0",
        "subnet_ids": subnets,
        "agent_cidrs": ["10.0.0.0/8"],
        "primary_cidrs": ["10.0.1.10/32"],
        "ami_id": "ami-0123456789abcdef0",
        "compile_master_count": 3,
        # The PE page's advice: balance by least connections (HAProxy between the NLB and the pool).
        "balancing": "least-connections",
        "tags": team_tags("puppet"),
    },
)

pulumi.export("poolAddress", pool.pool_address)
pulumi.export("compileMasterCertnames", pool.compile_master_certnames)
pulumi.export("dashboardUrl", pool.dashboard_url)
