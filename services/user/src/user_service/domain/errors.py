"""Domain errors; the gRPC edge maps each to one status code with a client-safe message.

SubscriptionLost is not a DomainError: it ends an update stream (the edge answers UNAVAILABLE,
"resubscribe") rather than refusing a request.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class: the message is safe to show to a client."""


class InvalidArgument(DomainError):
    """The request is malformed (bad email, empty name, bad token, unknown mask path...)."""


class NotFound(DomainError):
    """The user does not exist."""


class AlreadyExists(DomainError):
    """The email is taken (case-insensitively)."""


class PermissionDenied(DomainError):
    """The caller is authenticated but may not do this."""


class Unauthenticated(DomainError):
    """Credentials are missing or wrong."""


class SubscriptionLost(Exception):
    """The stream ended because events may have been missed (slow consumer or lost connection)."""
