"""The stack's config (keys under ``pe-lb:``), read for PeCompilerPool.

The checks are PeCompilerPool's own (``pe_lb.pool_config``): a key of the stack config and the
argument of the same name are refused the same way, with the same message.
"""

import pulumi

from components.pool_config import KNOWN_KEYS, ConfigError, PoolSettings, check_against_aws, parse
from components.pool_health_gate import AwsAccountArgs

__all__ = [
    "KNOWN_KEYS",
    "ConfigError",
    "StackSettings",
    "aws_provider_settings",
    "check_against_aws",
    "load",
    "parse",
]

PROJECT = "pe-lb"
SECRET_KEYS = ("sshPrivateKey",)

StackSettings = PoolSettings


def load() -> PoolSettings:
    """Read this stack's config from the Pulumi runtime and check it."""
    prefix = f"{PROJECT}:"
    # Every key the stack sets under pe-lb:, so a misspelt key is reported, not ignored.
    present = {*pulumi.runtime.config.CONFIG.get(), *pulumi.runtime.config.get_config_env()}
    keys = {key.removeprefix(prefix) for key in present if key.startswith(prefix)} | set(KNOWN_KEYS)
    raw: dict[str, object] = {}
    secret: set[str] = set()
    for key in keys:
        value = pulumi.runtime.get_config(prefix + key)
        if value is not None:
            raw[key] = str(value)
            if pulumi.runtime.is_config_secret(prefix + key):
                secret.add(key)
    return parse(raw, secret)


def aws_provider_settings(aws: pulumi.Config) -> AwsAccountArgs:
    """Region, profile and role the AWS provider takes from the stack's aws: config.

    Credentials from the environment (AWS_ACCESS_KEY_ID, AWS_PROFILE, SSO, instance roles)
    reach the health gate as they reach the provider: it runs in the same environment.
    """
    roles = aws.get_object("assumeRoles") or []
    single = aws.get_object("assumeRole") or {}
    role = (roles[0] if isinstance(roles, list) and roles else single) or {}
    return {
        "aws_region": aws.get("region"),
        "aws_profile": aws.get("profile"),
        "aws_role_arn": role.get("roleArn") if isinstance(role, dict) else None,
    }
