"""Run by .ci/wheel-check inside a fresh virtualenv holding only the project's wheel.

    python wheel_check.py WHEEL CHECKOUT

Fails (exit 1, every problem listed) when a non-Python file tracked under a package is not in
the wheel, a module does not import, a module is imported from the checkout instead of the
wheel, the entrypoint names a missing service module, or the schemas, topic catalogue, prompt,
contract artifacts or migrations cannot be read the way the services read them.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
import zipfile
from pathlib import Path

OPTIONAL: set[str] = set()  # services the entrypoint names before they land


def main(wheel: str, checkout: str) -> int:
    problems: list[str] = []
    root = Path(checkout)
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = subprocess.run(["git", "-C", checkout, "ls-files", "libs", "services", "projections"],
                             capture_output=True, text=True, check=True).stdout.split()
    data = 0
    for path in tracked:
        parts = Path(path).parts
        if path.endswith(".py") or len(parts) < 3 or not parts[1].startswith("omc_"):
            continue
        data += 1
        if "/".join(parts[1:]) not in names:
            problems.append(f"{path} is not in the wheel (add it to package-data)")

    modules = 0
    for package in sorted({Path(p).parts[1] for p in tracked if Path(p).parts[1:2]
                           and Path(p).parts[1].startswith("omc_")}):
        try:
            top = importlib.import_module(package)
        except Exception as error:
            problems.append(f"import {package}: {type(error).__name__}: {error}")
            continue
        for info in pkgutil.walk_packages(top.__path__, f"{package}."):
            if info.name.endswith("__main__"):
                continue
            try:
                module = importlib.import_module(info.name)
            except Exception as error:
                problems.append(f"import {info.name}: {type(error).__name__}: {error}")
                continue
            modules += 1
            where = Path(getattr(module, "__file__", "") or "")
            if where.is_relative_to(root):
                problems.append(f"{info.name} was imported from the checkout ({where})")

    from omc_cli.service import MODULES

    for name, module in MODULES.items():
        if module not in OPTIONAL and importlib.util.find_spec(module) is None:
            problems.append(f"the entrypoint's {name} runs {module}, which is not installed")

    from omc_chain.artifacts import ARTIFACTS_DIR
    from omc_events.catalogue import Catalogue
    from omc_events.schemas import SCHEMAS_DIR, SchemaSet
    from omc_llm.prompt import load_template
    from omc_store.migrate import discover

    if Path(os.environ["OMC_SCHEMAS_DIR"]) != SCHEMAS_DIR:
        problems.append(f"OMC_SCHEMAS_DIR is not honoured: schemas read from {SCHEMAS_DIR}")
    schemas = len(SchemaSet.load().named)
    topics = len(Catalogue.load().topics)
    artifacts = len(list(ARTIFACTS_DIR.glob("*.json")))
    from omc_cli.migrations import components

    migrations = []
    for component, directory in components():  # what `omc db migrate` (the image's job) applies
        found = discover(component, directory)
        migrations += found
        if not found:
            problems.append(f"the {component} migrations are not in the wheel ({directory})")
    prompts = [path.stem for path in
               (Path(importlib.import_module("omc_llm").__file__).parent / "prompts").glob("*.txt")]
    for name in prompts:
        load_template(name)
    if not prompts:
        problems.append("no prompt templates in the wheel")
    if not artifacts:
        problems.append(f"no contract artifacts in {ARTIFACTS_DIR}")

    for problem in problems:
        print(f"wheel-check: {problem}", file=sys.stderr)
    print(f"wheel-check: {Path(wheel).name}: {data} data files, {modules} modules imported, "
          f"{schemas} named schemas, {topics} topics, {artifacts} artifacts, "
          f"{len(migrations)} migrations, {len(prompts)} prompts; {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
