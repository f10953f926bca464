"""Typed errors of the channels gateway, turned into HTTP status codes at the boundary."""

from __future__ import annotations


class ChannelError(Exception):
    """Base class of gateway errors."""


class BadMessage(ChannelError):
    """The customer's or agent's input is not acceptable (empty, too long, a reserved command)."""


class NotAuthenticated(ChannelError):
    """No valid session token or staff session."""


class Forbidden(ChannelError):
    """Signed in, but not allowed to do this (role, ownership, CSRF)."""


class RasaUnavailable(ChannelError):
    """Rasa did not answer; the message is kept and the customer is told to retry."""
