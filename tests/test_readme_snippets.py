"""Every program the README and the examples print runs as printed.

Each ```python block of README.md and examples/python run under the Pulumi mocks against pe-lb
installed the way examples/python/requirements.txt installs it; each ```yaml block of README.md
and examples/yaml are checked against the component schema, as tests/test_schema.py does.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import SSH_KEY
from tests.harness import PROJECT_DIR
from tests.packaging import COMPONENTS, component_schema, install_a_copy

README = PROJECT_DIR / "README.md"
COMPONENT_TYPES = {f"pe-lb:index:{c.__name__}" for c in COMPONENTS} - {
    "pe-lb:index:PoolHealthGate",
    "pe-lb:index:PoolDnsNames",
}


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", README.read_text(), flags=re.M | re.S)


# What tests/run_program_under_mocks.py does, for a program that need not have a components package.
RUNNER = """
import json, runpy, sys
program, site, project, key = sys.argv[1:]
sys.path[:] = [program, site, *(p for p in sys.path if p not in ("", project)), project]
from tests.harness import run
graph = run(lambda: runpy.run_path(program + "/__main__.py", run_name="__main__"),
            {"sshPrivateKey": key}, ("sshPrivateKey",))
print(json.dumps({"types": sorted({r.type for r in graph.resources}), "outputs": graph.outputs,
                  "pe_lb": sys.modules["pe_lb"].__file__,
                  "plaintext_has_key": key.splitlines()[1] in graph.plaintext()}, default=str))
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pe-lb installed by examples/python/requirements.txt, from a copy of this folder, as pip runs it
    there (Pulumi's pip toolchain runs `pip install -r requirements.txt` in the program's folder)."""
    return install_a_copy(tmp_path_factory.mktemp("readme"), requirements_of="examples/python")


def run_program(program: Path, site: Path) -> dict[str, Any]:
    run = subprocess.run(
        [sys.executable, "-c", RUNNER, str(program), str(site), str(PROJECT_DIR), SSH_KEY],
        cwd=program, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def test_the_readme_has_python_snippets() -> None:
    assert blocks("python")


@pytest.mark.parametrize(
    "snippet",
    [pytest.param(text, id=f"README.md python block {n}") for n, text in enumerate(blocks("python"), 1)],
)
def test_each_python_snippet_runs_as_printed(snippet: str, site: Path, tmp_path: Path) -> None:
    program = tmp_path / "program"
    program.mkdir()
    (program / "__main__.py").write_text(snippet)
    result = run_program(program, site)
    assert result["pe_lb"] == str(site / "pe_lb" / "__init__.py")
    assert set(result["types"]) >= COMPONENT_TYPES
    assert not result["plaintext_has_key"]


def test_the_python_example_runs_with_its_own_requirements(site: Path, tmp_path: Path) -> None:
    program = tmp_path / "my-program"
    shutil.copytree(PROJECT_DIR / "examples" / "python", program)
    result = run_program(program, site)
    assert result["pe_lb"] == str(site / "pe_lb" / "__init__.py")
    assert set(result["types"]) >= COMPONENT_TYPES
    assert len(result["outputs"]["compileMasterCertnames"]) == 3
    assert not result["plaintext_has_key"]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return component_schema()


YAML_PROGRAMS = [
    *((f"README.md yaml block {n}", README.parent, text) for n, text in enumerate(blocks("yaml"), 1)),
    ("examples/yaml/Pulumi.yaml", PROJECT_DIR / "examples" / "yaml",
     (PROJECT_DIR / "examples" / "yaml" / "Pulumi.yaml").read_text()),
]  # fmt: skip


@pytest.mark.parametrize(("where", "base", "text"), YAML_PROGRAMS, ids=[p[0] for p in YAML_PROGRAMS])
def test_each_yaml_program_uses_only_what_the_schema_offers(
    schema: dict[str, Any], where: str, base: Path, text: str
) -> None:
    program = yaml.safe_load(text)
    resources = program.get("resources", {})
    for name, resource in resources.items():
        spec = schema["resources"].get(resource["type"])
        assert spec is not None, (where, name, resource["type"])
        given = set(resource.get("properties", {}))
        assert given <= set(spec["inputProperties"]), (where, name, given - set(spec["inputProperties"]))
        assert set(spec.get("requiredInputs", [])) <= given, (where, name)
    access = set(schema["types"]["pe-lb:index:PrimaryAccessArgs"]["properties"])
    variables = program.get("variables", {})
    for resource in resources.values():
        primary = resource.get("properties", {}).get("primary")
        if isinstance(primary, dict):
            assert set(primary) <= access, where
        elif isinstance(primary, str):
            assert set(variables[primary.strip("${}")]) <= access, where
    known = set(program.get("config", {})) | set(variables) | set(resources)
    for reference in re.findall(r"\$\{([^}]+)\}", text):
        root, _, output = reference.partition(".")
        assert root in known, (where, reference)
        if output and root in resources:
            token = resources[root]["type"]
            assert output in schema["resources"][token]["properties"], (where, reference)
    for package, source in program.get("packages", {}).items():
        assert package == "pe-lb" and (base / source / "PulumiPlugin.yaml").exists(), (where, source)
