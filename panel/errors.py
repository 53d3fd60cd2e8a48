"""Errors the services raise; the Docker API maps them to status codes, the panel to messages."""


class DockyardError(Exception):
    status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


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
