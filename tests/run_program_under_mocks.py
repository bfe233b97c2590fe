"""Runs a Pulumi program from another folder under the mocks harness, as its own project would.

    python tests/run_program_under_mocks.py PROGRAM_DIR SITE_DIR

PROGRAM_DIR comes first on sys.path (its own packages win), then SITE_DIR (where pe-lb was
installed); pe-lb's source folder is not on the path, only tests.harness is reachable.
Prints what was declared, and where `components` and `pe_lb` came from, as JSON.
"""

import json
import runpy
import sys
from pathlib import Path

program_dir, site_dir = sys.argv[1], sys.argv[2]
project_dir = str(Path(__file__).resolve().parent.parent)
sys.path[:] = [program_dir, site_dir, *(p for p in sys.path if p not in ("", project_dir)), project_dir]
sys.path.remove(str(Path(__file__).resolve().parent))

from tests.harness import run  # noqa: E402  (after the path is arranged)

graph = run(
    lambda: runpy.run_path(str(Path(program_dir) / "__main__.py"), run_name="__main__"),
    {"sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nexample\n"},
    ("sshPrivateKey",),
)
print(
    json.dumps(
        {
            "types": sorted({r.type for r in graph.resources}),
            "outputs": graph.outputs,
            "components": sys.modules["components"].__file__,
            "pe_lb": sys.modules["pe_lb"].__file__,
            "plaintext_has_key": "example" in graph.plaintext(),
        },
        default=str,
    )
)
