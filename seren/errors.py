"""One error type for everything a user can get wrong.

The CLI turns a SerenError into a single line (problem + fix) and a non-zero exit, so bad
input never surfaces as a stack trace.
"""

from __future__ import annotations


class SerenError(Exception):
    """A user-facing failure: what went wrong and how to fix it."""

    exit_code = 2

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = problem.rstrip(".")
        self.fix = fix
        super().__init__(self.line())

    def line(self) -> str:
        msg = self.problem
        if self.fix:
            msg += f". Fix: {self.fix}"
        return " ".join(msg.split())


class DataError(SerenError):
    """Input data violates the canonical schema or cannot be read."""


class ConfigError(SerenError):
    """A missing or invalid setting (target, path, URL, parameter)."""


class ServiceError(SerenError):
    """A server the command depends on is unreachable or unhealthy."""

    exit_code = 3
