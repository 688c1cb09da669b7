"""Released versions of the schemas, read from git history (what `omc schemas check` compares
against). A version is released once committed: every commit that touched schemas/avro is
read, and each record's distinct standalone schemas are collected in commit order."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from omc_config.settings import REPO_ROOT
from omc_events.schemas import SchemaError, SchemaSet

AVRO = "schemas/avro"


def released(repo: Path = REPO_ROOT, *, until: str = "HEAD") -> dict[str, list[str]]:
    """Each record's distinct standalone schema JSONs, oldest first, over `until`'s history."""
    commits = _git(repo, "log", "--reverse", "--format=%H", until, "--", AVRO).split()
    versions: dict[str, list[str]] = {}
    for commit in commits:
        try:
            schemas = _load_at(repo, commit)
        except SchemaError:
            continue  # a commit whose schemas did not load was never a usable release
        for name in schemas:
            text = schemas.standalone_json(name)
            seen = versions.setdefault(name, [])
            if not seen or seen[-1] != text:
                seen.append(text)
    return versions


def _load_at(repo: Path, commit: str) -> SchemaSet:
    files = _git(repo, "ls-tree", "-r", "--name-only", commit, "--", AVRO).split()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in files:
            if name.endswith(".avsc"):
                target = root / Path(name).relative_to(AVRO)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(_git(repo, "show", f"{commit}:{name}"))
        return SchemaSet.load(root)


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                          check=True).stdout
