#!/bin/sh
# Stands in for ssh, ssh-agent and ssh-add (by the name it is run as): records its arguments and
# what it reads, as the real tool would receive them (tests/test_primary_files_check.py).
name=$(basename "$0")
{
	printf '%s' "$name"
	for a in "$@"; do printf ' [%s]' "$a"; done
	echo
} >>"$STUB_LOG"
case "$name" in
ssh-agent)
	# An agent process of its own, which the script must stop when it is done.
	sleep 300 >/dev/null 2>&1 &
	echo "$!" >"$STUB_LOG.agent"
	echo "SSH_AUTH_SOCK=$3; export SSH_AUTH_SOCK;"
	echo "SSH_AGENT_PID=$!; export SSH_AGENT_PID;"
	;;
ssh-add)
	cat >"$STUB_LOG.key"
	[ -n "$SSH_AUTH_SOCK" ] || exit 2
	;;
ssh)
	for a in "$@"; do
		case "$a" in UserKnownHostsFile=*) cp "${a#UserKnownHostsFile=}" "$STUB_LOG.known" ;; esac
	done
	if [ "${STUB_SSH_FAILS:-}" = 1 ]; then
		echo "ssh: connect to host puppet.example.com port 22: Connection refused" >&2
		exit 255
	fi
	echo '{"caCertificate": "x", "hieraYaml": "y"}'
	;;
esac
