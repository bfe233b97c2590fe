"""A pe-lb pool built in moto (server mode on 127.0.0.1) the way the Pulumi program declares it."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

import boto3

from components import pe
from components.poolctl.pool import Pool

REGION = "eu-west-1"


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

    def cli_args(self) -> list[str]:
        return ["--load-balancer", self.load_balancer_name, "--endpoint-url", self.endpoint]

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
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance_ids = []
    for index in range(compile_masters):
        instance = ec2.run_instances(
            ImageId=image,
            InstanceType="m6i.xlarge",
            MinCount=1,
            MaxCount=1,
            SubnetId=subnets[index % len(subnets)],
            TagSpecifications=[
                {
                    "ResourceType": "instance",
                    "Tags": [
                        {"Key": "Name", "Value": f"pe-lb-{index}"},
                        {"Key": pe.ROLE_TAG, "Value": pe.COMPILE_MASTER_ROLE},
                    ],
                }
            ],
        )["Instances"][0]
        instance_ids.append(instance["InstanceId"])
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
        elb.register_targets(
            TargetGroupArn=group["TargetGroupArn"], Targets=[{"Id": i, "Port": port} for i in instance_ids]
        )
    return EmulatedPool(
        endpoint=endpoint,
        elb=elb,
        ec2=ec2,
        load_balancer_arn=balancer["LoadBalancerArn"],
        load_balancer_name=balancer["LoadBalancerName"],
        dns_name=balancer["DNSName"],
        target_group_arns=target_groups,
        listener_arns=listeners,
        instance_ids=instance_ids,
        vpc_id=vpc_id,
    )
