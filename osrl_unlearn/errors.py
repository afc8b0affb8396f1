"""Errors that mean "the user asked for something we cannot do", reported without a traceback."""


class UserError(ValueError):
    """Bad input or settings; the message names the problem and the fix."""


class ConfigError(UserError):
    """A setting out of its valid range."""
