"""The one error hierarchy of bwc.

Every error carries an exit code; only ``bwc.cli`` turns errors into messages and exit
codes. Codes are documented in README.md ("Exit codes") and must stay stable: scripts in
evidence rooms branch on them.
"""

from __future__ import annotations

INTERNAL_ERROR = 10  # an unexpected error (a bug): reported in one line, traceback with -v
# the reader of the output stopped reading (`bwc list | head`): 128 + SIGPIPE, as a command
# killed by the signal would end; never 1, which says that a verification failed
BROKEN_PIPE = 141


class BwcError(Exception):
    """Base class: a message meant for a person, and the process exit code."""

    exit_code: int = INTERNAL_ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}; {self.hint}"
        return self.message


def first_line(e: BaseException) -> str:
    """The driver's own message (``e.orig`` for SQLAlchemy errors), first line only: enough
    to act on, without SQL text or links."""
    cause = getattr(e, "orig", None) or e
    text = str(cause).strip()
    return text.splitlines()[0] if text else cause.__class__.__name__


class VerificationError(BwcError):
    """Something stored does not match what was signed or logged (evidence may be tampered)."""

    exit_code = 1


class UsageError(BwcError):
    """Bad arguments or bad input given on the command line."""

    exit_code = 2


class NotFoundError(BwcError):
    """An unknown or ambiguous evidence id, key id or path."""

    exit_code = 3


class HomeError(BwcError):
    """The home directory is missing or not initialised, or the configuration is invalid."""

    exit_code = 4


class KeyMaterialError(BwcError):
    """Key material cannot be loaded (wrong passphrase, missing or malformed key)."""

    exit_code = 5


class InputError(BwcError):
    """A source file or folder cannot be read (missing, unreadable, changed during copy)."""

    exit_code = 6


class StoreError(BwcError):
    """The evidence store cannot be reached or refused an operation."""

    exit_code = 7


class CatalogError(BwcError):
    """The catalog database cannot be reached or is in an unexpected state."""

    exit_code = 8


class ToolError(BwcError):
    """An external program bwc needs is missing or failed (Chromium, to print a custody
    report to PDF)."""

    exit_code = 9


class TimestampError(BwcError):
    """A time-stamping authority (RFC 3161) cannot be reached, or its reply is not a valid
    timestamp over what was sent. Never raised by ingest or a checkpoint: they go on without
    the timestamp, which is fetched later (`bwc log timestamp`). (10 is an internal error.)"""

    exit_code = 11


class ProofError(VerificationError):
    """A Merkle inclusion or consistency proof does not verify, or is malformed."""


class NoteError(VerificationError):
    """A signed note or checkpoint is malformed or its signature does not verify."""
