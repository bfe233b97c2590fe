#!/bin/bash
# Prepares this instance to become a PE compile master. Runs once, as root, from EC2 user
# data; components/compile_master_pool.py prepends the parameters below. The primary
# verifies and signs the request (pe_primary.py join); nothing here is a shared secret.
#
#   PE_PRIMARY_HOST     the primary's FQDN; install.bash is fetched from it on 8140
#   PE_CA_CERTIFICATE   the PE CA bundle: every download from the primary is verified with it
#   PE_POOL_ADDRESS     the pool's DNS name, an alt name of this node's certificate
#   PE_AUTH_ROLE        pp_auth_role trusted fact that makes PE classify a compiler
#   PE_PLATFORM_OID     private extension that tells the primary this node's platform
#   PE_HIERA_YAML       the primary's global hiera.yaml (may be empty), as peadm copies it
#   PE_INSTALL_ATTEMPTS how often to try the primary before giving up (default 60)
#   PE_RETRY_SECONDS    pause between attempts (default 10)
set -euo pipefail

# OS family, major release and architecture, e.g. el-9-x86_64; pe_primary.py's
# platform_tag computes the same from the primary's /etc/os-release.
platform_tag() {
  local ID="" ID_LIKE="" VERSION_ID="" family major
  # shellcheck disable=SC1090
  . "$1"
  case "$ID" in
    amzn) family=amazon ;;
    ubuntu | debian | sles) family=$ID ;;
    *)
      case " $ID $ID_LIKE " in
        *" rhel "* | *" fedora "* | *" centos "*) family=el ;;
        *" suse "* | *" sles "*) family=sles ;;
        *) family=$ID ;;
      esac
      ;;
  esac
  if [[ $family == ubuntu ]]; then major=$VERSION_ID; else major=${VERSION_ID%%.*}; fi
  echo "${family}-${major}-$2"
}

fail() {
  echo "pe-lb: $*" >&2
  exit 1
}

# The certname is the instance's resource-name hostname (i-0123….<region>.compute.internal):
# unique, never given to a later instance, and resolvable by the primary inside the VPC.
instance_certname() {
  local token name
  token=$(curl --fail --silent --show-error -X PUT \
    -H "X-aws-ec2-metadata-token-ttl-seconds: 300" "$imds/latest/api/token")
  name=$(curl --fail --silent --show-error -H "X-aws-ec2-metadata-token: $token" \
    "$imds/latest/meta-data/local-hostname")
  name=${name,,}
  [[ $name == i-* ]] || fail "hostname $name is not the instance id: launch with resource-name hostnames"
  echo "$name"
}

main() {
  : "${PE_PRIMARY_HOST:?PE_PRIMARY_HOST is required}"
  : "${PE_CA_CERTIFICATE:?PE_CA_CERTIFICATE is required}"
  : "${PE_POOL_ADDRESS:?PE_POOL_ADDRESS is required}"
  : "${PE_AUTH_ROLE:?PE_AUTH_ROLE is required}"
  : "${PE_PLATFORM_OID:?PE_PLATFORM_OID is required}"
  local attempts="${PE_INSTALL_ATTEMPTS:-60}" retry_seconds="${PE_RETRY_SECONDS:-10}"
  local imds="${PE_IMDS_URL:-http://169.254.169.254}"
  local confdir="${PE_CONFDIR:-/etc/puppetlabs/puppet}"
  local puppet="${PE_PUPPET:-/opt/puppetlabs/bin/puppet}"
  local url="https://${PE_PRIMARY_HOST}:8140/packages/current/install.bash"
  local certname platform cacert="$confdir/ssl/certs/ca.pem"

  certname=$(instance_certname)
  platform=$(platform_tag "${PE_OS_RELEASE:-/etc/os-release}" "$(uname -m)")
  echo "pe-lb: certname $certname, platform $platform"

  # Puppet's localcacert: curl, install.bash and the agent all trust this CA and no other.
  mkdir -p "$(dirname "$cacert")"
  printf '%s\n' "$PE_CA_CERTIFICATE" > "$cacert"
  chmod 644 "$cacert"

  local attempt=1
  # Global: the EXIT trap runs after main has returned.
  installer="$(mktemp)"
  trap 'rm -f "${installer:-}"' EXIT
  # The primary may still be booting: retry.
  until curl --fail --silent --show-error --cacert "$cacert" --output "$installer" "$url"; do
    if ((attempt >= attempts)); then
      fail "could not download $url after $attempts attempts (verified against the PE CA)"
    fi
    attempt=$((attempt + 1))
    sleep "$retry_seconds"
  done

  # The agent stays stopped until the primary has signed and the first run is done.
  bash "$installer" --puppet-service-ensure stopped --puppet-service-enable false \
    "main:certname=${certname}" \
    "main:dns_alt_names=puppet,${PE_POOL_ADDRESS}" \
    "extension_requests:pp_auth_role=${PE_AUTH_ROLE}" \
    "extension_requests:${PE_PLATFORM_OID}=${platform}"

  if [[ -n ${PE_HIERA_YAML:-} ]]; then
    printf '%s\n' "$PE_HIERA_YAML" > "$confdir/hiera.yaml"
  fi

  "$puppet" ssl submit_request || echo "pe-lb: request already submitted"
  echo "pe-lb: waiting for the primary to verify and sign $certname (pe-lb join)"
  # The first run starts as soon as the certificate is signed; the join waits for it.
  local rc
  for attempt in 1 2 3; do
    rc=0
    "$puppet" agent --onetime --no-daemonize --no-splay --waitforcert 15 --detailed-exitcodes --verbose || rc=$?
    if ((rc == 0 || rc == 2)); then break; fi
    echo "pe-lb: Puppet run $attempt exited $rc; trying again"
    sleep "$retry_seconds"
  done
  "$puppet" resource service puppet ensure=running enable=true
  echo "pe-lb: $certname is a compile master; the agent service runs"
}

# Sourced by the tests for platform_tag alone.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
