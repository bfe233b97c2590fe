"""The real-Puppet tier: the primary script against open-source Puppet 7 (Debian 12), `make test-puppet`."""
