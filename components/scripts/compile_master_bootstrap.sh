#!/bin/bash
# Prepares this instance to become a PE compile master. Runs once, as root, from EC2 user
# data; components/compile_master_pool.py prepends the parameters below. The primary
# verifies and signs the request (the primary script's join); nothing here is a shared secret:
# the request proves where it comes from with the identity document AWS signs for this
# instance, which only software on this instance can read (IMDSv2).
#
#   PE_PRIMARY_HOST     the primary's FQDN; install.bash is fetched from it on 8140
#   PE_CA_CERTIFICATE   the PE CA bundle: every download from the primary is verified with it
#   PE_POOL_NAMES       every name the pool answers to (comma-separated): alt names of this node's
#                       certificate
#   PE_AUTH_ROLE        pp_auth_role trusted fact that makes PE classify a compiler
#   PE_PLATFORM_OID     private extension that tells the primary this node's platform
#   PE_IDENTITY_OID     CSR attribute carrying this instance's AWS-signed identity document
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

imds_get() {
  curl --fail --silent --show-error -H "X-aws-ec2-metadata-token: $imds_token" "$imds/latest/$1"
}

# The certname is the instance's resource name (i-0123….<region>.compute.internal, ….ec2.internal
# in us-east-1), built from the instance id and region as the primary builds it from the
# instance's ARN: one source on both sides. The hostname must agree.
instance_certname() {
  local instance_id region domain certname hostname
  instance_id=$(imds_get meta-data/instance-id)
  region=$(imds_get meta-data/placement/region)
  if [[ $region == us-east-1 ]]; then domain=ec2.internal; else domain=$region.compute.internal; fi
  certname="${instance_id,,}.$domain"
  hostname=$(imds_get meta-data/local-hostname)
  hostname=${hostname,,}
  [[ $hostname == "$certname" ]] ||
    fail "hostname $hostname is not the instance's resource name $certname: launch with resource-name hostnames"
  echo "$certname"
}

# PE's install.bash settings for this compile master, one per line (section:key=value); the
# real-Puppet tests turn the same lines into puppet.conf and csr_attributes.yaml.
install_settings() {
  local certname=$1 platform=$2 identity=$3
  echo "main:certname=${certname}"
  echo "main:dns_alt_names=puppet,${PE_POOL_NAMES}"
  echo "extension_requests:pp_auth_role=${PE_AUTH_ROLE}"
  echo "extension_requests:${PE_PLATFORM_OID}=${platform}"
  echo "custom_attributes:${PE_IDENTITY_OID}=${identity}"
}

# The public key of a PEM certificate request (from a file or stdin), to tell whose request it is.
request_key() {
  openssl req -noout -pubkey "$@" 2>/dev/null
}

# Submits the request; a failure is never hidden. A request the CA already holds counts as
# submitted only if it carries this instance's own key (the bootstrap ran before); one with
# another key means someone else holds this certname: stop and say so.
submit_request() {
  local certname=$1 attempts=$2 retry_seconds=$3 attempt output held ours
  for ((attempt = 1; attempt <= attempts; attempt++)); do
    if output=$("$puppet" ssl submit_request --color=false 2>&1); then
      echo "pe-lb: certificate request for $certname submitted"
      return 0
    fi
    ours=$(request_key -in "$("$puppet" config print hostcsr)") || ours=""
    if held=$(curl --fail --silent --show-error --cacert "$cacert" \
      "https://${PE_PRIMARY_HOST}:8140/puppet-ca/v1/certificate_request/${certname}" | request_key); then
      [[ -n $held && $held == "$ours" ]] && {
        echo "pe-lb: the CA already holds this instance's request for $certname"
        return 0
      }
      [[ -n $held ]] && fail "the CA holds a request for $certname made with another key (not this" \
        "instance's): the primary will not sign it; clean it (puppetserver ca clean --certname $certname)" \
        "and replace this instance"
    fi
    echo "pe-lb: submitting the certificate request failed (attempt $attempt of $attempts): $output" >&2
    sleep "$retry_seconds"
  done
  fail "the CA did not take the certificate request for $certname after $attempts attempts: $output"
}

main() {
  : "${PE_PRIMARY_HOST:?PE_PRIMARY_HOST is required}"
  : "${PE_CA_CERTIFICATE:?PE_CA_CERTIFICATE is required}"
  : "${PE_POOL_NAMES:?PE_POOL_NAMES is required}"
  : "${PE_AUTH_ROLE:?PE_AUTH_ROLE is required}"
  : "${PE_PLATFORM_OID:?PE_PLATFORM_OID is required}"
  : "${PE_IDENTITY_OID:?PE_IDENTITY_OID is required}"
  local attempts="${PE_INSTALL_ATTEMPTS:-60}" retry_seconds="${PE_RETRY_SECONDS:-10}"
  local imds="${PE_IMDS_URL:-http://169.254.169.254}"
  local confdir="${PE_CONFDIR:-/etc/puppetlabs/puppet}"
  local puppet="${PE_PUPPET:-/opt/puppetlabs/bin/puppet}"
  local url="https://${PE_PRIMARY_HOST}:8140/packages/current/install.bash"
  local certname platform identity cacert="$confdir/ssl/certs/ca.pem"

  imds_token=$(curl --fail --silent --show-error -X PUT \
    -H "X-aws-ec2-metadata-token-ttl-seconds: 300" "$imds/latest/api/token")
  certname=$(instance_certname)
  # AWS's PKCS#7 signature with the identity document inside, base64 without line breaks.
  identity=$(imds_get dynamic/instance-identity/pkcs7 | tr -d '[:space:]')
  [[ -n $identity ]] || fail "IMDS gave no instance identity document (dynamic/instance-identity/pkcs7)"
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
  local settings
  mapfile -t settings < <(install_settings "$certname" "$platform" "$identity")
  bash "$installer" --puppet-service-ensure stopped --puppet-service-enable false "${settings[@]}"

  if [[ -n ${PE_HIERA_YAML:-} ]]; then
    printf '%s\n' "$PE_HIERA_YAML" > "$confdir/hiera.yaml"
  fi

  submit_request "$certname" "$attempts" "$retry_seconds"
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

# Sourced by the tests for platform_tag and install_settings alone.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
