"""The container entrypoint: run any service of the project by name.

    python -m omc_cli.service NAME [ARGS ...]

NAME is a long-running service (gateway, runtime, proj-mysql, proj-redis, proj-proofs,
txmanager, watcher, notary, registry), run as `python -m <module> ARGS` in place of this
process (exec, so it is PID 1 and gets SIGTERM itself), or a one-shot job: `migrate`
(`omc db migrate`), `topics` (`omc topics apply`), `dev-key` (anvil's public development key
into OMC_STACK_DIR, chain 31337 only), `omc ARGS` (any command of the CLI). Exit 2 for an
unknown name or a service this image does not hold. Configuration is by environment only
(OMC_*), as everywhere.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence

MODULES = {
    "gateway": "omc_gateway",
    "runtime": "omc_runtime",
    "proj-mysql": "omc_proj_mysql",
    "proj-redis": "omc_proj_redis",
    "proj-proofs": "omc_proj_proofs",
    "txmanager": "omc_txmanager",
    "watcher": "omc_watcher",
    "notary": "omc_notary",
    "registry": "omc_registry",
}
JOBS = {
    "migrate": ("db", "migrate"),
    "topics": ("topics", "apply"),
    "omc": (),
}
USAGE = (f"usage: omc-service NAME [ARGS ...]\n  services: {', '.join(MODULES)}\n"
         f"  jobs: {', '.join(JOBS)}, dev-key")


def _cli(arguments: Sequence[str]) -> int:
    from omc_cli.main import cli

    cli.main(args=list(arguments), prog_name="omc")  # exits with the command's status
    return 0


def _dev_key() -> int:
    from omc_chain.signer import SignerError, install_local_dev_key
    from omc_config import Settings

    settings = Settings.from_env()
    try:
        path = install_local_dev_key(settings.stack.dir, settings.chain_id)
    except SignerError as error:
        print(f"omc-service: {error}", file=sys.stderr)
        return 2
    print(f"omc-service: anvil's development key written to {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if arguments else 2
    name, rest = arguments[0], arguments[1:]
    if name in MODULES:
        module = MODULES[name]
        if importlib.util.find_spec(module) is None:
            print(f"omc-service: {name} ({module}) is not in this image", file=sys.stderr)
            return 2
        os.execv(sys.executable, [sys.executable, "-m", module, *rest])  # noqa: S606
    if name in JOBS:
        return _cli([*JOBS[name], *rest])
    if name == "dev-key":
        return _dev_key()
    print(f"omc-service: unknown service {name!r}\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
