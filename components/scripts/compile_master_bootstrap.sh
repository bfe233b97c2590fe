#!/bin/bash
# Joins this instance to the PE primary as a compile master. Runs once, as root, from
# EC2 user data; components/compile_master_pool.py prepends the parameters below.
#
#   PE_INSTALL_URL      the primary's agent install script (https://<primary>:8140/...)
#   PE_DNS_ALT_NAMES    comma-separated alt names for this node's certificate; must hold
#                       the pool address, or agents reject the pool's certificate
#   PE_AUTH_ROLE        pp_auth_role trusted fact that makes PE classify a compiler
#   PE_AUTOSIGN_SECRET  challenge password for policy-based autosigning (may be empty)
#   PE_INSTALL_ATTEMPTS how often to try the primary before giving up (default 60)
#   PE_RETRY_SECONDS    pause between attempts (default 10)
set -euo pipefail

: "${PE_INSTALL_URL:?PE_INSTALL_URL is required}"
: "${PE_DNS_ALT_NAMES:?PE_DNS_ALT_NAMES is required}"
: "${PE_AUTH_ROLE:?PE_AUTH_ROLE is required}"
attempts="${PE_INSTALL_ATTEMPTS:-60}"
retry_seconds="${PE_RETRY_SECONDS:-10}"

installer="$(mktemp)"
trap 'rm -f "$installer"' EXIT

# The node has no copy of the PE CA yet, so the download cannot verify the primary;
# this is how PE documents agent installs. The primary may still be booting: retry.
attempt=1
until curl --fail --silent --show-error --insecure --output "$installer" "$PE_INSTALL_URL"; do
  if (( attempt >= attempts )); then
    echo "pe-lb: could not download $PE_INSTALL_URL after $attempts attempts" >&2
    exit 1
  fi
  attempt=$(( attempt + 1 ))
  sleep "$retry_seconds"
done

settings=(
  "main:dns_alt_names=${PE_DNS_ALT_NAMES}"
  "extension_requests:pp_auth_role=${PE_AUTH_ROLE}"
)
if [[ -n "${PE_AUTOSIGN_SECRET:-}" ]]; then
  settings+=("custom_attributes:challengePassword=${PE_AUTOSIGN_SECRET}")
fi
# Keep the secret out of the environment of everything the installer starts.
unset PE_AUTOSIGN_SECRET

bash "$installer" "${settings[@]}"
echo "pe-lb: agent installed; the certificate request waits for the primary's CA"
