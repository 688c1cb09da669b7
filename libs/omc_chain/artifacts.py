"""The compiled contracts, committed beside this module, and the check that they are fresh.

    load_artifact("DemoToken") -> Artifact(contract, abi, bytecode, deployed_bytecode, ...)
    check_artifacts()          -> [] when every artifact matches its source, else the problems
    build_artifacts()          -> runs the pinned solc (deploy/contracts, npm) and checks

Sources live in deploy/contracts/src/*.sol; deploy/contracts/package.json pins the compiler
(npm `solc`, an exact version) and deploy/contracts/build.mjs compiles them with fixed settings
(no metadata hash, no CBOR trailer), so the same sources always give the same bytes. Each
artifact records the SHA-256 of its source and the compiler version: `check_artifacts` compares
them with the sources and the pin, so nobody edits one without rebuilding the other.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omc_chain.errors import ArtifactsStale

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS_DIR = REPO_ROOT / "deploy" / "contracts"
CONTRACTS = ("AnchorRegistry", "DemoToken")


@dataclass(frozen=True)
class Artifact:
    """One compiled contract."""

    contract: str
    source: str                 # path from the repository root
    source_sha256: str
    solc_version: str
    settings: dict[str, Any]
    abi: list[dict[str, Any]]
    bytecode: str               # init code, 0x hex (constructor arguments are appended)
    deployed_bytecode: str      # runtime code, 0x hex (immutables zeroed)

    def function(self, name: str) -> dict[str, Any]:
        """The ABI fragment of the function `name` (the first one, when overloaded)."""
        for item in self.abi:
            if item.get("type") == "function" and item.get("name") == name:
                return item
        raise KeyError(f"{self.contract} has no function {name}")

    def constructor_types(self) -> list[str]:
        for item in self.abi:
            if item.get("type") == "constructor":
                return [p["type"] for p in item.get("inputs", [])]
        return []


def load_artifact(name: str, directory: Path = ARTIFACTS_DIR) -> Artifact:
    """The committed artifact of contract `name` (e.g. "DemoToken")."""
    path = directory / f"{name}.json"
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactsStale(f"no artifact for {name} at {path}; run `omc chain build`") from None
    return Artifact(**document)


def pinned_solc_version() -> str:
    """The exact solc version deploy/contracts/package.json pins."""
    package = json.loads((CONTRACTS_DIR / "package.json").read_text())
    return package["dependencies"]["solc"]


def check_artifacts(directory: Path = ARTIFACTS_DIR) -> list[str]:
    """Every mismatch between the committed artifacts, their sources and the pinned compiler
    (an empty list: all fresh). Needs neither node nor npm."""
    problems = []
    pinned = pinned_solc_version()
    sources = sorted((CONTRACTS_DIR / "src").glob("*.sol"))
    expected = {p.stem for p in sources}
    if expected != set(CONTRACTS):
        problems.append(f"sources {sorted(expected)} differ from the known contracts "
                        f"{list(CONTRACTS)}")
    for name in sorted(expected | set(CONTRACTS)):
        try:
            artifact = load_artifact(name, directory)
        except ArtifactsStale as error:
            problems.append(str(error))
            continue
        source = REPO_ROOT / artifact.source
        if not source.exists():
            problems.append(f"{name}: its source {artifact.source} is gone")
            continue
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        if digest != artifact.source_sha256:
            problems.append(f"{name}: {artifact.source} changed since the artifact was built "
                            f"(sha256 {digest[:12]}…, artifact has {artifact.source_sha256[:12]}…)")
        if not artifact.solc_version.startswith(f"{pinned}+"):
            problems.append(f"{name}: built with solc {artifact.solc_version}, "
                            f"package.json pins {pinned}")
    return problems


def build_artifacts(out: Path = ARTIFACTS_DIR, report=print) -> None:
    """Install the pinned compiler when needed, compile, write artifacts to `out`, check."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise ArtifactsStale("building the contracts needs node and npm (Node 20) on PATH")
    if not (CONTRACTS_DIR / "node_modules" / "solc").exists():
        report("installing the pinned solc (npm ci in deploy/contracts) ...")
        _run([npm, "ci", "--no-audit", "--no-fund"])
    for line in _run([node, "build.mjs", "--out", str(out)]).splitlines():
        report(line)
    problems = check_artifacts(out)
    if problems:
        raise ArtifactsStale("the build left stale artifacts:\n" + "\n".join(problems))


def _run(command: list[str]) -> str:
    done = subprocess.run(command, cwd=CONTRACTS_DIR, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ArtifactsStale(f"`{' '.join(command[-3:])}` failed in {CONTRACTS_DIR}:\n"
                             f"{(done.stderr or done.stdout)[-2000:]}")
    return done.stdout
