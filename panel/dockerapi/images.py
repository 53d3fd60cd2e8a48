"""/images/...: list, inspect, and (for now) a clean refusal to pull."""

import fnmatch

from django.http import JsonResponse

from panel.errors import DockyardError, InvalidParameter, NotFound
from panel.images import references
from panel.images import services as images

from . import shapes
from .common import BadRequest, endpoint, query_filters


class NotImplementedYet(DockyardError):
    status = 501


def _reference_match(pattern: str, tags: list[str]) -> bool:
    if ":" not in pattern.rsplit("/", 1)[-1]:
        return any(fnmatch.fnmatchcase(tag.rsplit(":", 1)[0], pattern) for tag in tags)
    return any(fnmatch.fnmatchcase(tag, pattern) for tag in tags)


def _list(request):
    filters = query_filters(request)
    unknown = set(filters) - {"reference", "dangling", "label", "before", "since"}
    if unknown:
        raise BadRequest(f"invalid filter '{sorted(unknown)[0]}'")
    rows = images.visible_images(request.user).prefetch_related("tags")
    out = []
    before = [images.resolve(request.user, ref).created for ref in filters.get("before", [])]
    since = [images.resolve(request.user, ref).created for ref in filters.get("since", [])]
    for image in rows:
        tags = shapes.repo_tags(image)
        if "dangling" in filters:
            dangling = filters["dangling"][-1].lower() in ("1", "true")
            if dangling != (not tags):
                continue
        if filters.get("reference") and not any(_reference_match(p, tags)
                                                for p in filters["reference"]):
            continue
        labels = image.run_config.get("Labels") or {}
        if filters.get("label"):
            matched = True
            for term in filters["label"]:
                key, sep, value = term.partition("=")
                if key not in labels or (sep and labels[key] != value):
                    matched = False
            if not matched:
                continue
        if before and not all(image.created < m for m in before):
            continue
        if since and not all(image.created > m for m in since):
            continue
        out.append(shapes.image_summary(image))
    return JsonResponse(out, safe=False)


def _inspect(request, name):
    image = images.resolve(request.user, name)
    return JsonResponse(shapes.image_inspect(image))


def _create(request):
    """Pull (and import) come with the images issue; say so in the words docker-py expects."""
    source = request.GET.get("fromImage") or request.GET.get("fromSrc") or ""
    if not source:
        raise BadRequest("fromImage or fromSrc is required")
    tag = request.GET.get("tag") or ""
    ref = source
    if tag and ":" not in source.rsplit("/", 1)[-1] and "@" not in source:
        ref = f"{source}:{tag}" if not tag.startswith("sha256:") else f"{source}@{tag}"
    try:
        ref = str(references.parse(ref))
    except InvalidParameter:
        pass
    try:
        images.resolve(request.user, ref)
    except NotFound:
        raise NotFound(f"No such image: {ref} (pull access denied: pulling from a registry is "
                       "not supported by this node yet)") from None
    raise NotImplementedYet(f"cannot pull {ref}: pulling from a registry is not supported by "
                            "this node yet (the image is present locally)")


image_list = endpoint(GET=_list)
image_inspect = endpoint(GET=_inspect)
image_create = endpoint(POST=_create)
