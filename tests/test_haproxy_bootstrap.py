"""components/scripts/haproxy_bootstrap.sh as haproxy_config.user_data renders it: stub package
managers, systemctl and haproxy first on PATH, and a fake /etc under a test root (PE_LB_ROOT)."""

import os
import pwd
import re
import shlex
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from components import pe
from components.haproxy_config import (
    HAPROXY_CA_FILE,
    HAPROXY_STATS_SOCKET,
    USER_DATA_MAX_BYTES,
    HaproxySettings,
    instance_settings,
    render,
    user_data,
)
from components.scripts import SCRIPTS_DIR
from tests.certs import LocalCA

SCRIPT = SCRIPTS_DIR / "haproxy_bootstrap.sh"
DISCOVERY_NAME = pe.discovery_name("pe-lb-dev-pe")
CA = LocalCA().cert_pem.decode()
TOOLS = ("cat", "chmod", "dirname", "mkdir", "mktemp", "mv", "rm", "sleep")
"""The only commands besides the stubs on the scripts' PATH: a real apt-get, dnf or systemctl on the
machine running the tests is never reached."""

STUB = """#!/bin/bash
# Records each call (apt-get with the DEBIAN_FRONTEND it saw); fails while NAME.fails_left says so.
if [[ {name} == apt-get ]]; then
  echo "DEBIAN_FRONTEND=${{DEBIAN_FRONTEND:-}} {name} $*" >> "$STUB_DIR/calls"
else
  echo "{name} $*" >> "$STUB_DIR/calls"
fi
left=$(cat "$STUB_DIR/{name}.fails_left" 2>/dev/null || echo 0)
if (( left > 0 )); then
  echo $(( left - 1 )) > "$STUB_DIR/{name}.fails_left"
  echo "{name}: Temporary failure resolving the mirror" >&2
  exit 100
fi
"""

STUB_SELINUXENABLED = """#!/bin/bash
[[ -e $STUB_DIR/selinux_on ]]
"""

STUB_HAPROXY = """#!/bin/bash
# `haproxy -c -f FILE`: keeps what it checked and the CA as it was then; a config saying BROKEN fails.
echo "haproxy $*" >> "$STUB_DIR/calls"
cat "$3" > "$STUB_DIR/checked.cfg"
cat "$PE_LB_ROOT/etc/haproxy/pe-ca.pem" > "$STUB_DIR/ca-at-check.pem" 2>/dev/null || true
if [[ $(cat "$3") == *BROKEN* ]]; then
  echo "[ALERT] config : parsing [$3:40] : 'server-template' : invalid address: 'BROKEN'" >&2
  exit 1
fi
echo "Configuration file is valid"
"""

DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
UBUNTU = 'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="22.04"\n'
RHEL = 'NAME="Red Hat Enterprise Linux"\nID="rhel"\nID_LIKE="fedora"\nVERSION_ID="9.4"\n'
AMAZON = 'NAME="Amazon Linux"\nID="amzn"\nID_LIKE="fedora"\nVERSION_ID="2023"\n'
ROCKY = 'NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="8.10"\n'
ALL_STUBS = ("apt-get", "dnf", "yum", "systemctl", "setsebool")


@dataclass
class Host:
    """A test root (PE_LB_ROOT) with its os-release, and the folder of stubs and their records."""

    stubs: Path
    root: Path

    @property
    def confdir(self) -> Path:
        return self.root / "etc" / "haproxy"

    def calls(self) -> list[str]:
        calls = self.stubs / "calls"
        return calls.read_text().splitlines() if calls.exists() else []

    def run(self, script: Path, **env: str) -> subprocess.CompletedProcess[str]:
        environment = {
            "PATH": f"{self.stubs / 'bin'}:{self.stubs / 'tools'}",
            "STUB_DIR": str(self.stubs),
            "PE_LB_ROOT": str(self.root),
            "PE_LB_RETRY_SECONDS": "0",
            **env,
        }
        return subprocess.run(
            ["/bin/bash", str(script)], env=environment, capture_output=True, text=True, check=False
        )


