#!/bin/sh
# pe-lb: read the primary's CA bundle and hiera.yaml again, from where `pulumi preview` or `up` runs,
# so a change since the compile masters were made is shown before anything is applied.
#
# Set in front of this text by pe_lb.primary.read_again_command: PE_LB_HOST, PE_LB_USER,
# PE_LB_KNOWN_HOST (the primary's host key line) and PE_LB_REMOTE (the primary script's `read`).
# The SSH private key comes on standard input and goes only to a private ssh-agent, never to a
# file, an argument or the environment.
#
# Prints "OK" and the script's JSON, or "FAILED" and why; exits 0 either way: a primary that cannot
# be reached makes this check say so, never the deployment fail.
set -u

fail() {
	echo FAILED
	echo "$1"
	exit 0
}

for tool in ssh ssh-agent ssh-add; do
	command -v "$tool" >/dev/null 2>&1 || fail "$tool is not installed where pulumi runs"
done
work=$(mktemp -d) || fail "no temporary directory"
agent_pid=""
cleanup() {
	[ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM
printf '%s %s\n' "$PE_LB_HOST" "$PE_LB_KNOWN_HOST" >"$work/known_hosts"

agent=$(ssh-agent -s -a "$work/agent.sock") || fail "ssh-agent did not start"
agent_pid=$(printf '%s\n' "$agent" | sed -n 's/^SSH_AGENT_PID=\([0-9]*\);.*/\1/p')
SSH_AUTH_SOCK="$work/agent.sock"
export SSH_AUTH_SOCK
# The key expires from the agent within two minutes even if this script is killed before cleanup.
ssh-add -q -t 120 - 2>"$work/error" || fail "ssh-add refused the key: $(head -c 300 "$work/error")"

# Only these options, not the user's ~/.ssh/config: the connection pulumi-command makes, no other.
# A primary that accepts and then stalls is given up within about 45 seconds.
if ssh -F /dev/null -n -T -o BatchMode=yes -o StrictHostKeyChecking=yes \
	-o UserKnownHostsFile="$work/known_hosts" -o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=15 \
	-o ServerAliveInterval=10 -o ServerAliveCountMax=3 -l "$PE_LB_USER" "$PE_LB_HOST" "$PE_LB_REMOTE" \
	>"$work/out" 2>"$work/error"; then
	echo OK
	cat "$work/out"
else
	fail "ssh $PE_LB_USER@$PE_LB_HOST: $(tail -c 300 "$work/error" | tr '\n' ' ')"
fi
