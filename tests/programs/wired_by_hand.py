"""pe-lb's own program before PeCompilerPool: the pool wired from its parts by hand.

Kept as it was (only the calls whose signature changed since are brought up to date), for
two uses: the graph a stack deployed with it holds, which moving to PeCompilerPool must take
over with nothing replaced; and the parts' advanced use, which must keep working.
"""

import pulumi

import stack_config
from components import (
    CompileMasterPool,
    PeAgentPoolAddress,
    PeRepoPoolAddress,
    PoolDnsNames,
    PoolHealthGate,
    PuppetLoadBalancer,
    pe,
)
from components.primary import PrimaryAccessArgs

try:
    settings = stack_config.load()
    stack_config.check_against_aws(settings, "pe-lb")
except stack_config.ConfigError as error:
    raise pulumi.RunError(f"invalid stack config:\n{error}") from None

if len(settings.subnet_ids) < 2:  # type: ignore[arg-type]
    pulumi.log.warn(
        "subnetIds lists one subnet: the pool and its NLB live in one availability zone; "
        "list subnets in two or more AZs so an AZ outage leaves compile masters in rotation"
    )

load_balancer = PuppetLoadBalancer(
    "pe-lb",
    {
        "vpc_id": settings.vpc_id,
        "subnet_ids": settings.nlb_subnet_ids,
        "agent_cidrs": settings.agent_cidrs,
        "internal": settings.internal,
        "pcp_idle_timeout_seconds": settings.pcp_idle_timeout_seconds,
        "agent_idle_timeout_seconds": settings.agent_idle_timeout_seconds,
        "health_check_path": settings.health_check_path,
        "pcp_health_check_path": settings.pcp_health_check_path,
        "health_check_interval_seconds": settings.health_check_interval_seconds,
        "health_check_healthy_threshold": settings.health_check_healthy_threshold,
        "health_check_unhealthy_threshold": settings.health_check_unhealthy_threshold,
        "health_check_protocol": settings.health_check_protocol,
        # Its record is made below by PoolDnsNames, once the pool behind the NLB serves.
        "pool_dns_name": settings.pool_dns_name,
        "tags": settings.tags,
    },
)

# Every name an agent may hold is in every certificate: the pool's DNS names and the NLB's own
# (what agents had before poolDnsName was set), so a change of name never meets a compile master
# that does not answer to it.
pool_address = load_balancer.pool_address
other_pool_names: list[pulumi.Input[str]] = [load_balancer.dns_name, *settings.additional_pool_dns_names]

primary_access: PrimaryAccessArgs = {
    "primary_host": settings.primary_host,
    "primary_host_key": settings.primary_host_key,
    "ssh_user": settings.ssh_user,
    "ssh_private_key": settings.ssh_private_key,
}

compile_masters = CompileMasterPool(
    "pe-lb",
    {
        "primary": primary_access,
        "pool_address": pool_address,
        "other_pool_names": other_pool_names,
        "vpc_id": settings.vpc_id,
        "subnet_ids": settings.subnet_ids,
        "load_balancer_security_group_id": load_balancer.security_group_id,
        "target_group_arns": load_balancer.target_group_arns,
        "count": settings.compile_master_count,
        "instance_type": settings.instance_type,
        "ami_id": settings.ami_id,
        "root_volume_size_gb": settings.root_volume_size_gb,
        "key_name": settings.key_name,
        "admin_cidrs": settings.admin_cidrs,
        "primary_cidrs": settings.primary_cidrs,
        "tags": settings.tags,
        "drained": settings.drained_compile_masters,
    },
)

# Agents must find a working pool when pe_repo starts handing out its address: every
# compile master joined (the pool component's children) and in rotation.
ready: list[pulumi.Resource] = [load_balancer, compile_masters]
if settings.wait_for_healthy:
    ready.append(
        PoolHealthGate(
            "pe-lb",
            {
                "load_balancer_arn": load_balancer.arn,
                "timeout_seconds": settings.wait_for_healthy_timeout_seconds,
                # The account and role the AWS provider uses, so the gate reads the same pool.
                "aws": stack_config.aws_provider_settings(pulumi.Config("aws")),
                # One wait per compile master in rotation, made again only when it is new: an
                # update waits for what it adds or replaces; a sick one elsewhere never blocks it.
                "instance_ids": [instance.id for instance in compile_masters.instances],
                "drained": settings.drained_compile_masters,
            },
            opts=pulumi.ResourceOptions(depends_on=[load_balancer, compile_masters]),
        )
    )

dns_names = [*filter(None, [settings.pool_dns_name]), *settings.additional_pool_dns_names]
if settings.hosted_zone_id and dns_names:
    # After the gate: on an NLB rebuild the names move to the new NLB once its targets serve.
    ready.append(
        PoolDnsNames(
            "pe-lb",
            {
                "names": dns_names,
                "hosted_zone_id": settings.hosted_zone_id,
                "load_balancer_dns_name": load_balancer.dns_name,
                "load_balancer_zone_id": load_balancer.zone_id,
                # pe-lb 0.5 made poolDnsName's record inside PuppetLoadBalancer: keep it, never remake it.
                "adopt_record_of": "pe-lb" if settings.pool_dns_name else None,
            },
            opts=pulumi.ResourceOptions(depends_on=list(ready)),
        )
    )

pe_repo = PeRepoPoolAddress(
    "pe-lb",
    {
        "primary": primary_access,
        "pool_address": load_balancer.pool_address,
        "compile_master_certnames": compile_masters.certnames,
    },
    opts=pulumi.ResourceOptions(depends_on=ready),
)
if settings.agents_use_pool:
    PeAgentPoolAddress(
        "pe-lb",
        {"primary": primary_access, "pool_address": load_balancer.pool_address},
        opts=pulumi.ResourceOptions(depends_on=ready),
    )

pulumi.export("poolAddress", load_balancer.pool_address)
pulumi.export("loadBalancerArn", load_balancer.arn)
pulumi.export("loadBalancerDnsName", load_balancer.dns_name)
pulumi.export("targetGroupArns", load_balancer.target_group_arns)
pulumi.export("compileMasterIds", compile_masters.instance_ids)
pulumi.export("compileMasterPrivateIps", compile_masters.private_ips)
pulumi.export("compileMasterCertnames", compile_masters.certnames)
# poolctl tells this pool's compile masters from another stack's in the same target groups or VPC.
pulumi.export("compileMasterPoolTag", pe.pool_identity(pulumi.get_project(), pulumi.get_stack(), "pe-lb"))
# poolctl status tells compile masters drained on purpose from ones out of rotation by surprise.
pulumi.export(
    "drainedCompileMasterIds",
    compile_masters.instance_ids.apply(lambda ids: [ids[i] for i in settings.drained_compile_masters]),
)
pulumi.export("agentInstallCommand", load_balancer.pool_address.apply(pe.agent_install_command))
