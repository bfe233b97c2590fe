"""components/scripts/compile_master_bootstrap.sh on its own: stub IMDS, curl, installer and puppet."""

import os
import shlex
import stat
import subprocess
from pathlib import Path

import pytest

from components import pe
from components.compile_master_pool import render_bootstrap
from components.scripts import SCRIPTS_DIR
from components.scripts.pe_primary.settings import platform_tag
from tests.certs import puppet_request
from tests.harness import PRIMARY_FILES

SCRIPT = SCRIPTS_DIR / "compile_master_bootstrap.sh"
HOSTNAME = "i-0ABC123def4567890.eu-west-1.compute.internal"
CERTNAME = HOSTNAME.lower()
IDENTITY = "MIAGCSqGSIb3DQEHAqCAMIACAQExCzAJBgUrDgMCGgUAMIAGCSqGSIb3DQEHAaCAJIAEggHb"

STUB_CURL = """#!/bin/bash
# IMDSv2 (token, instance id, region, hostname, identity), the primary's install.bash and CA;
# records every call.
echo "curl $*" >> "$STUB_DIR/calls"
imds() { [[ $* == *"X-aws-ec2-metadata-token: token-123"* ]] || exit 22; }
case "$*" in
  *latest/api/token*) echo -n token-123; exit 0 ;;
  *meta-data/instance-id*) imds "$@"; echo -n i-0abc123def4567890; exit 0 ;;
  *meta-data/placement/region*) imds "$@"; echo -n eu-west-1; exit 0 ;;
  *meta-data/local-hostname*) imds "$@"; cat "$STUB_DIR/hostname"; exit 0 ;;
  *instance-identity/pkcs7*) imds "$@"; cat "$STUB_DIR/pkcs7"; exit 0 ;;
  *puppet-ca/v1/certificate_request/*) [[ -e $STUB_DIR/held.pem ]] || exit 22
    cat "$STUB_DIR/held.pem"; exit 0 ;;
esac
left=$(cat "$STUB_DIR/fails_left" 2>/dev/null || echo 0)
if (( left > 0 )); then
  echo $(( left - 1 )) > "$STUB_DIR/fails_left"; echo "curl: (60) SSL certificate problem" >&2; exit 60
fi
while (( $# )); do if [[ $1 == --output ]]; then out=$2; fi; shift; done
cat > "$out" <<'INSTALLER'
echo "installer $*" >> "$STUB_DIR/calls"
env > "$STUB_DIR/installer.env"
INSTALLER
"""

STUB_PUPPET = """#!/bin/bash
echo "puppet $*" >> "$STUB_DIR/calls"
case "$1 $2" in
  "config print") echo "$STUB_DIR/request.pem" ;;
  "ssl submit_request") left=$(cat "$STUB_DIR/submit_fails_left" 2>/dev/null || echo 0)
    if (( left > 0 )); then
      echo $(( left - 1 )) > "$STUB_DIR/submit_fails_left"
      echo "Error: Failed to submit the CSR, HTTP response was 400" >&2; exit 1
    fi ;;
esac
"""


@pytest.fixture
def stub_dir(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("curl", STUB_CURL), ("puppet", STUB_PUPPET)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755 | stat.S_IEXEC)
    (tmp_path / "hostname").write_text(HOSTNAME)
    # As IMDS serves it: base64 in lines of 64.
    (tmp_path / "pkcs7").write_text(IDENTITY[:64] + "\n" + IDENTITY[64:] + "\n")
    (tmp_path / "os-release").write_text('NAME="Red Hat Enterprise Linux"\nID="rhel"\nVERSION_ID="9.4"\n')
    return tmp_path


def run_bootstrap(stub_dir: Path, script: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": f"{stub_dir / 'bin'}:{os.environ['PATH']}",
        "STUB_DIR": str(stub_dir),
        "PE_RETRY_SECONDS": "0",
        "PE_IMDS_URL": "http://imds.test",
        "PE_CONFDIR": str(stub_dir / "puppet"),
        "PE_OS_RELEASE": str(stub_dir / "os-release"),
        "PE_PUPPET": str(stub_dir / "bin" / "puppet"),
        **env,
    }
    return subprocess.run(["bash", str(script)], env=environment, capture_output=True, text=True, check=False)


