"""POST /auth: `docker login`. The node checks the credentials with the registry; the panel
keeps them for the user's team, encrypted (panel.images.credentials)."""

from django.http import JsonResponse

from panel.images import services as images

from .common import BadRequest, endpoint, json_body


def _login(request):
    body = json_body(request)
    username, password = body.get("username") or "", body.get("password") or ""
    if not username or not password:
        raise BadRequest("username and password are required")
    # serveraddress: "https://index.docker.io/v1/", "127.0.0.1:5000", ... (normalized there)
    images.login(request.user, registry=body.get("serveraddress") or "",
                 username=username, password=password, source="api")
    return JsonResponse({"Status": "Login Succeeded", "IdentityToken": ""})


login = endpoint(POST=_login)
