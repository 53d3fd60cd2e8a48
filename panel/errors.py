"""Errors the services raise; the Docker API maps them to status codes, the panel to messages."""


class DockyardError(Exception):
    status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def message_of(exc: Exception) -> str:
    """What to show a user of a service's refusal: a DockyardError's message, else its text
    (Django's PermissionDenied, a ValidationError...)."""
    return getattr(exc, "message", None) or str(exc)


class NotFound(DockyardError):
    status = 404


class Conflict(DockyardError):
    status = 409


class InvalidParameter(DockyardError):
    status = 400


class NotModified(DockyardError):
    status = 304


class JobFailed(DockyardError):
    status = 500


def string_map(value, what: str) -> dict:
    """A request's map of strings (Labels, Options...): {} when absent; else InvalidParameter."""
    value = value or {}
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidParameter(f"{what} must be an object of strings")
    return value