def rendered(stub_dir: Path) -> Path:
    user_data = stub_dir / "user-data.sh"
    user_data.write_text(render_bootstrap("puppet.example.com", ["pool.example.com"], PRIMARY_FILES))
    return user_data


def calls(stub_dir: Path) -> list[str]:
    return (stub_dir / "calls").read_text().splitlines()


def test_installs_the_agent_trusting_only_the_pe_ca_with_its_own_certname(stub_dir: Path) -> None:
    result = run_bootstrap(stub_dir, rendered(stub_dir))
    assert result.returncode == 0, result.stderr
    cacert = stub_dir / "puppet" / "ssl" / "certs" / "ca.pem"
    assert "-----BEGIN CERTIFICATE-----" in cacert.read_text()
    made = calls(stub_dir)
    download = [line for line in made if "install.bash" in line]
    assert download == [
        f"curl --fail --silent --show-error --cacert {cacert} --output "
        + download[0].split("--output ")[1].split()[0]
        + " https://puppet.example.com:8140/packages/current/install.bash"
    ]
    assert not any(" -k " in f" {line} " or "--insecure" in line for line in made)
    installer = next(line for line in made if line.startswith("installer "))
    assert shlex.split(installer)[1:] == [
        "--puppet-service-ensure", "stopped", "--puppet-service-enable", "false",
        f"main:certname={CERTNAME}",
        "main:dns_alt_names=puppet,pool.example.com",
        "extension_requests:pp_auth_role=pe_compiler",
        f"extension_requests:{pe.PLATFORM_EXTENSION_OID}=el-9-x86_64",
        f"custom_attributes:{pe.INSTANCE_IDENTITY_OID}={IDENTITY}",
    ]  # fmt: skip
    assert [line for line in made if line.startswith("puppet ")] == [
        "puppet ssl submit_request --color=false",
        "puppet agent --onetime --no-daemonize --no-splay --waitforcert 15 --detailed-exitcodes --verbose",
        "puppet resource service puppet ensure=running enable=true",
    ]
    assert (stub_dir / "puppet" / "hiera.yaml").read_text().startswith("---\nversion: 5")


def test_the_certname_is_built_from_instance_id_and_region_and_the_hostname_must_agree(
    stub_dir: Path,
) -> None:
    (stub_dir / "hostname").write_text("ip-10-0-0-5.eu-west-1.compute.internal")
    result = run_bootstrap(stub_dir, rendered(stub_dir))
    assert result.returncode == 1
    assert (
        "hostname ip-10-0-0-5.eu-west-1.compute.internal is not the instance's resource name "
        f"{CERTNAME}: launch with resource-name hostnames"
    ) in result.stderr
    assert not any(line.startswith("installer") for line in calls(stub_dir))


def test_the_certname_agrees_with_the_one_the_components_derive_from_the_arn() -> None:
    arn = "arn:aws:ec2:eu-west-1:123456789012:instance/i-0abc123def4567890"
    assert pe.instance_certname(arn) == CERTNAME
    east = "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc123def4567890"
    assert pe.instance_certname(east) == "i-0abc123def4567890.ec2.internal"


def test_without_an_identity_document_nothing_is_installed(stub_dir: Path) -> None:
    (stub_dir / "pkcs7").write_text("")
    result = run_bootstrap(stub_dir, rendered(stub_dir))
    assert result.returncode == 1
    assert "IMDS gave no instance identity document" in result.stderr
    assert not any(line.startswith("installer") for line in calls(stub_dir))


def _request(stub_dir: Path, name: str) -> bytes:
    pem = puppet_request(CERTNAME, [CERTNAME, "puppet"], {})
    (stub_dir / name).write_bytes(pem)
    return pem


def test_a_failed_submit_is_retried_and_reported(stub_dir: Path) -> None:
    (stub_dir / "submit_fails_left").write_text("1")
    result = run_bootstrap(stub_dir, rendered(stub_dir))
    assert result.returncode == 0, result.stderr
    assert "submitting the certificate request failed (attempt 1 of 60): Error: Failed to submit" in (
        result.stderr
    )
    assert [line for line in calls(stub_dir) if "submit_request" in line] == [
        "puppet ssl submit_request --color=false"
    ] * 2


