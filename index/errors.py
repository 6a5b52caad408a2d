"""Errors raised by the core. Only the CLI and web layers translate them into exit codes / HTTP statuses."""

from __future__ import annotations


class PersonaeError(Exception):
    """Base class: ``str(err)`` is a one-line, user-facing message."""

    status = 500


class BadQuery(PersonaeError):
    """The query or a request parameter is invalid."""

    status = 400


class NotFound(PersonaeError):
    """An unknown document or entity id."""

    status = 404


class IndexMissing(PersonaeError):
    """No built index where one was expected."""

    status = 503


class IndexFormatMismatch(PersonaeError):
    """The index on disk was written by an incompatible Personae version, or is corrupt."""

    status = 503


class IngestError(PersonaeError):
    """A document could not be read; carries ``where`` (file or file:line)."""

    def __init__(self, where: str, reason: str):
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


class StorageError(PersonaeError):
    """A file or folder could not be written or read: disk full, no permission, a path that is a file.

    ``str(err)`` is one line naming the path and the cause: ``cannot write var/index/x: No space left on
    device`` (with ``action``) or ``var/index/x: Permission denied``.
    """

    status = 503

    def __init__(self, path: object, cause: str, action: str | None = None):
        super().__init__(f"cannot {action} {path}: {cause}" if action else f"{path}: {cause}")
        self.path = str(path)
        self.cause = cause

    @classmethod
    def from_os_error(cls, err: OSError, action: str | None = None) -> StorageError:
        """The one-line form of an ``OSError``: its path(s) and strerror, never its repr."""
        path: object = err.filename if err.filename is not None else "(no path given)"
        if err.filename2 is not None:
            path = f"{err.filename} -> {err.filename2}"
        return cls(path, err.strerror or str(err) or type(err).__name__, action)


class BuildLocked(PersonaeError):
    """Another build holds the index folder's lock."""

    status = 409
