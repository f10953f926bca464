"""Typed errors of the shared layer, mapped to replies or HTTP codes at the boundary."""


class CoreError(Exception):
    """Base class of errors raised by the `core` package."""


class ConfigError(CoreError):
    """The configuration is missing or inconsistent (e.g. a required secret is unset)."""


class SetupError(CoreError):
    """A prerequisite of the stack (venv, model, port) is missing or broken."""
