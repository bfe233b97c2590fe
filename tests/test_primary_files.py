"""Files the primary script changes: under a lock, replaced atomically, nothing lost."""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from components.scripts import SCRIPTS_DIR
from components.scripts.pe_primary.files import update_json, update_text
from components.scripts.pe_primary.postgres import PostgresAllowlist
from tests.test_primary_script import PYTHON_36

PE_LINES = [
    "# PE-PostgreSQL maps, managed by Puppet",
    "pe-postgres-map pe-postgres pe-postgres",
    "pe-puppetdb-pe-puppetdb-map puppet.example.com pe-puppetdb",
    "pe-orchestrator-map puppet.example.com pe-orchestrator",
    "pe-classifier-map puppet.example.com pe-classifier",
]
NOBODY = 65534

CHANGE_ONE = """
import sys
sys.path.insert(0, sys.argv[1])
from pe_primary.postgres import PostgresAllowlist
allowlist = PostgresAllowlist(sys.argv[2], "true")
allowlist.set(sys.argv[3], sys.argv[4] == "join")
"""


def certname(index: int) -> str:
    return f"i-0{index:016x}.eu-west-1.compute.internal"


def change_concurrently(pg_ident: Path, changes: list[tuple[str, str]], python: str) -> None:
    def run(change: tuple[str, str]) -> subprocess.CompletedProcess[str]:
        action, name = change
        return subprocess.run(
            [python, "-c", CHANGE_ONE, str(SCRIPTS_DIR), str(pg_ident), name, action],
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": os.environ["PATH"]},  # no LANG or LC_ALL, as over non-interactive SSH
        )

    with ThreadPoolExecutor(len(changes)) as pool:
        results = list(pool.map(run, changes))
    assert all(result.returncode == 0 for result in results), [r.stderr for r in results if r.returncode]


@pytest.mark.parametrize("python", [sys.executable, PYTHON_36], ids=["this-python", "python-3.6"])
def test_twenty_concurrent_joins_and_leaves_lose_no_line(tmp_path: Path, python: str | None) -> None:
    if python is None:
        pytest.skip("no Python 3.6 on this machine")
    pg_ident = tmp_path / "15" / "data" / "pg_ident.conf"
    pg_ident.parent.mkdir(parents=True)
    leaving = [certname(index) for index in range(100, 110)]
    staying = PE_LINES + [line for name in leaving for line in PostgresAllowlist.lines(name)]
    pg_ident.write_text("\n".join(staying) + "\n", encoding="utf-8")
    pg_ident.chmod(0o640)
    os.chown(pg_ident, NOBODY, NOBODY)
    joining = [certname(index) for index in range(20)]

    change_concurrently(
        pg_ident, [("join", name) for name in joining] + [("leave", name) for name in leaving], python
    )

    lines = pg_ident.read_text(encoding="utf-8").splitlines()
    assert lines[: len(PE_LINES)] == PE_LINES, "PE's own lines stay, in order"
    for name in joining:
        for line in PostgresAllowlist.lines(name):
            assert lines.count(line) == 1, line
    assert not any(name in line for name in leaving for line in lines)
    assert len(lines) == len(PE_LINES) + 3 * len(joining)
    status = pg_ident.stat()
    assert (status.st_mode & 0o777, status.st_uid, status.st_gid) == (0o640, NOBODY, NOBODY)
    assert sorted(path.name for path in pg_ident.parent.iterdir()) == ["pg_ident.conf", "pg_ident.conf.lock"]


def test_a_change_that_changes_nothing_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("same\n")
    before = path.stat().st_ino
    assert update_text(str(path), lambda text: text) is False
    assert path.stat().st_ino == before
    assert update_text(str(path), lambda text: text + "more\n") is True
    assert path.stat().st_ino != before, "replaced by rename, never rewritten in place"
    assert path.read_text() == "same\nmore\n"


def test_a_failed_change_leaves_the_file_and_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("kept\n")

    def broken(text: str) -> str:
        raise RuntimeError("change failed")

    with pytest.raises(RuntimeError):
        update_text(str(path), broken)
    assert path.read_text() == "kept\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "file.lock"]


def test_json_records_are_created_and_updated_under_the_lock(tmp_path: Path) -> None:
    path = str(tmp_path / "record.json")
    assert update_json(path, lambda record: {**record, "a": 1}) == {"a": 1}
    assert update_json(path, lambda record: {**record, "b": "ü"}) == {"a": 1, "b": "ü"}
    assert Path(path).read_text(encoding="utf-8") == '{"a": 1, "b": "\\u00fc"}\n'
