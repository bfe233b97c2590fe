"""A pe-lb pool built in moto (server mode on 127.0.0.1) the way the Pulumi program declares it."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

import boto3

from components import pe
from components.poolctl.pool import Pool

REGION = "eu-west-1"
POOL = pe.pool_identity("pe-lb", "dev", "pe-lb")
"""The pool the emulated compile masters belong to, as CompileMasterPool tags them in stack dev."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class EmulatedPool:
    endpoint: str
    elb: Any
    ec2: Any
    load_balancer_arn: str
    load_balancer_name: str
    dns_name: str
    target_group_arns: dict[int, str]
    listener_arns: dict[int, str]
    instance_ids: list[str]
    vpc_id: str
    subnet_ids: list[str]
    image_id: str

    def cli_args(self) -> list[str]:
        return ["--load-balancer", self.load_balancer_name, "--pool", POOL, "--endpoint-url", self.endpoint]

    def compile_master(self, name: str, pool: str | None, subnet_id: str | None = None) -> str:
        """A compile master as CompileMasterPool makes one, of ``pool`` (None: made before the pool tag)."""
        tags = [{"Key": "Name", "Value": name}, {"Key": pe.ROLE_TAG, "Value": pe.COMPILE_MASTER_ROLE}]
        if pool is not None:
            tags.append({"Key": pe.POOL_TAG, "Value": pool})
        instance = self.ec2.run_instances(
            ImageId=self.image_id,
            InstanceType="m6i.xlarge",
            MinCount=1,
            MaxCount=1,
            SubnetId=subnet_id or self.subnet_ids[0],
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
        )["Instances"][0]
        instance_id: str = instance["InstanceId"]
        return instance_id

    def poolctl_pool(self) -> Pool:
        """poolctl's own view of this pool, with its listeners and target groups already read."""
        pool = Pool(boto3.Session(region_name=REGION), self.load_balancer_name, self.endpoint)
        pool.groups()
        return pool


def build_pool(endpoint: str, compile_masters: int = 3) -> EmulatedPool:
    """VPC, two subnets in two AZs, compile masters, the NLB, target groups and listeners."""
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=endpoint)
    elb = boto3.client("elbv2", region_name=REGION, endpoint_url=endpoint)
    vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{REGION}{zone}")[
            "Subnet"
        ]["SubnetId"]
        for i, zone in enumerate("ab")
    ]
    balancer = elb.create_load_balancer(
        Name="pe-lb-nlb-0a1b2c3", Subnets=subnets, Type="network", Scheme="internal"
    )["LoadBalancers"][0]
    timing = pe.HealthCheckTiming()
    target_groups, listeners = {}, {}
    idle = {
        pe.PUPPETSERVER_PORT: pe.DEFAULT_AGENT_IDLE_TIMEOUT_SECONDS,
        pe.PCP_BROKER_PORT: pe.DEFAULT_PCP_IDLE_TIMEOUT_SECONDS,
    }
    for port in pe.POOL_PORTS:
        group = elb.create_target_group(
            Name=f"pe-lb-{port}-0a1b2c3",
            Protocol="TCP",
            Port=port,
            VpcId=vpc_id,
            TargetType="instance",
            HealthCheckProtocol="HTTPS",
            HealthCheckPort=str(pe.PUPPETSERVER_PORT),
            HealthCheckPath=pe.STATUS_PATH if port == pe.PUPPETSERVER_PORT else pe.PCP_STATUS_PATH,
            HealthCheckIntervalSeconds=timing.interval_seconds,
            HealthCheckTimeoutSeconds=timing.timeout_seconds,
            HealthyThresholdCount=timing.healthy_threshold,
            UnhealthyThresholdCount=timing.unhealthy_threshold,
            Matcher={"HttpCode": "200"},
        )["TargetGroups"][0]
        target_groups[port] = group["TargetGroupArn"]
        listener = elb.create_listener(
            LoadBalancerArn=balancer["LoadBalancerArn"],
            Protocol="TCP",
            Port=port,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": group["TargetGroupArn"]}],
        )["Listeners"][0]
        listeners[port] = listener["ListenerArn"]
        elb.modify_listener_attributes(
            ListenerArn=listener["ListenerArn"],
            Attributes=[{"Key": "tcp.idle_timeout.seconds", "Value": str(idle[port])}],
        )
    emulated = EmulatedPool(
        endpoint=endpoint,
        elb=elb,
        ec2=ec2,
        load_balancer_arn=balancer["LoadBalancerArn"],
        load_balancer_name=balancer["LoadBalancerName"],
        dns_name=balancer["DNSName"],
        target_group_arns=target_groups,
        listener_arns=listeners,
        instance_ids=[],
        vpc_id=vpc_id,
        subnet_ids=subnets,
        # moto lists thousands of images: read once.
        image_id=ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"],
    )
    emulated.instance_ids = [
        emulated.compile_master(f"pe-lb-{index}", POOL, subnets[index % len(subnets)])
        for index in range(compile_masters)
    ]
    for port, arn in target_groups.items():
        elb.register_targets(
            TargetGroupArn=arn, Targets=[{"Id": i, "Port": port} for i in emulated.instance_ids]
        )
    return emulated


