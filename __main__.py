"""pe-lb: a pool of PE compile masters behind an AWS Network Load Balancer.

Reads the stack config and declares one PeCompilerPool; all AWS and PE logic lives in
components/ (installed as pe_lb).
"""

import pulumi

import stack_config
from components import PeCompilerPool
from components.compiler_pool import settings_as_args

try:
    settings = stack_config.load()
    pool = PeCompilerPool(
        "pe-lb",
        {
            **settings_as_args(settings),  # type: ignore[typeddict-item]
            # The account and role the AWS provider uses, so the health gate reads the same pool.
            "aws": stack_config.aws_provider_settings(pulumi.Config("aws")),
        },
    )
except stack_config.ConfigError as error:
    raise pulumi.RunError(f"invalid stack config:\n{error}") from None

pulumi.export("poolAddress", pool.pool_address)
pulumi.export("loadBalancerArn", pool.load_balancer_arn)
pulumi.export("loadBalancerDnsName", pool.load_balancer_dns_name)
pulumi.export("targetGroupArns", pool.target_group_arns)
pulumi.export("compileMasterIds", pool.compile_master_ids)
pulumi.export("compileMasterPrivateIps", pool.compile_master_private_ips)
pulumi.export("compileMasterCertnames", pool.compile_master_certnames)
# poolctl tells this pool's compile masters from another stack's in the same target groups or VPC.
pulumi.export("compileMasterPoolTag", pool.compile_master_pool_tag)
# poolctl status tells compile masters drained on purpose from ones out of rotation by surprise.
pulumi.export("drainedCompileMasterIds", pool.drained_compile_master_ids)
pulumi.export("agentInstallCommand", pool.agent_install_command)
pulumi.export("alarmNames", pool.alarm_names)
pulumi.export("dashboardUrl", pool.dashboard_url)
# least-connections: the HAProxy instances in the NLB's target groups, and the name they resolve.
pulumi.export("balancing", pool.balancing)
pulumi.export("haproxyInstanceIds", pool.haproxy_instance_ids)
pulumi.export("discoveryName", pool.discovery_name)
