"""`read`: the PE CA bundle, the global hiera.yaml and the platform, for compile masters' user data."""

import json
import os
import sys

from .files import read_text
from .primary import Primary


def read(primary: Primary) -> None:
    hiera_path = primary.args.hiera_yaml
    answer = {
        "caCertificate": read_text(primary.settings.localcacert),
        "hieraYaml": read_text(hiera_path) if os.path.exists(hiera_path) else "",
        "platform": primary.platform(),
    }
    # ASCII JSON: whatever the locale of a non-interactive SSH session, stdout can carry it.
    sys.stdout.write(json.dumps(answer, ensure_ascii=True) + "\n")
    sys.stdout.flush()
