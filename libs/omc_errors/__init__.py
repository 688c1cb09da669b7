"""The one root of every error the project raises on purpose.

    OmcError                      something a user or operator can act on; str() says what
    ├── ConfigError               the environment holds an invalid setting (all of them listed)
    └── StackError                the local stack could not do what was asked
        ├── MissingDependency     a binary or package is absent (the install command is given)
        ├── PortInUse             a port the stack needs is taken by another process
        └── ComponentFailed       a component died on start or never became ready (log tail given)

Third-party errors are translated into these at the boundary that calls the library.
"""


class OmcError(Exception):
    """Root of the project's errors. The message is written for the person who must act on it."""


class ConfigError(OmcError):
    """One or more settings in the environment are invalid."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid configuration:\n{lines}")


class StackError(OmcError):
    """The local stack could not be brought to the requested state."""


class MissingDependency(StackError):
    """A binary or package the stack needs is not installed."""


class PortInUse(StackError):
    """A port the stack needs is taken by a process the stack did not start."""


class ComponentFailed(StackError):
    """A component exited during start-up or did not become ready in time."""