def test_a_submit_that_keeps_failing_stops_the_bootstrap(stub_dir: Path) -> None:
    (stub_dir / "submit_fails_left").write_text("99")
    result = run_bootstrap(stub_dir, rendered(stub_dir), PE_INSTALL_ATTEMPTS="2")
    assert result.returncode == 1
    assert f"the CA did not take the certificate request for {CERTNAME} after 2 attempts" in result.stderr
    assert not any(line.startswith("puppet agent") for line in calls(stub_dir))


def test_a_request_already_held_with_this_instances_key_counts_as_submitted(stub_dir: Path) -> None:
    (stub_dir / "submit_fails_left").write_text("99")
    (stub_dir / "held.pem").write_bytes(_request(stub_dir, "request.pem"))
    result = run_bootstrap(stub_dir, rendered(stub_dir))
    assert result.returncode == 0, result.stderr
    assert f"the CA already holds this instance's request for {CERTNAME}" in result.stdout


def test_a_request_held_with_another_key_stops_the_bootstrap_and_says_why(stub_dir: Path) -> None:
    (stub_dir / "submit_fails_left").write_text("99")
    _request(stub_dir, "request.pem")
    _request(stub_dir, "held.pem")
    result = run_bootstrap(stub_dir, rendered(stub_dir))
    assert result.returncode == 1
    assert f"the CA holds a request for {CERTNAME} made with another key" in result.stderr
    assert not any(line.startswith("puppet agent") for line in calls(stub_dir))


def test_waits_for_a_primary_that_is_still_booting(stub_dir: Path) -> None:
    (stub_dir / "fails_left").write_text("2")
    result = run_bootstrap(stub_dir, rendered(stub_dir))
    assert result.returncode == 0, result.stderr
    assert len([line for line in calls(stub_dir) if "install.bash" in line]) == 3


def test_gives_up_with_a_clear_message(stub_dir: Path) -> None:
    (stub_dir / "fails_left").write_text("99")
    result = run_bootstrap(stub_dir, rendered(stub_dir), PE_INSTALL_ATTEMPTS="3")
    assert result.returncode == 1
    assert (
        "could not download https://puppet.example.com:8140/packages/current/install.bash after 3 attempts "
        "(verified against the PE CA)"
    ) in result.stderr
    assert not any(line.startswith("installer") for line in calls(stub_dir))


def test_refuses_to_run_without_parameters(stub_dir: Path) -> None:
    result = run_bootstrap(stub_dir, SCRIPT)
    assert result.returncode != 0
    assert "PE_PRIMARY_HOST is required" in result.stderr


OS_RELEASES = {
    "rhel 9.4": ('ID="rhel"\nID_LIKE="fedora"\nVERSION_ID="9.4"\n', "el-9-x86_64"),
    "rocky 8.10": ('ID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="8.10"\n', "el-8-x86_64"),
    "centos 7": ('ID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="7"\n', "el-7-x86_64"),
    "amazon 2023": ('ID="amzn"\nID_LIKE="fedora"\nVERSION_ID="2023"\n', "amazon-2023-x86_64"),
    "sles 15.5": ('ID="sles"\nID_LIKE="suse"\nVERSION_ID="15.5"\n', "sles-15-x86_64"),
    "ubuntu 22.04": ('ID=ubuntu\nID_LIKE=debian\nVERSION_ID="22.04"\n', "ubuntu-22.04-x86_64"),
    "debian 12": ('ID=debian\nVERSION_ID="12"\n', "debian-12-x86_64"),
}


@pytest.mark.parametrize("os_release", OS_RELEASES, ids=list(OS_RELEASES))
def test_the_compile_master_and_the_primary_name_a_platform_alike(tmp_path: Path, os_release: str) -> None:
    text, expected = OS_RELEASES[os_release]
    path = tmp_path / "os-release"
    path.write_text(text)
    from_bash = subprocess.run(
        ["bash", "-c", 'source "$1"; platform_tag "$2" x86_64', "test", str(SCRIPT), str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    from_python = platform_tag(text, "x86_64")
    assert from_bash == from_python == expected
