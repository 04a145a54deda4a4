"""Knowledge's domain errors: raised, never returned; admin and API turn them into clear answers."""

from __future__ import annotations


class KnowledgeError(Exception):
    """Base of knowledge's domain errors; the message is fit to show a support admin."""


class NotPermitted(KnowledgeError):
    """The actor may not do this to this source."""


class InvalidSourceChange(KnowledgeError):
    """The change would leave the source in an invalid state (e.g. superseded by itself, approving a retired source
    that was superseded, an unknown field)."""


class IngestionAlreadyActive(KnowledgeError):
    """A run of this source is already queued or running (one at a time: a partial unique constraint)."""


class DocumentRefused(KnowledgeError):
    """An uploaded document was refused before ingestion: too large, an unknown type, or the wrong kind of source."""


class OriginError(KnowledgeError):
    """A source's origin cannot be listed (missing folder, unreadable zip, bad configuration).

    Nothing of the source is removed when its origin cannot be listed: an unmounted folder must not empty a source.
    """
