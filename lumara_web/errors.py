"""Errors the user can act on: each carries a stable code, a message and an HTTP status."""

from __future__ import annotations


class LumaraError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def to_dict(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


class ConfigError(LumaraError):
    code = "config_error"


class ValidationError(LumaraError):
    """Bad input from a client: nothing was changed."""

    status = 400
    code = "invalid_input"


class NotFound(LumaraError):
    status = 404
    code = "not_found"


class ModelUnavailable(LumaraError):
    """A model is still loading (retry shortly) or failed to load (see the message)."""

    status = 503
    code = "model_unavailable"


class ModelMissing(LumaraError):
    """A bundled model's package is not installed, or a configured model path does not exist."""

    code = "model_missing"


class DatabaseError(LumaraError):
    code = "database_error"
