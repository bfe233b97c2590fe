#!/bin/bash
# Makes this instance one of the least-connections tier's HAProxy instances. Runs once, as root,
# from EC2 user data; components/haproxy_config.py (user_data) prepends the parameters below. The
# instance is cattle: a new config is a new instance, so nothing here edits a running HAProxy.
#
#   PE_LB_HAPROXY_CFG           the whole haproxy.cfg, rendered by pe-lb
#   PE_CA_CERTIFICATE           the PE CA bundle (PEM): the health checks verify compile masters with it
#   PE_LB_HAPROXY_STATS_SOCKET  the admin socket haproxy.cfg names; its directory is made if missing
#   PE_LB_INSTALL_ATTEMPTS      how often to try installing the package (default 10): the network
#                               may come up after user data starts
#   PE_LB_RETRY_SECONDS         pause between attempts (default 10)
#   PE_LB_ROOT                  prefix of every path written or read (default empty; tests set it)
set -euo pipefail

log() {
  echo "pe-lb: $*" >&2
}

fail() {
  log "$*"
  exit 1
}

# apt-get on Debian and Ubuntu, else dnf (Amazon Linux 2023, RHEL 8/9), else yum.
package_manager() {
  local ID="" ID_LIKE=""
  # shellcheck disable=SC1090
  . "$1"
  case " $ID $ID_LIKE " in
    *" debian "* | *" ubuntu "*) echo apt-get ;;
    *) if command -v dnf >/dev/null; then echo dnf; else echo yum; fi ;;
  esac
}

install_haproxy() {
  local manager=$1 attempts=$2 retry_seconds=$3 attempt
  for ((attempt = 1; attempt <= attempts; attempt++)); do
    log "installing the distribution's haproxy package with $manager (attempt $attempt of $attempts)"
    case $manager in
      apt-get)
        if apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q haproxy; then
          return 0
        fi
        ;;
      *) if "$manager" install -y haproxy; then return 0; fi ;;
    esac
    sleep "$retry_seconds"
  done
  fail "could not install haproxy with $manager after $attempts attempts"
}

# Writes $2 to a new file in the directory $1 and prints its path: moved over its final name in the
# same directory, readers see the old file or the new one, never part of one; a file made there
# takes the directory's SELinux label.
staged() {
  local temporary
  temporary=$(mktemp "$1/.pe-lb.XXXXXX")
  printf '%s\n' "$2" >"$temporary"
  chmod 644 "$temporary"
  echo "$temporary"
}

main() {
  : "${PE_LB_HAPROXY_CFG:?PE_LB_HAPROXY_CFG is required}"
  : "${PE_CA_CERTIFICATE:?PE_CA_CERTIFICATE is required}"
  : "${PE_LB_HAPROXY_STATS_SOCKET:?PE_LB_HAPROXY_STATS_SOCKET is required}"
  local root="${PE_LB_ROOT:-}"
  local attempts="${PE_LB_INSTALL_ATTEMPTS:-10}" retry_seconds="${PE_LB_RETRY_SECONDS:-10}"
  local confdir="$root/etc/haproxy" manager ca candidate

  manager=$(package_manager "$root/etc/os-release")
  install_haproxy "$manager" "$attempts" "$retry_seconds"

  # RHEL's SELinux policy keeps HAProxy off ports it does not know (8140, 8142, the stats port).
  if command -v selinuxenabled >/dev/null && selinuxenabled; then
    log "SELinux is on: letting HAProxy bind and connect to any port (haproxy_connect_any)"
    setsebool -P haproxy_connect_any 1
  fi

  mkdir -p "$confdir"
  log "writing the PE CA bundle to $confdir/pe-ca.pem"
  ca=$(staged "$confdir" "$PE_CA_CERTIFICATE")
  mv -f "$ca" "$confdir/pe-ca.pem"
  mkdir -p "$root$(dirname "$PE_LB_HAPROXY_STATS_SOCKET")"

  # Checked before it replaces the live config: a bad one stops here, and HAProxy is not restarted.
  candidate=$(staged "$confdir" "$PE_LB_HAPROXY_CFG")
  log "checking the rendered haproxy.cfg (haproxy -c)"
  if ! haproxy -c -f "$candidate" >&2; then
    rm -f "$candidate"
    fail "haproxy -c refused the rendered haproxy.cfg: $confdir/haproxy.cfg is unchanged and HAProxy" \
      "was not restarted (replace this instance once pe-lb renders a config HAProxy accepts)"
  fi
  mv -f "$candidate" "$confdir/haproxy.cfg"
  log "wrote $confdir/haproxy.cfg"

  log "enabling and restarting haproxy"
  systemctl enable haproxy
  systemctl restart haproxy
  log "HAProxy runs the pool's config"
}

main "$@"
