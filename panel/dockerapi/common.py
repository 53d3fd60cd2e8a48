"""What every Docker API view shares: the version, errors as Docker words them, the view wrapper."""

import inspect
import json
import logging
import re
from datetime import UTC, datetime

from asgiref.sync import sync_to_async
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse

from panel.audit import context as audit_context
from panel.audit import services as audit
from panel.errors import DockyardError, NotModified
from panel.teams.tokens import Caller

log = logging.getLogger(__name__)

API_VERSION = "1.41"
MIN_API_VERSION = "1.12"
SERVER_VERSION = "24.0.0-dockyard"
ZERO_TIME = "0001-01-01T00:00:00Z"
# Headers the Docker daemon puts on every response; the CLI reads API-Version from /_ping.
DOCKER_HEADERS = {
    "Api-Version": API_VERSION,
    "Docker-Experimental": "false",
    "Ostype": "linux",
    "Server": f"Docker/{SERVER_VERSION} (linux)",
}


class Unauthorized(DockyardError):
    status = 401


class BadRequest(DockyardError):
    status = 400


def error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"message": message}, status=status)


def qbool(request, name: str, default: bool = False) -> bool:
    """Docker's BoolValue: absent is the default; "", 0, no, false, none are false."""
    if name not in request.GET:
        return default
    return request.GET[name].strip().lower() not in ("", "0", "no", "false", "none")


def qint(request, name: str, default: int | None = None) -> int | None:
    raw = request.GET.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise BadRequest(f"invalid value for {name}: {raw!r} is not an integer") from None


def json_body(request, *, required: bool = True):
    raw = request.body
    if not raw.strip():
        if required:
            raise BadRequest("request body is empty: a JSON object is required")
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON in request body: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("malformed request body: expected a JSON object")
    return data


def rfc3339(moment: datetime | None) -> str:
    """Go's RFC3339Nano (trailing zeros of the fraction trimmed), always UTC."""
    if moment is None:
        return ZERO_TIME
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def unix(moment: datetime | None) -> int:
    return int(moment.timestamp()) if moment else 0


def query_filters(request, known=None) -> dict[str, list[str]]:
    """Docker's `filters` query parameter as {key: [values]}; `known` refuses other keys."""
    raw = request.GET.get("filters", "").strip()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise BadRequest(f"invalid filters: {raw}") from None
    if not isinstance(data, dict):
        raise BadRequest(f"invalid filters: {raw}")
    out = {}
    for key, value in data.items():
        if known is not None and key not in known:
            raise BadRequest(f"invalid filter '{key}'")
        if isinstance(value, dict):  # the pre-1.22 map form {"status": {"exited": true}}
            out[key] = [k for k, on in value.items() if on]
        elif isinstance(value, list):
            out[key] = [str(v) for v in value]
        else:
            out[key] = [str(value)]
    return out


async def api_user(request):
    """The user the front server authenticated (it puts the id, and the team its API token is
    scoped to, in the ASGI scope), confined to that team."""
    user_id = getattr(request, "dockyard_user_id", None)
    if user_id is None:
        raise Unauthorized("authentication required")
    caller = Caller(user_id, getattr(request, "dockyard_token_team_id", None))
    try:
        return await sync_to_async(caller.load_user)()
    except ObjectDoesNotExist:
        raise Unauthorized("the authenticated user no longer exists or is inactive") from None


def _map_exception(exc: Exception) -> HttpResponse:
    if isinstance(exc, NotModified):
        return HttpResponse(status=304)
    if isinstance(exc, DockyardError):
        return error(exc.status, exc.message)
    if isinstance(exc, PermissionDenied):
        return error(403, str(exc) or "permission denied")
    if isinstance(exc, Http404):
        return error(404, str(exc) or "page not found")
    log.exception("Docker API: internal error")
    return error(500, f"internal error: {exc}")


def route_of(request) -> str:
    """The URL pattern a request matched, for the audit rows: /containers/<str:ref>/start,
    /images/<name>/json."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return request.path
    return "/" + _REGEX_GROUP.sub(r"<\1>", match.route).strip("^$")


_REGEX_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


def endpoint(**handlers):
    """One URL, one handler per HTTP method (HEAD falls back to GET).

    Handlers may be sync (run in Django's sync thread) or async (long polls, streams). The
    wrapper authenticates the user the front server vouched for, and turns the services'
    errors into Docker's status codes with `{"message": ...}` bodies.
    """
    handlers = {method.upper(): fn for method, fn in handlers.items()}
    if "GET" in handlers:
        handlers.setdefault("HEAD", handlers["GET"])

    async def view(request, **kwargs):
        handler = handlers.get(request.method)
        if handler is None:
            return error(404, "page not found")
        with audit_context.bound("api", address=request.META.get("REMOTE_ADDR"),
                                 user_agent=request.META.get("HTTP_USER_AGENT", ""),
                                 route=f"{request.method} {route_of(request)}"):
            try:
                request.user = await api_user(request)
                if inspect.iscoroutinefunction(handler):
                    return await handler(request, **kwargs)
                return await sync_to_async(handler)(request, **kwargs)
            except Exception as exc:  # noqa: BLE001 - every error becomes a Docker-shaped reply
                return _map_exception(exc)
            finally:
                await sync_to_async(audit.flush)()  # the request's refusals

    view.csrf_exempt = True
    view.handlers = handlers
    return view


async def not_found(request, path=""):
    return error(404, "page not found")


not_found.csrf_exempt = True


NODE_JOB_TIMEOUT = 60.0  # what an endpoint that answers after the node's work waits for it


async def finish_jobs(job_ids) -> None:
    """Wait for the node's jobs behind a request that Docker answers synchronously (volume
    and network create/remove/prune); a failed or late job is the request's error."""
    from panel.jobs import services as jobs
    from panel.jobs.models import Job

    for job_id in job_ids:
        job = await jobs.wait_for(job_id, timeout=NODE_JOB_TIMEOUT)
        if job.state == Job.State.FAILED:
            raise DockyardError(job.error or f"{job.kind} failed")
        if not job.is_terminal:
            raise DockyardError(f"timed out waiting for {job.kind} on the node")


def name_matches(pattern: str, text: str) -> bool:
    """Docker's `name` filter: a regular expression, or the plain text when it is not one."""
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return pattern in text
