"""The build pages: `docker build` from the panel, from an uploaded context, a Dockerfile typed
in, or a git URL, and one build's page with its live log, its steps, Cancel and its outcome.

Thin views over panel.images.builds. The form carries a job id reserved in the session, so
static/build.js listens on ws/jobs/<id>/ before the build starts and shows every line of its
log (the job's progress is Docker's build JSON: {"stream": ...}); the build's page follows
the same socket when opened later, from the line it joins at."""

import io
import re
import tarfile

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from panel.errors import DockyardError, NotFound, message_of
from panel.images import builds, references, spool
from panel.jobs import services as jobs
from panel.jobs.models import Job
from panel.teams.services import check_permission, has_permission, primary_team, teams_of

from .image_views import (
    _default_team,
    _reserve_job_id,
    _spool_upload,
    _take_job_id,
)
from .team_choice import offer_teams

BUILD_KIND = "image.build"
RECENT_BUILDS = 10  # listed under the form
# Docker's words for a RUN step that failed: the command and its exit code.
FAILED_RUN = re.compile(r"The command '(?P<command>.*)' returned a non-zero code: (?P<code>-?\d+)",
                        re.DOTALL)


def _operable_teams(user) -> list:
    return [team for team in teams_of(user).order_by("name")
            if has_permission(user, team, "operate")]


def _pairs(text: str, what: str) -> dict[str, str]:
    """KEY=VALUE lines (blank lines skipped) as --build-arg and --label take them."""
    found = {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise forms.ValidationError(f"{what} must be KEY=VALUE lines; got {line!r}.")
        found[key.strip()] = value
    return found


class BuildForm(forms.Form):
    """`docker build [-t TAG]... [-f FILE] [--build-arg K=V]... [--target T] [--no-cache]
    [--pull] [--label K=V]... CONTEXT`, CONTEXT being an upload, a typed Dockerfile or a URL."""

    SOURCES = [("upload", "Upload a context"), ("dockerfile", "Write a Dockerfile"),
               ("git", "Git repository")]

    source = forms.ChoiceField(choices=SOURCES, initial="dockerfile", widget=forms.RadioSelect,
                               label="Build context")
    context = forms.FileField(
        label="Context archive",
        error_messages={"required": "Choose the context archive to upload."},
        help_text="A .tar, .tar.gz, .tar.bz2 or .tar.xz of the directory to build; "
                  ".dockerignore applies.")
    dockerfile_text = forms.CharField(
        strip=False, label="Dockerfile",
        error_messages={"required": "Write the Dockerfile to build."},
        widget=forms.Textarea(attrs={"rows": 9, "spellcheck": "false",
                                     "placeholder": "FROM busybox:1.29\nRUN echo hello > /hello\n"
                                                    "CMD [\"cat\", \"/hello\"]"}),
        help_text="The context is this Dockerfile alone: no COPY of local files.")
    remote = forms.CharField(
        max_length=1024, label="Repository URL",
        error_messages={"required": "Give the repository's URL."},
        widget=forms.TextInput(attrs={"placeholder": "https://example.org/app.git#main:docker",
                                      "autocomplete": "off", "spellcheck": "false"}),
        help_text="https://, http://, git:// or github.com/...; #ref:subdir picks a branch or "
                  "tag and a folder.")
    tags = forms.CharField(
        required=False, label="Tags",
        widget=forms.TextInput(attrs={"placeholder": "myapp:1.0 myapp:latest",
                                      "autocomplete": "off", "spellcheck": "false"}),
        help_text="name[:tag], several separated by spaces (-t).")
    dockerfile = forms.CharField(
        required=False, max_length=1024, initial="Dockerfile", label="Dockerfile path",
        widget=forms.TextInput(attrs={"spellcheck": "false"}),
        help_text="Inside the context (-f).")
    build_args = forms.CharField(
        required=False, label="Build arguments",
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false",
                                     "placeholder": "VERSION=1.2"}),
        help_text="KEY=VALUE, one a line (--build-arg).")
    labels = forms.CharField(
        required=False, label="Labels",
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false",
                                     "placeholder": "org.example.team=web"}),
        help_text="KEY=VALUE, one a line (--label).")
    target = forms.CharField(
        required=False, max_length=255, label="Target stage",
        widget=forms.TextInput(attrs={"spellcheck": "false"}),
        help_text="Build up to this stage of a multi-stage Dockerfile (--target).")
    no_cache = forms.BooleanField(required=False, label="Do not use the cache (--no-cache)")
    pull = forms.BooleanField(required=False, label="Always pull the base images (--pull)")
    team = forms.ChoiceField(required=False)

    # The field each source needs; the page shows only the chosen source's.
    SOURCE_FIELDS = {"upload": "context", "dockerfile": "dockerfile_text", "git": "remote"}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.teams = offer_teams(self, _operable_teams(user), _default_team(user))
        if self.is_bound:
            chosen = self.data.get("source")
            for source, name in self.SOURCE_FIELDS.items():
                self.fields[name].required = source == chosen

    def chosen_team(self):
        return self.teams.get(self.cleaned_data.get("team") or "")

    def fields_of(self, names) -> list:
        """Bound fields for templates/web/_form_fields.html, one column of the form each."""
        return [self[name] for name in names if name in self.fields]

    def context_fields(self):
        return self.fields_of(["source", "context", "dockerfile_text", "remote", "dockerfile"])

    def option_fields(self):
        return self.fields_of(["tags", "build_args", "target", "labels", "no_cache", "pull",
                               "team"])

    def clean_tags(self):
        tags = self.cleaned_data["tags"].replace(",", " ").split()
        try:
            return [str(references.parse_tag(tag)) for tag in tags]
        except DockyardError as exc:
            raise forms.ValidationError(message_of(exc)) from None

    def clean_build_args(self):
        return _pairs(self.cleaned_data["build_args"], "Build arguments")

    def clean_labels(self):
        return _pairs(self.cleaned_data["labels"], "Labels")

    def clean_remote(self):
        remote = self.cleaned_data["remote"].strip()
        try:
            return builds.normalize_remote(remote) if remote else ""
        except DockyardError as exc:
            raise forms.ValidationError(message_of(exc)) from None

    def clean_dockerfile_text(self):
        text = self.cleaned_data["dockerfile_text"]
        if self.fields["dockerfile_text"].required and not text.strip():
            raise forms.ValidationError(self.fields["dockerfile_text"].error_messages["required"])
        return text


