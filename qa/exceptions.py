"""QA's domain errors: raised by the services, turned into form errors or messages by the views and admin."""

from __future__ import annotations


class QaError(Exception):
    """Base of QA's errors; the message is written for the person who tried."""


class NotPermitted(QaError):
    pass


class ItemNotOpen(QaError):
    pass


class InvalidInput(QaError):
    """Bad input, with a message per field (``errors``: field name → message)."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{field}: {message}" for field, message in errors.items()))
