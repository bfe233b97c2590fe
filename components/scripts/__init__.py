"""Scripts that run on servers, kept as real files so they can be linted and tested alone."""

import functools
import hashlib
from pathlib import Path

SCRIPTS_DIR = Path(__file__).parent
PRIMARY_PACKAGE = "pe_primary"
"""The primary's steps, one module per concern (components/scripts/pe_primary/)."""

_BUNDLE_LOADER = '''
def _serve_modules():
    """Import pe_primary.* from _SOURCES: the package travels as this one file."""
    import importlib.abc
    import importlib.util

    class Loader(importlib.abc.Loader):
        def __init__(self, name):
            self.name = name

        def create_module(self, spec):
            return None

        def exec_module(self, module):
            path = self.name.replace(".", "/") + ("/__init__.py" if self.name == PACKAGE else ".py")
            exec(compile(_SOURCES[self.name], path, "exec"), module.__dict__)

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):
            if fullname not in _SOURCES:
                return None
            return importlib.util.spec_from_loader(fullname, Loader(fullname), is_package=fullname == PACKAGE)

    sys.meta_path.insert(0, Finder())


_serve_modules()
from pe_primary.__main__ import main  # noqa: E402

sys.exit(main())
'''


def read_script(file_name: str) -> str:
    """The text of one script in this folder."""
    return (SCRIPTS_DIR / file_name).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=None)
def primary_script() -> str:
    """The primary's steps as one Python 3.6 file (``python3 - ACTION ...`` reads it on stdin).

    Built from the modules of components/scripts/pe_primary/: their sources in a dict and
    a finder that imports them from it, so the primary needs nothing installed.
    """
    sources = {}
    for path in sorted((SCRIPTS_DIR / PRIMARY_PACKAGE).glob("*.py")):
        module = PRIMARY_PACKAGE if path.stem == "__init__" else f"{PRIMARY_PACKAGE}.{path.stem}"
        sources[module] = path.read_text(encoding="utf-8")
    lines = [
        "#!/usr/bin/env python3",
        "# pe-lb's steps on the PE primary, built from components/scripts/pe_primary/ (edit those).",
        "import sys",
        f"PACKAGE = {PRIMARY_PACKAGE!r}",
        "_SOURCES = {",
        *(f"    {name!r}: {text!r}," for name, text in sources.items()),
        "}",
    ]
    return "\n".join(lines) + "\n" + _BUNDLE_LOADER


def primary_script_version() -> str:
    """The SHA-256 of the primary script: the name it is installed under on the primary."""
    return hashlib.sha256(primary_script().encode("utf-8")).hexdigest()