def _dockerfile_context(text: str) -> str:
    """A spooled context tar holding only the typed Dockerfile."""
    data = text.replace("\r\n", "\n").encode()
    path = spool.spool_path(".tar")
    with tarfile.open(path, "w") as archive:
        member = tarfile.TarInfo("Dockerfile")
        member.size = len(data)
        member.mode = 0o644
        archive.addfile(member, io.BytesIO(data))
    return path


def _spooled_upload(upload) -> str:
    path = _spool_upload(upload)
    if not tarfile.is_tarfile(path):
        spool.discard(path)
        raise forms.ValidationError("Not a tar archive (plain, gzip, bzip2 or xz).")
    return path


def _start(request, form) -> Job:
    data = form.cleaned_data
    context_path, remote = "", ""
    dockerfile = data["dockerfile"].strip() or "Dockerfile"
    if data["source"] == "git":
        remote = data["remote"]
    elif data["source"] == "upload":
        context_path = _spooled_upload(data["context"])
    else:  # the typed Dockerfile is the whole context
        context_path, dockerfile = _dockerfile_context(data["dockerfile_text"]), "Dockerfile"
    try:
        return builds.build(
            request.user, context_path=context_path, remote=remote, tags=data["tags"],
            dockerfile=dockerfile, build_args=data["build_args"], target=data["target"].strip(),
            no_cache=data["no_cache"], pull=data["pull"], labels=data["labels"],
            team=form.chosen_team(), source="panel", job_id=_take_job_id(request))
    except Exception:
        if context_path:
            spool.discard(context_path)  # no job will
        raise


@login_required
def image_build(request):
    """GET: the build form (a notice instead for users who may not build); POST: start the
    build and go to its page."""
    form = BuildForm(request.POST or None, request.FILES or None, user=request.user)
    may_build = bool(form.teams) or request.user.is_superuser
    if request.method == "POST" and not may_build:  # a 403 page, and an audited refusal
        check_permission(request.user, primary_team(request.user), "operate")
    if request.method == "POST" and may_build and form.is_valid():
        try:
            job = _start(request, form)
        except forms.ValidationError as exc:
            form.add_error("context", exc)
        except (DockyardError, PermissionDenied) as exc:
            form.add_error(None, message_of(exc))
        else:
            return redirect("web:build-detail", job_id=job.id)
    return render(request, "web/image_build.html", {
        "form": form,
        "job_id": _reserve_job_id(request),
        "may_build": may_build,
        "recent": jobs.visible_jobs(request.user).filter(kind=BUILD_KIND)
        .select_related("actor", "team")[:RECENT_BUILDS],
    })


def _get_build(user, job_id) -> Job:
    try:
        return jobs.resolve(user, job_id, kinds=BUILD_KIND, message=f"No such build: {job_id}")
    except NotFound as exc:
        raise Http404(exc.message) from None


def _outcome(job) -> dict:
    """The build and what it came to: the image with its tags, or why it failed (a RUN's
    command and exit code apart)."""
    result = job.result or {}
    failed_run = FAILED_RUN.search(job.error or "")
    payload = job.payload or {}
    cancelled = job.cancel_requested and job.state == Job.State.FAILED
    return {
        "job": job,
        "state": "cancelled" if cancelled else job.state,
        "title": ", ".join(payload.get("tags") or []) or payload.get("remote") or "untagged",
        "image_id": (result.get("id") or "").removeprefix("sha256:"),
        "tags": result.get("tags") or [],
        "command": failed_run["command"] if failed_run else "",
        "exit_code": result.get("code", failed_run["code"] if failed_run else None),
        "cancelled": cancelled,
    }


@login_required
def build_detail(request, job_id):
    """One build: its live log and steps while it runs, its outcome when it is over."""
    job = _get_build(request.user, job_id)
    return render(request, "web/image_build_detail.html", {
        **_outcome(job),
        "can_cancel": has_permission(request.user, job.team, "operate"),
    })


@login_required
@require_POST
def build_cancel(request, job_id):
    """Stop the build (`docker build` interrupted): its RUN container goes, nothing is tagged."""
    job = _get_build(request.user, job_id)
    try:
        builds.cancel(request.user, job.id, source="panel")
    except DockyardError as exc:  # PermissionDenied: a 403 page
        messages.error(request, message_of(exc))
    else:
        if not job.is_terminal:
            messages.info(request, "Cancelling the build…")
    return redirect("web:build-detail", job_id=job.id)
