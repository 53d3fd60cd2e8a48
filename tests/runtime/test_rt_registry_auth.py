"""Pull and login against basic-auth (htpasswd, bcrypt) and token-auth (bearer JWT) registries."""

import os
import uuid

import pytest

from workers.runtime.registry import (
    AuthError,
    Credentials,
    RegistryError,
    RemoteRef,
    check_login,
    pull,
)


@pytest.fixture(params=["basic", "token"])
def auth_registry(request, basic_registry, token_registry):
    return {"basic": basic_registry, "token": token_registry}[request.param]


def test_pull_with_credentials(auth_registry, store, busybox_tar):
    name = f"auth/app-{uuid.uuid4().hex[:8]}"
    built = auth_registry.push_image(name, [busybox_tar])
    creds = Credentials(auth_registry.username, auth_registry.password)
    result = pull(store, RemoteRef.parse(f"{auth_registry.host}/{name}"), credentials=creds,
                  insecure=True)
    assert result.diff_ids == built["diff_ids"]
    assert store.has_layer(built["diff_ids"][0])


def test_wrong_password_and_anonymous_are_refused(auth_registry, store, busybox_tar):
    name = f"auth/locked-{uuid.uuid4().hex[:8]}"
    auth_registry.push_image(name, [busybox_tar])
    ref = RemoteRef.parse(f"{auth_registry.host}/{name}")
    with pytest.raises(AuthError) as e:
        pull(store, ref, credentials=Credentials(auth_registry.username, "wrong"),
             insecure=True)
    assert e.value.http_status == 401
    assert "unauthorized" in str(e.value)
    with pytest.raises(AuthError) as e:
        pull(store, ref, insecure=True)
    assert e.value.http_status == 401
    assert os.listdir(store.layers) == []


def test_missing_repository_is_404(auth_registry, store):
    creds = Credentials(auth_registry.username, auth_registry.password)
    with pytest.raises(RegistryError) as e:
        pull(store, RemoteRef.parse(f"{auth_registry.host}/none/{uuid.uuid4().hex[:8]}"),
             credentials=creds, insecure=True)
    assert e.value.http_status == 404
    assert not isinstance(e.value, AuthError)


def test_check_login(auth_registry, registry):
    check_login(auth_registry.host, Credentials(auth_registry.username, auth_registry.password),
                insecure=True)
    with pytest.raises(AuthError) as e:
        check_login(auth_registry.host, Credentials(auth_registry.username, "nope"),
                    insecure=True)
    assert e.value.http_status == 401
    with pytest.raises(AuthError):
        check_login(auth_registry.host, Credentials("intruder", auth_registry.password),
                    insecure=True)
    check_login(registry.host, Credentials("anyone", "anything"), insecure=True)


def test_token_request_carries_scope_and_service(token_registry, store, busybox_tar):
    name = f"auth/scope-{uuid.uuid4().hex[:8]}"
    token_registry.push_image(name, [busybox_tar])
    token_registry.token_server.requests.clear()
    pull(store, RemoteRef.parse(f"{token_registry.host}/{name}"), insecure=True,
         credentials=Credentials(token_registry.username, token_registry.password))
    asked = token_registry.token_server.requests
    assert asked == [{"account": token_registry.username, "service": "dockyard-test-registry",
                      "scopes": [f"repository:{name}:pull"]}]


def test_identity_token(token_registry, store, busybox_tar):
    name = f"auth/oauth-{uuid.uuid4().hex[:8]}"
    token_registry.push_image(name, [busybox_tar])
    ref = RemoteRef.parse(f"{token_registry.host}/{name}")
    identity = token_registry.token_server.identity_token
    assert pull(store, ref, insecure=True, credentials=Credentials(identity_token=identity))
    check_login(token_registry.host, Credentials(identity_token=identity), insecure=True)
    with pytest.raises(AuthError):
        check_login(token_registry.host, Credentials(identity_token="stale"), insecure=True)
