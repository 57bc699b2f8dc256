"""One error type for everything a user can get wrong.

The CLI turns a SerenError into a single line (problem + fix) and a non-zero exit, so bad
input never surfaces as a stack trace.
"""

from __future__ import annotations

import re

# scheme://user:password@host -> scheme://***@host ; password=... (Redis/Feast connection options)
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)[^/\s@'\"]+@")
_PASSWORD_OPT = re.compile(r"(?P<key>\b(?:password|passwd|token)=)(?!\$\{)[^,\s'\"&]+", re.IGNORECASE)


def redact(text: str) -> str:
    """Text with the credentials a URL or connection string may carry replaced by ***.

    Every SerenError message goes through it, and anything else that echoes a user-given URL
    (a --host, a Triton or Redis address, an endpoint) should too."""
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}***@", str(text))
    return _PASSWORD_OPT.sub(lambda m: f"{m.group('key')}***", text)


class SerenError(Exception):
    """A user-facing failure: what went wrong and how to fix it (credentials in URLs redacted)."""

    exit_code = 2

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = redact(problem).rstrip(".")
        self.fix = redact(fix) if fix else fix
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
