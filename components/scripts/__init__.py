"""Scripts that run on servers, kept as real files so they can be linted and tested alone."""

from pathlib import Path

SCRIPTS_DIR = Path(__file__).parent


def read_script(file_name: str) -> str:
    """The text of one script in this folder."""
    return (SCRIPTS_DIR / file_name).read_text(encoding="utf-8")