def make_host(tmp_path: Path, os_release: str = DEBIAN, stubs: tuple[str, ...] = ALL_STUBS) -> Host:
    host = Host(tmp_path / "stubs", tmp_path / "root")
    bin_dir, tools = host.stubs / "bin", host.stubs / "tools"
    bin_dir.mkdir(parents=True)
    tools.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, f"{tool} is needed to run the script"
        (tools / tool).symlink_to(found)
    texts = {name: STUB.format(name=name) for name in stubs}
    texts.update(haproxy=STUB_HAPROXY, selinuxenabled=STUB_SELINUXENABLED)
    for name, text in texts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (host.root / "etc").mkdir(parents=True)
    (host.root / "etc" / "os-release").write_text(os_release)
    return host


def rendered(host: Host, settings: HaproxySettings | None = None, ca: str = CA) -> Path:
    path = host.stubs / "user-data.sh"
    path.write_text(user_data(settings or instance_settings(DISCOVERY_NAME), ca))
    return path


def parameters(text: str) -> dict[str, str]:
    """What the user data's `export NAME=...` lines set, read as the shell reads them."""
    header = text[: text.index(SCRIPT.read_text().split("\n", 1)[1])]
    words = shlex.split(header, comments=True)
    assert words[::2] == ["export"] * (len(words) // 2), header
    return dict(word.split("=", 1) for word in words[1::2])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_installs_debians_haproxy_checks_the_config_then_enables_and_restarts_it(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    result = host.run(rendered(host))
    assert result.returncode == 0, result.stderr
    checked = host.calls()[2].split()[-1]
    assert host.calls() == [
        "DEBIAN_FRONTEND= apt-get update -q",
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q haproxy",
        f"haproxy -c -f {checked}",
        "systemctl enable haproxy",
        "systemctl restart haproxy",
    ]
    assert Path(checked).parent == host.confdir, "checked beside the live config, then moved over it"
    config = render(instance_settings(DISCOVERY_NAME))
    assert (host.stubs / "checked.cfg").read_text() == config
    assert (host.stubs / "ca-at-check.pem").read_text() == CA, "the CA the config names is in place"
    assert (host.confdir / "haproxy.cfg").read_text() == config
    assert (host.confdir / "pe-ca.pem").read_text() == CA
    assert mode(host.confdir / "haproxy.cfg") == mode(host.confdir / "pe-ca.pem") == 0o644
    assert sorted(os.listdir(host.confdir)) == ["haproxy.cfg", "pe-ca.pem"], "no temporary file left"
    assert (host.root / Path(HAPROXY_STATS_SOCKET).parent.relative_to("/")).is_dir()
    for step in ("installing the distribution's haproxy package with apt-get (attempt 1 of 10)",
                 f"writing the PE CA bundle to {host.confdir}/pe-ca.pem",
                 "checking the rendered haproxy.cfg (haproxy -c)",
                 "enabling and restarting haproxy"):  # fmt: skip
        assert f"pe-lb: {step}" in result.stderr
    assert result.stdout.count("Configuration file is valid") == 0, "the check's output goes to stderr"


INSTALLS = {
    "ubuntu 22.04": (UBUNTU, ALL_STUBS, ["apt-get update -q", "apt-get install -y -q haproxy"]),
    "rhel 9.4": (RHEL, ALL_STUBS, ["dnf install -y haproxy"]),
    "amazon linux 2023": (AMAZON, ALL_STUBS, ["dnf install -y haproxy"]),
    "rocky 8.10 without dnf": (ROCKY, ("apt-get", "yum", "systemctl"), ["yum install -y haproxy"]),
}


@pytest.mark.parametrize("distribution", INSTALLS, ids=list(INSTALLS))
def test_each_distribution_installs_its_own_package(tmp_path: Path, distribution: str) -> None:
    os_release, stubs, installs = INSTALLS[distribution]
    host = make_host(tmp_path, os_release, stubs)
    result = host.run(rendered(host))
    assert result.returncode == 0, result.stderr
    made = [call.removeprefix("DEBIAN_FRONTEND=noninteractive ").removeprefix("DEBIAN_FRONTEND= ")
            for call in host.calls()]  # fmt: skip
    assert made[: len(installs)] == installs
    assert made[len(installs)].startswith("haproxy -c -f ")
    assert made[len(installs) + 1 :] == ["systemctl enable haproxy", "systemctl restart haproxy"]


def test_a_package_install_that_fails_while_the_network_comes_up_is_retried(tmp_path: Path) -> None:
    host = make_host(tmp_path, RHEL)
    (host.stubs / "dnf.fails_left").write_text("2")
    result = host.run(rendered(host))
    assert result.returncode == 0, result.stderr
    assert host.calls()[:3] == ["dnf install -y haproxy"] * 3
    assert "pe-lb: installing the distribution's haproxy package with dnf (attempt 3 of 10)" in result.stderr
    assert (host.confdir / "haproxy.cfg").exists()


def test_a_package_that_cannot_be_installed_stops_the_bootstrap_and_says_so(tmp_path: Path) -> None:
    host = make_host(tmp_path, RHEL)
    (host.stubs / "dnf.fails_left").write_text("99")
    result = host.run(rendered(host), PE_LB_INSTALL_ATTEMPTS="2")
    assert result.returncode == 1
    assert "pe-lb: could not install haproxy with dnf after 2 attempts" in result.stderr
    assert host.calls() == ["dnf install -y haproxy"] * 2
    assert not host.confdir.exists()


def test_a_config_haproxy_refuses_leaves_the_old_one_and_haproxy_unrestarted(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    host.confdir.mkdir()
    (host.confdir / "haproxy.cfg").write_text("# the package's own config\n")
    result = host.run(rendered(host, instance_settings("BROKEN.pool.internal")))
    assert result.returncode == 1
    assert "'server-template' : invalid address: 'BROKEN'" in result.stderr, "HAProxy's own words shown"
    assert (
        "pe-lb: haproxy -c refused the rendered haproxy.cfg: "
        f"{host.confdir}/haproxy.cfg is unchanged and HAProxy was not restarted"
    ) in result.stderr
    assert (host.confdir / "haproxy.cfg").read_text() == "# the package's own config\n"
    assert "BROKEN" in (host.stubs / "checked.cfg").read_text(), "the new config was the one checked"
    assert sorted(os.listdir(host.confdir)) == ["haproxy.cfg", "pe-ca.pem"], "no temporary file left"
    assert host.calls()[-1].startswith("haproxy -c -f ")
    assert not any(call.startswith("systemctl") for call in host.calls())


def test_with_selinux_on_haproxy_may_use_the_pool_ports(tmp_path: Path) -> None:
    host = make_host(tmp_path, RHEL)
    (host.stubs / "selinux_on").touch()
    result = host.run(rendered(host))
    assert result.returncode == 0, result.stderr
    assert host.calls()[:2] == ["dnf install -y haproxy", "setsebool -P haproxy_connect_any 1"]
    assert host.calls()[2].startswith("haproxy -c -f ")


def test_refuses_to_run_without_parameters(tmp_path: Path) -> None:
    host = make_host(tmp_path)
    result = host.run(SCRIPT)
    assert result.returncode != 0
    assert "PE_LB_HAPROXY_CFG is required" in result.stderr
    assert host.calls() == []


def test_the_user_data_carries_the_config_the_ca_and_the_socket_in_front_of_the_script() -> None:
    settings = instance_settings(DISCOVERY_NAME)
    text = user_data(settings, CA + "\n\n")
    script = SCRIPT.read_text()
    assert text.startswith("#!/bin/bash\n# Parameters rendered by pe-lb.\nexport PE_LB_HAPROXY_CFG=")
    assert text.endswith(script.split("\n", 1)[1])
    assert parameters(text) == {
        "PE_LB_HAPROXY_CFG": render(settings).rstrip("\n"),
        "PE_CA_CERTIFICATE": CA.strip(),
        "PE_LB_HAPROXY_STATS_SOCKET": HAPROXY_STATS_SOCKET,
    }


def test_an_instance_uses_the_vpc_resolver_the_ca_it_writes_and_a_private_stats_port() -> None:
    timing = pe.HealthCheckTiming.every(30, 4, 5)
    settings = instance_settings(
        DISCOVERY_NAME, timing=timing, pcp_idle_timeout_seconds=1800, status_path="/status/v1/simple/x"
    )
    config = render(settings)
    assert f"nameserver resolver {pe.VPC_RESOLVER}\n" in config
    assert f"check check-ssl ca-file {HAPROXY_CA_FILE} resolvers" in config
    assert f"    bind 0.0.0.0:{pe.HAPROXY_STATS_PORT}\n    mode http\n" in config
    assert f"stats socket {HAPROXY_STATS_SOCKET} mode 600 level admin\n" in config
    assert "    user haproxy\n    group haproxy\n" in config, "HAProxy drops root once its ports are bound"
    assert f"hold valid {pe.DISCOVERY_TTL_SECONDS}s\n" in config
    assert f"server-template compile-master- 1-{pe.MAX_COMPILE_MASTERS} {DISCOVERY_NAME}:8140\n" in config
    assert "inter 30s fall 5 rise 4 check" in config
    assert "timeout tunnel 1800s" in config and "option httpchk GET /status/v1/simple/x\n" in config
    with pytest.raises(TypeError, match="stats_prot"):
        instance_settings(DISCOVERY_NAME, stats_prot=9000)


def test_the_configs_backends_are_the_ones_pe_names() -> None:
    config = render(instance_settings(DISCOVERY_NAME))
    assert re.findall(r"^backend (\S+)$", config, re.MULTILINE) == [
        pe.HAPROXY_PUPPETSERVER_BACKEND,
        pe.HAPROXY_PCP_BROKER_BACKEND,
    ]
    assert re.findall(r"^\s+default_backend (\S+)$", config, re.MULTILINE) == [
        pe.HAPROXY_PUPPETSERVER_BACKEND,
        pe.HAPROXY_PCP_BROKER_BACKEND,
    ]


def test_user_data_is_refused_over_ec2s_limit_and_says_what_takes_the_room() -> None:
    settings = instance_settings(DISCOVERY_NAME)
    room = USER_DATA_MAX_BYTES - len(user_data(settings, CA).encode())
    # Text between certificates is allowed in a PEM bundle; each x is one byte in the user data.
    at_limit = CA.strip() + "\n" + "x" * (room - 1)
    assert len(user_data(settings, at_limit).encode()) == USER_DATA_MAX_BYTES
    over = at_limit + "x"
    with pytest.raises(ValueError) as refused:
        user_data(settings, over)
    config_bytes = len(render(settings).encode())
    assert str(refused.value).startswith(
        f"the HAProxy instances' user data would be {USER_DATA_MAX_BYTES + 1} bytes, over EC2's limit of "
        f"{USER_DATA_MAX_BYTES} (counted before base64): the PE CA bundle takes {len(over)}, "
        f"haproxy.cfg {config_bytes}, "
    )
    assert str(refused.value).endswith("it must shrink by 1 bytes or more")


@pytest.mark.parametrize("ca", ["", "not a certificate", "-----BEGIN PRIVATE KEY-----\nMIIE\n"])
def test_a_ca_that_is_not_a_pem_certificate_is_refused(ca: str) -> None:
    with pytest.raises(ValueError, match="ca_certificate must be the PE CA bundle in PEM"):
        user_data(instance_settings(DISCOVERY_NAME), ca)


def _real_haproxy() -> str | None:
    # Debian puts it in /usr/sbin, off a non-root user's PATH.
    return shutil.which("haproxy", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")


def _haproxy_user() -> bool:
    try:
        pwd.getpwnam("haproxy")
    except KeyError:
        return False
    return True


@pytest.mark.skipif(_real_haproxy() is None, reason="no haproxy binary here (make test-haproxy installs it)")
@pytest.mark.skipif(not _haproxy_user(), reason="no haproxy user here (the distribution's package makes it)")
def test_real_haproxy_accepts_the_config_the_user_data_carries(tmp_path: Path) -> None:
    haproxy = _real_haproxy()
    assert haproxy is not None
    carried = parameters(user_data(instance_settings(DISCOVERY_NAME), CA))
    ca_file = tmp_path / "pe-ca.pem"
    ca_file.write_text(carried["PE_CA_CERTIFICATE"] + "\n")
    # The one absolute path HAProxy opens while checking: the CA, here in the test's folder.
    config, replaced = re.subn(
        f"ca-file {re.escape(HAPROXY_CA_FILE)} ", f"ca-file {ca_file} ", carried["PE_LB_HAPROXY_CFG"]
    )
    assert replaced == 1
    (tmp_path / "haproxy.cfg").write_text(config + "\n")
    checked = subprocess.run(
        [haproxy, "-c", "-f", str(tmp_path / "haproxy.cfg")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
