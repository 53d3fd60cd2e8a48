"""The audit page: the log a user may read (panel.audit.queries), filtered, paginated, exported
as CSV or JSON lines, and followed live (panel/events/audit_consumer.py, static/audit.js).

A user who may not audit any team gets a 404, as for another team's objects: the page is
not theirs to know about."""

import csv
import io
import json
from itertools import islice

from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import timezone

from panel.audit import services as audit
from panel.audit.models import AuditEvent
from panel.audit.queries import (
    AuditFilter,
    as_record,
    may_audit,
    note_refused_reader,
    record_fields,
)

EVENTS_PER_PAGE = 100
EXPORT_LINES_PER_CHUNK = 200
_JSON_BLOCKS = (("params", "Parameters"), ("before", "Before"), ("after", "After"),
                ("result", "Result"))


def _filters(request) -> AuditFilter:
    if not may_audit(request.user):
        note_refused_reader(request.user)
        raise Http404("No such page")
    return AuditFilter(request.GET, user=request.user)


def _with_details(events) -> list[AuditEvent]:
    """The rows with their JSON fields pretty-printed for the details expander."""
    events = list(events)
    for event in events:
        event.json_blocks = [(label, json.dumps(getattr(event, name), indent=2, sort_keys=True,
                                                ensure_ascii=False))
                             for name, label in _JSON_BLOCKS if getattr(event, name) is not None]
    return events


def render_row(event: AuditEvent) -> str:
    """One row of the table, as the page and the live tail show it."""
    return render_to_string("web/_audit_row.html", {"e": _with_details([event])[0]})


@login_required
def audit_list(request):
    form = _filters(request)
    events = form.events().select_related("team")
    page = Paginator(events, EVENTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "web/audit_list.html", {
        "form": form,
        "page": page,
        "events": _with_details(page.object_list),
        "filtered": bool(form.given()),
    })


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value  # a spreadsheet would run it as a formula (a username can be anything)
    return value


def _csv_lines(events):
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(cells) -> str:
        writer.writerow(cells)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield line(record_fields())
    for event in events:
        yield line(_csv_cell(value) for value in as_record(event).values())


def _jsonl_lines(events):
    for event in events:
        yield json.dumps(as_record(event), ensure_ascii=False) + "\n"


_EXPORTS = {"csv": ("text/csv; charset=utf-8", _csv_lines),
            "jsonl": ("application/x-ndjson; charset=utf-8", _jsonl_lines)}


async def _in_chunks(lines):
    """The lines in chunks, each read in a worker thread: Daphne (ASGI) streams an async
    iterator as it goes, where a plain one would first be read whole into memory."""
    take = sync_to_async(lambda: "".join(islice(lines, EXPORT_LINES_PER_CHUNK)).encode())
    while chunk := await take():
        yield chunk


@login_required
def audit_export(request, fmt):
    """The filtered log, oldest first (the chain's order), with every field; recorded as an
    `audit.export` row whose params are the filters."""
    form = _filters(request)
    if not form.is_valid():
        return HttpResponseBadRequest("Invalid filters: " + form.errors.as_text())
    newest = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    # Rows up to the last one there when asked: not the export's own row, nor later ones.
    events = form.events().filter(id__lte=newest).select_related("team").order_by("id")
    audit.record("audit.export", actor=request.user, team=form.covered_team(),
                 obj_type="audit", obj_id=fmt, obj_repr=f"audit log export ({fmt})",
                 params=form.given())
    content_type, lines = _EXPORTS[fmt]
    response = StreamingHttpResponse(_in_chunks(lines(events.iterator(chunk_size=500))),
                                     content_type=content_type)
    filename = f"dockyard-audit-{timezone.now():%Y%m%d-%H%M%S}.{fmt}"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
