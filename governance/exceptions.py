"""Governance's domain errors: raised, never returned; adapters (admin, API, consumer) turn them into clear answers."""

from __future__ import annotations


class GovernanceError(Exception):
    """Base of governance's domain errors; the message is fit to show a support admin."""


class NotPermitted(GovernanceError):
    """The actor may not do this."""


class SelfApprovalRefused(NotPermitted):
    """The person who requested an action may not approve it."""


class ApprovalNotPending(GovernanceError):
    """The approval request was already decided, or it expired."""


class SecretNotFound(GovernanceError):
    """No secret has this name."""


class SecretUnavailable(GovernanceError):
    """A secret's value cannot be read: its environment variable is not set, or no configured key decrypts it.

    The message names the secret (and its variable), never a value.
    """


class SecretKeysMissing(SecretUnavailable):
    """STEWARD_SECRETS_KEYS is not set, so values cannot be encrypted or decrypted (production mode)."""


class SecretRotationRefused(GovernanceError):
    """The secret's value is not kept by Steward (an environment variable): rotate it where it is set."""


class RetentionRefused(GovernanceError):
    """A handler will not apply a rule: the action makes no sense for its data, or it would destroy evidence."""
