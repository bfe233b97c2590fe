"""What every EC2 instance pe-lb runs shares: hardening, and placement over the subnets."""

from typing import Any

import pulumi
import pulumi_aws as aws


def hardened(root_volume_size_gb: int) -> dict[str, Any]:
    """aws.ec2.Instance arguments every pe-lb instance takes: no public address, IMDSv2 only (one
    hop: containers on it cannot reach the metadata), an encrypted root volume, EC2 recovery."""
    return {
        "associate_public_ip_address": False,
        # EC2 moves the instance to healthy hardware after a failed system status check (same id,
        # IP, volumes: for a compile master, the same certname). Stated, not left to the account's
        # default; PoolAlarms adds an alarm that recovers explicitly and pages.
        "maintenance_options": aws.ec2.InstanceMaintenanceOptionsArgs(auto_recovery="default"),
        "metadata_options": aws.ec2.InstanceMetadataOptionsArgs(
            http_endpoint="enabled",
            http_tokens="required",
            http_put_response_hop_limit=1,
        ),
        "root_block_device": aws.ec2.InstanceRootBlockDeviceArgs(
            encrypted=True,
            volume_type="gp3",
            volume_size=root_volume_size_gb,
            delete_on_termination=True,
        ),
    }


def at_least_one_subnet(subnet_ids: Any) -> list[str]:
    if isinstance(subnet_ids, str) or not subnet_ids:
        raise ValueError(f"subnet_ids={subnet_ids!r} must list at least one subnet")
    return list(subnet_ids)


def round_robin(subnet_ids: "list[str] | pulumi.Output[list[str]]", index: int) -> pulumi.Input[str]:
    """The subnet of the instance at ``index``: spread over the subnets (so over their zones) in turn."""
    if isinstance(subnet_ids, pulumi.Output):
        return subnet_ids.apply(lambda ids: ids[index % len(ids)])
    return subnet_ids[index % len(subnet_ids)]
