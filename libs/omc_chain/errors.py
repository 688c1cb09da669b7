"""The chain adapter's errors, under the project's one root.

    OmcError
    └── ChainError               something about contracts, calls or the node
        ├── AbiError             a signature, ABI fragment, argument or return value does not fit
        ├── ActionInvalid        a tool call cannot become an Action (the reason says why)
        ├── ChainUnavailable     the node did not answer usefully; retry later (retryable)
        ├── ArtifactsStale       committed contract artifacts do not match their sources
        └── DeployFailed         a deployment could not be done or was refused

A revert is not an error of the node: reads return it as a result (`ReadResult.ok` false).
Messages never hold a private key.
"""

from __future__ import annotations

from omc_errors import OmcError


class ChainError(OmcError):
    """Root of the chain adapter's errors."""


class AbiError(ChainError, ValueError):
    """A signature, ABI fragment, argument value or return value does not fit its ABI type."""


class ActionInvalid(ChainError, ValueError):
    """A tool call's arguments cannot become an Action; nothing was proposed."""


class ChainUnavailable(ChainError):
    """The node could not be reached, timed out or answered with an error that is not a
    revert. Retryable: the same request may succeed later."""

    retryable = True


class ArtifactsStale(ChainError):
    """A committed artifact does not match its source; rebuild with `omc chain build`."""


class DeployFailed(ChainError):
    """A contract could not be deployed or set up, or deploying was refused."""
