"""PE's names and ports as the primary script needs them.

The script runs alone on the primary, so it keeps its own copies of what
components/pe.py knows; a test checks the two agree.
"""

PUPPET = "/opt/puppetlabs/bin/puppet"
PUPPETSERVER_PORT = 8140
PCP_BROKER_PORT = 8142
CLASSIFIER_PORT = 4433
PUPPETDB_PORT = 8081
PE_MASTER_GROUP = "PE Master"
PE_INFRASTRUCTURE_AGENT_GROUP = "PE Infrastructure Agent"
PE_AGENT_GROUP = "PE Agent"
PE_REPO_CLASS = "pe_repo"
PE_REPO_PARAMETER = "compile_master_pool_address"
AGENT_PROFILE = "puppet_enterprise::profile::agent"
COMPILER_AUTH_ROLE = "pe_compiler"

OID_COMMON_NAME = "2.5.4.3"
OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14"
OID_SUBJECT_ALT_NAME = "2.5.29.17"
OID_PP_AUTH_ROLE = "1.3.6.1.4.1.34380.1.3.13"
OID_PLATFORM = "1.3.6.1.4.1.34380.1.2.6099.1"
"""pe-lb's private extension (Puppet's ppPrivCertExt arc): the compile master's platform."""
OID_INSTANCE_IDENTITY = "1.3.6.1.4.1.34380.1.2.6099.2"
"""pe-lb's CSR attribute (not an extension: never copied into the certificate): the instance's
EC2 identity document with AWS's PKCS#7 signature, as IMDS serves it."""

EXTENSION_NAMES = {
    OID_SUBJECT_ALT_NAME: "subjectAltName",
    OID_PP_AUTH_ROLE: "pp_auth_role",
    OID_PLATFORM: "pe-lb platform",
    "1.3.6.1.4.1.34380.1.3.39": "pp_cli_auth",
    "2.5.29.19": "basicConstraints",
    "2.5.29.15": "keyUsage",
    "2.5.29.37": "extendedKeyUsage",
}
"""Names for the extensions a message may mention (others are shown as their OID)."""

EXPECTED_EXTENSIONS = (OID_SUBJECT_ALT_NAME, OID_PP_AUTH_ROLE, OID_PLATFORM)
"""A compile master's request asks for exactly these, each once: nothing else is signed."""

CA_CONF_SETTINGS = ("allow-subject-alt-names", "allow-authorization-extensions")
"""What Puppet Server's CA must allow to sign a compiler's request (alt names, pp_auth_role)."""

POSTGRESQL_MAPS = (
    ("pe-puppetdb-pe-puppetdb-map", "pe-puppetdb"),
    ("pe-puppetdb-pe-puppetdb-migrator-map", "pe-puppetdb-migrator"),
    ("pe-puppetdb-pe-puppetdb-read-map", "pe-puppetdb-read"),
)
"""The pg_ident.conf lines peadm's add_compilers writes for each compiler's PuppetDB."""

PUPPET_RUN_OK = (0, 2)
"""puppet agent --detailed-exitcodes: 0 nothing changed, 2 changes applied."""
