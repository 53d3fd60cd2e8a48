"""The images pages: the list (`docker images [-a] [--filter dangling=true]`), one image
(config, layers, history, containers; tag, untag, remove, push, save), pull and load with
live progress, prune, and each team's registry credentials (`docker login`).

Thin views over panel.images.services; an image outside the user's teams is 404. Pull,
push and load are jobs: their page follows ws/jobs/<id>/ (static/images.js). The pull and
load forms carry a job id reserved in the session, so the page can listen before the job
exists and miss none of its progress."""

import os
import uuid
from datetime import UTC, datetime

from asgiref.sync import async_to_sync
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from panel.containers import services as containers
from panel.containers.status import human_size
from panel.errors import DockyardError, NotFound, message_of
from panel.events.consumers import RESERVED_JOBS_KEY
from panel.images import credentials, references, spool
from panel.images import services as images
from panel.images.models import Image, RegistryCredential
from panel.jobs import services as jobs
from panel.jobs.models import Job
from panel.teams.models import Membership
from panel.teams.services import has_permission, hidden, teams_of

from .team_choice import offer_teams

MAX_RESERVED_JOBS = 20  # forms open in other tabs keep theirs
SAVE_TIMEOUT = 30 * 60  # seconds a save may take before the page gives up waiting
UPLOAD_CHUNK = 1 << 20


def _reserve_job_id(request) -> str:
    job_id = str(uuid.uuid4())
    reserved = request.session.get(RESERVED_JOBS_KEY, [])[-(MAX_RESERVED_JOBS - 1):]
    request.session[RESERVED_JOBS_KEY] = [*reserved, job_id]
    return job_id


def _take_job_id(request) -> str | None:
    """The posted job id when this session reserved it (once); else None: a new id."""
    job_id = request.POST.get("job_id", "")
    reserved = request.session.get(RESERVED_JOBS_KEY, [])
    if job_id not in reserved:
        return None
    request.session[RESERVED_JOBS_KEY] = [other for other in reserved if other != job_id]
    return job_id


def _default_team(user):
    first = Membership.objects.filter(user=user).order_by("id").first()
    return first.team if first else None


