"""pe-lb policy pack: `pulumi preview --policy-pack policy` (run from the project root).

Only builds the PolicyPack; its constructor serves the engine and never returns.
"""

import sys
from pathlib import Path

# The rules share the ports and status path with the program (components/pe.py).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import PolicyPack

from policy.rules import RULES

PolicyPack(name="pe-lb-policy", policies=[rule.build() for rule in RULES])
