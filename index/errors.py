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
