"""The image holds what its commands import. The Dockerfile names the directories it copies
one by one, so a package added to the repository is missing from the image until someone adds
it there too: `demo/` was, and every `waystation` command in the image failed at import. CI
builds no images; these tests read the Dockerfile's COPY lines instead, and start the command
line from exactly those files."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Run from a copy of the image's files alone: the editable install's finder, which would find
# every package in the repository, is taken off the import machinery first.
ISOLATED_START = """
import sys
def ours(hook): return "__editable__" in getattr(hook, "__module__", "")
sys.meta_path[:] = [finder for finder in sys.meta_path if not ours(finder)]
sys.path_hooks[:] = [hook for hook in sys.path_hooks if not ours(hook)]
sys.path_importer_cache.clear()
sys.path.insert(0, ".")
import services.cli, services.system, streams.faust_app, demo
for module in (demo, services.cli):
    assert module.__file__.startswith(sys.argv[1]), module.__file__
sys.argv = ["waystation", "--help"]
services.cli.main()
"""


def _copied() -> list[str]:
    """The repository paths the Dockerfile copies into the image."""
    sources = []
    for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            sources.extend(words[1:-1])
    return sources


PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _our_packages() -> set[str]:
    return set(PYPROJECT["tool"]["importlinter"]["root_packages"])


def _imported(path: Path) -> set[str]:
    """Top-level names of every absolute import in a module, at any depth (lazy ones too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_image_copies_every_package_its_code_imports() -> None:
    copied = set(_copied())
    ours = _our_packages()
    missing: dict[str, set[str]] = {}
    for package in sorted(ours & copied):
        for path in (ROOT / package).rglob("*.py"):
            for name in _imported(path) & ours - copied:
                missing.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    assert not missing, f"imported in the image but not copied into it: {missing}"


def test_the_image_packages_every_package_pyproject_installs() -> None:
    installed = {
        p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert installed <= set(_copied()), f"not copied: {installed - set(_copied())}"


def test_the_command_line_starts_from_the_image_files_alone(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    for source in _copied():
        if (ROOT / source).is_dir():
            shutil.copytree(
                ROOT / source, app / source, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(ROOT / source, app / source)
    run = subprocess.run(
        [sys.executable, "-I", "-c", ISOLATED_START, str(app)],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "worker" in run.stdout  # the command the compose workers run is listed
