"""The real-HAProxy tier: Debian's HAProxy with the rendered haproxy.cfg, Debian's dnsmasq as the
VPC resolver, stub compile masters on 127.0.0.x.

Collected only under `make test-haproxy` (which sets PE_LB_REAL_HAPROXY=1 and installs the
packages): `make test` leaves this folder alone.
"""

import os

ENABLED = os.environ.get("PE_LB_REAL_HAPROXY") == "1"
collect_ignore_glob = [] if ENABLED else ["test_*.py"]