# --- the least-connections tier: HAProxy instances as the targets, the discovery record in Route53 ---


def haproxy_instance(pool: EmulatedPool, name: str, subnet_id: str, owner: str = POOL) -> str:
    """An instance of the HAProxy tier, tagged as the program tags them (role haproxy, the pool's tag)."""
    tags = [
        {"Key": "Name", "Value": name},
        {"Key": pe.ROLE_TAG, "Value": pe.HAPROXY_ROLE},
        {"Key": pe.POOL_TAG, "Value": owner},
    ]
    instance = pool.ec2.run_instances(
        ImageId=pool.image_id,
        InstanceType="c6i.large",
        MinCount=1,
        MaxCount=1,
        SubnetId=subnet_id,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )["Instances"][0]
    instance_id: str = instance["InstanceId"]
    return instance_id


@dataclass
class EmulatedTier:
    """A pool balancing by least connections: its target groups hold HAProxy instances, which find
    the compile masters through the discovery record in the pool's private hosted zone."""

    pool: EmulatedPool
    route53: Any
    haproxy_ids: list[str]
    zone_id: str

    @property
    def compile_master_ids(self) -> list[str]:
        return self.pool.instance_ids

    def private_ip(self, instance_id: str) -> str:
        reservations = self.pool.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        address: str = reservations[0]["Instances"][0]["PrivateIpAddress"]
        return address

    def record(self) -> list[str]:
        """The discovery record's values, as Route53 holds them now."""
        answer = self.route53.list_resource_record_sets(
            HostedZoneId=self.zone_id,
            StartRecordName=pe.discovery_name(POOL),
            StartRecordType="A",
            MaxItems="1",
        )["ResourceRecordSets"]
        return [value["Value"] for value in answer[0]["ResourceRecords"]]

    def set_record(self, addresses: list[str]) -> None:
        """The record as the program writes it from drainedCompileMasters."""
        self.route53.change_resource_record_sets(
            HostedZoneId=self.zone_id,
            ChangeBatch={
                "Changes": [
                    {
                        "Action": "UPSERT",
                        "ResourceRecordSet": {
                            "Name": pe.discovery_name(POOL),
                            "Type": "A",
                            "TTL": pe.DISCOVERY_TTL_SECONDS,
                            "ResourceRecords": [{"Value": address} for address in addresses],
                        },
                    }
                ]
            },
        )


def build_tier(endpoint: str, compile_masters: int = 3, haproxies: int = 2) -> EmulatedTier:
    """build_pool's pool with balancing least-connections: the compile masters leave the target
    groups, HAProxy instances (one per subnet in turn) take their place, and the private zone
    pe.discovery_zone_name(POOL), tagged with the pool and associated with the VPC, holds the record
    pe.discovery_name(POOL) of every compile master's private IP."""
    pool = build_pool(endpoint, compile_masters)
    for port, arn in pool.target_group_arns.items():
        pool.elb.deregister_targets(
            TargetGroupArn=arn, Targets=[{"Id": i, "Port": port} for i in pool.instance_ids]
        )
    haproxy_ids = [
        haproxy_instance(pool, f"pe-lb-haproxy-{index}", pool.subnet_ids[index % len(pool.subnet_ids)])
        for index in range(haproxies)
    ]
    for port, arn in pool.target_group_arns.items():
        pool.elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": i, "Port": port} for i in haproxy_ids])
    route53 = boto3.client("route53", region_name=REGION, endpoint_url=endpoint)
    zone = route53.create_hosted_zone(
        Name=pe.discovery_zone_name(POOL),
        CallerReference=f"pe-lb-{pool.vpc_id}",
        VPC={"VPCRegion": REGION, "VPCId": pool.vpc_id},
        HostedZoneConfig={"PrivateZone": True, "Comment": "pe-lb discovery"},
    )["HostedZone"]
    zone_id = zone["Id"].rsplit("/", 1)[-1]
    route53.change_tags_for_resource(
        ResourceType="hostedzone", ResourceId=zone_id, AddTags=[{"Key": pe.POOL_TAG, "Value": POOL}]
    )
    tier = EmulatedTier(pool, route53, haproxy_ids, zone_id)
    tier.set_record([tier.private_ip(i) for i in pool.instance_ids])
    return tier
