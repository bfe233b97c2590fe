import sys
from typing import Any

import pytest

from tests.harness import PROJECT_DIR

sys.path.insert(0, str(PROJECT_DIR))

SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nmock-ssh-key-never-in-plaintext\n-----END KEY-----\n"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMockHostKeyOfThePrimary000000000000000000"


@pytest.fixture(autouse=True)
def hermetic_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach a real AWS account, whatever the developer's shell holds."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")


@pytest.fixture
def stack_config() -> dict[str, Any]:
    """A complete, valid stack config like Pulumi.dev.yaml's."""
    return {
        "primaryHost": "puppet.example.com",
        "primaryHostKey": f"puppet.example.com {HOST_KEY}",
        "vpcId": "vpc-0123456789abcdef0",
        "amiId": "ami-0123456789abcdef0",
        "subnetIds": ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"],
        "agentCidrs": ["10.0.0.0/8"],
        "compileMasterCount": 3,
        "sshPrivateKey": SSH_KEY,
        "primaryCidrs": ["10.0.1.10/32"],
        "adminCidrs": ["192.0.2.0/24"],
        "tags": {"team": "puppet"},
    }