class _TeamForm(forms.Form):
    """A form of something a team gets: the team choice as the volume and network forms
    offer it."""

    team = forms.ChoiceField(required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.teams = offer_teams(self, list(teams_of(user).order_by("name")), _default_team(user))

    def chosen_team(self):
        return self.teams.get(self.cleaned_data.get("team") or "")


class PullForm(_TeamForm):
    """`docker pull REFERENCE`, into a team."""

    reference = forms.CharField(
        max_length=512,
        widget=forms.TextInput(attrs={"placeholder": "127.0.0.1:5000/busybox:latest",
                                      "autocomplete": "off", "spellcheck": "false"}),
        help_text="name[:tag] or name@sha256:digest. The team's registry credentials are used.",
    )
    field_order = ["reference", "team"]

    def clean_reference(self):
        return self.cleaned_data["reference"].strip()


class LoadForm(_TeamForm):
    """`docker load -i ARCHIVE`: Docker's tar format or an OCI image layout archive."""

    archive = forms.FileField(help_text="A .tar from docker save, skopeo or this page's Save.")
    field_order = ["archive", "team"]


class CredentialForm(_TeamForm):
    """`docker login REGISTRY -u USERNAME`: checked with the registry, then kept encrypted."""

    registry = forms.CharField(
        max_length=255,
        widget=forms.TextInput(attrs={"placeholder": "127.0.0.1:5000", "autocomplete": "off",
                                      "spellcheck": "false"}),
        help_text="host[:port]. Credentials the team has for it are replaced.")
    username = forms.CharField(max_length=255, widget=forms.TextInput(
        attrs={"autocomplete": "off", "spellcheck": "false"}))
    password = forms.CharField(
        max_length=4096, strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Or a token. Stored encrypted; never shown again.")
    field_order = ["registry", "username", "password", "team"]


# ------------------------------------------------------------------ the list


def _get_image(user, image_id: str) -> Image:
    try:
        return images.resolve(user, image_id)
    except NotFound:
        raise Http404("No such image") from None


def _users_by_image(user, image_ids) -> dict[str, list]:
    """The user's containers of each image."""
    found = {}
    for container in (containers.visible_containers(user).filter(image_id__in=image_ids)
                      .order_by("name")):
        found.setdefault(container.image_id, []).append(container)
    return found


def _may_operate_somewhere(user) -> bool:
    return user.is_superuser or any(has_permission(user, team, "operate")
                                    for team in teams_of(user))


@login_required
def image_list(request):
    """GET: the images (?dangling=1 the untagged only; ?all=1 with the intermediate ones);
    POST ``prune``: `docker image prune` (``dangling``) or `docker image prune -a` (``all``)."""
    if request.method == "POST" and "prune" in request.POST:
        return _prune(request, all_images=request.POST["prune"] == "all")
    show_all, dangling = request.GET.get("all") == "1", request.GET.get("dangling") == "1"
    found = list(images.visible_images(request.user).prefetch_related("tags")
                 .select_related("team"))
    parents = {image.parent for image in found if image.parent}
    rows = []
    for image in found:
        tags = list(image.tags.all())
        intermediate = not tags and image.id in parents  # a parent without a tag of its own
        if (dangling and tags) or (intermediate and not show_all):
            continue
        rows.append({"image": image, "tags": tags, "intermediate": intermediate})
    users = _users_by_image(request.user, [row["image"].id for row in rows])
    for row in rows:
        row["users"] = users.get(row["image"].id, [])
    return render(request, "web/image_list.html", {
        "rows": rows,
        "show_all": show_all,
        "dangling": dangling,
        "show_team": teams_of(request.user).count() > 1,
        "may_operate": _may_operate_somewhere(request.user),
    })


def _prune(request, *, all_images: bool):
    try:
        report = images.prune(request.user, all_images=all_images, source="panel")
    except (DockyardError, PermissionDenied) as exc:
        messages.error(request, message_of(exc))
        return redirect("web:image-list")
    deleted = [entry for entry in report.get("ImagesDeleted") or [] if "Deleted" in entry]
    if deleted:
        plural = "" if len(deleted) == 1 else "s"
        messages.success(request, f"Deleted {len(deleted)} image{plural}. Reclaimed "
                                  f"{human_size(report.get('SpaceReclaimed', 0))}.")
    else:
        messages.info(request, "No unused images to remove.")
    return redirect("web:image-list")


# ------------------------------------------------------------------ one image


def _history(user, image) -> list[dict]:
    rows = images.history(user, image.id)
    for row in rows:
        row["created_at"] = datetime.fromtimestamp(row.get("Created") or 0, UTC)
    return rows


def _layers(image, history: list[dict]) -> list[dict]:
    """The layers bottom to top with their sizes: the history entries that made a layer
    (the config's history without empty_layer), oldest first, line up with the diff ids."""
    made = [entry for entry, config_entry in zip(reversed(history),
                                                 image.config.get("history") or [], strict=False)
            if not config_entry.get("empty_layer")]
    sizes = [entry.get("Size") for entry in made] if len(made) == len(image.layers) else []
    return [{"diff_id": diff_id, "size": sizes[index] if sizes else None}
            for index, diff_id in enumerate(image.layers)]


@login_required
def image_detail(request, image_id):
    image = _get_image(request.user, image_id)
    try:
        history = _history(request.user, image)
    except DockyardError as exc:
        messages.error(request, message_of(exc))
        history = []
    tags = list(image.tags.all())
    return render(request, "web/image_detail.html", {
        "image": image,
        "tags": tags,
        "run_config": image.run_config,
        "layers": _layers(image, history),
        "history": history,
        "users": _users_by_image(request.user, [image.id]).get(image.id, []),
        "can_operate": has_permission(request.user, image.team, "operate"),
    })


def _back(image_id):
    return redirect("web:image-detail", image_id=image_id)


@login_required
@require_POST
def image_tag(request, image_id):
    """`docker tag IMAGE REPOSITORY[:TAG]`."""
    image = _get_image(request.user, image_id)
    try:
        target = references.parse_tag(request.POST.get("target", "").strip())
        images.tag(request.user, image.id, target.repository, target.tag, source="panel")
    except DockyardError as exc:  # PermissionDenied: a 403 page
        messages.error(request, message_of(exc))
        return _back(image.id)
    messages.success(request, f"Tagged {image.short_id} as {target}.")
    return _back(image.id)


@login_required
@require_POST
def image_remove(request, image_id):
    """`docker rmi [-f] IMAGE` of the image, or of one of its tags (``tag``: untag it)."""
    image = _get_image(request.user, image_id)
    ref = request.POST.get("tag") or image.id
    if ref != image.id and ref not in {str(tag) for tag in image.tags.all()}:
        raise Http404("No such tag on this image")
    try:
        report = images.remove(request.user, ref, force=request.POST.get("force") == "on",
                               source="panel")
    except DockyardError as exc:  # PermissionDenied: a 403 page
        messages.error(request, message_of(exc))
        return _back(image.id)
    lines = [f"{kind} {what}" for entry in report for kind, what in entry.items()]
    messages.success(request, "; ".join(lines) or f"Removed {ref}.")
    if Image.objects.filter(pk=image.id).exists():
        return _back(image.id)
    return redirect("web:image-list")


@login_required
@require_POST
def image_push(request, image_id):
    """`docker push REPOSITORY:TAG` of one of the image's tags, followed on the job's page."""
    image = _get_image(request.user, image_id)
    ref = request.POST.get("tag", "")
    if ref not in {str(tag) for tag in image.tags.all()}:
        messages.error(request, "Pick one of the image's tags to push.")
        return _back(image.id)
    try:
        job = images.push(request.user, ref, source="panel")
    except DockyardError as exc:  # PermissionDenied: a 403 page
        messages.error(request, message_of(exc))
        return _back(image.id)
    return redirect("web:image-job", job_id=job.id)


def _archive_name(image, tags) -> str:
    name = str(tags[0]) if tags else image.short_id
    return name.replace("/", "_").replace(":", "_") + ".tar"


@login_required
@require_POST
def image_save(request, image_id):
    """`docker save` of the image with its tags, as a download."""
    image = _get_image(request.user, image_id)
    tags = list(image.tags.all())
    try:
        job = images.save(request.user, [str(tag) for tag in tags] or [image.id], source="panel")
        job = async_to_sync(jobs.wait_for)(job.id, timeout=SAVE_TIMEOUT)
    except DockyardError as exc:  # PermissionDenied: a 403 page
        messages.error(request, message_of(exc))
        return _back(image.id)
    if job.state != Job.State.SUCCEEDED:
        messages.error(request, job.error or "The save did not finish in time.")
        return _back(image.id)
    archive = open(job.result["path"], "rb")  # the response closes it
    os.unlink(job.result["path"])  # the open file lives on until the download is sent
    return FileResponse(archive, as_attachment=True, filename=_archive_name(image, tags),
                        content_type="application/x-tar")


# ------------------------------------------------------------------ pull, load, jobs


@login_required
def image_pull(request):
    """GET: the pull and load forms; POST: `docker pull`, followed on the job's page."""
    form = PullForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            job = images.pull(request.user, form.cleaned_data["reference"],
                              team=form.chosen_team(), source="panel",
                              job_id=_take_job_id(request))
        except (DockyardError, PermissionDenied) as exc:
            form.add_error("reference", message_of(exc))
        else:
            return redirect("web:image-job", job_id=job.id)
    return _pull_page(request, pull_form=form)


def _pull_page(request, *, pull_form=None, load_form=None):
    """Both forms, each with a fresh job id (a posted one is used up)."""
    return render(request, "web/image_pull.html", {
        "pull_form": pull_form or PullForm(user=request.user),
        "load_form": load_form or LoadForm(user=request.user),
        "pull_job_id": _reserve_job_id(request),
        "load_job_id": _reserve_job_id(request),
    })


def _spool_upload(upload) -> str:
    path = spool.spool_path(".tar")
    with open(path, "wb") as out:
        for chunk in upload.chunks(UPLOAD_CHUNK):
            out.write(chunk)
    return path


@login_required
@require_POST
def image_load(request):
    """`docker load` of an uploaded archive, followed on the job's page."""
    form = LoadForm(request.POST, request.FILES, user=request.user)
    if form.is_valid():
        path = _spool_upload(form.cleaned_data["archive"])
        try:
            job = images.load(request.user, path, team=form.chosen_team(), source="panel",
                              job_id=_take_job_id(request))
        except (DockyardError, PermissionDenied) as exc:
            spool.discard(path)  # no job will
            form.add_error("archive", message_of(exc))
        else:
            return redirect("web:image-job", job_id=job.id)
    return _pull_page(request, load_form=form)


def _get_job(user, job_id) -> Job:
    try:
        return jobs.resolve(user, job_id, kinds="image.")
    except NotFound as exc:
        raise Http404(exc.message) from None


def _outcome(job) -> dict:
    """What the job's page says when the job is over: the images it made or pushed (a load's
    several) and Docker's last line (a failed job's result holds an HTTP status)."""
    result = job.result or {}
    made = result.get("images") or ([result] if result.get("id") else [])
    if job.kind == "image.push":
        made = [{"id": job.target_id, "tags": [job.target_repr]}]
    status = result.get("status")
    return {"job": job, "made": made, "status_line": status if isinstance(status, str) else ""}


@login_required
def image_job(request, job_id):
    """A pull, push or load: the live progress while it runs, its outcome when it is over."""
    return render(request, "web/image_job.html", _outcome(_get_job(request.user, job_id)))


@login_required
def image_job_outcome(request, job_id):
    """The outcome part alone, fetched by the page when the job's state changes."""
    return render(request, "web/_image_job_outcome.html",
                  _outcome(_get_job(request.user, job_id)))


# ------------------------------------------------------------------ registry credentials


def _credential_rows(user):
    found = RegistryCredential.objects.select_related("team").order_by("team__name", "registry")
    if not user.is_superuser:
        found = found.filter(team__in=teams_of(user))
    may_manage = {}
    rows = []
    for credential in found:
        if credential.team_id not in may_manage:
            may_manage[credential.team_id] = has_permission(user, credential.team, "manage")
        rows.append({"credential": credential, "can_remove": may_manage[credential.team_id]})
    return rows


@login_required
def registry_credentials(request):
    """GET: the teams' registries and usernames; POST: `docker login` for a team."""
    form = CredentialForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            images.login(request.user, registry=data["registry"], username=data["username"],
                         password=data["password"], team=form.chosen_team(), source="panel")
        except (DockyardError, PermissionDenied) as exc:
            form.add_error(None, message_of(exc))
        else:
            messages.success(request, f"Login to {data['registry']} as {data['username']} "
                                      "checked and saved.")
            return redirect("web:registry-credentials")
    return render(request, "web/image_credentials.html", {
        "rows": _credential_rows(request.user),
        "form": form,
        "show_team": teams_of(request.user).count() > 1,
    })


@login_required
@require_POST
def registry_credential_remove(request, credential_id):
    """`docker logout REGISTRY` for the credential's team."""
    rows = {row["credential"].pk: row["credential"] for row in _credential_rows(request.user)}
    credential = rows.get(credential_id)
    if credential is None:
        refusal = hidden(request.user, "No such credential", obj_type="registry-credential",
                         ref=str(credential_id),
                         elsewhere=RegistryCredential.objects.filter(pk=credential_id))
        raise Http404(refusal.message)
    try:
        credentials.remove(credential.team, credential.registry, acting_user=request.user,
                           source="panel")
    except DockyardError as exc:  # PermissionDenied: a 403 page
        messages.error(request, message_of(exc))
    else:
        messages.success(request, f"Removed the credentials of {credential.team.name} for "
                                  f"{credential.registry}.")
    return redirect("web:registry-credentials")
