"""Plain HTTP only for registries the caller allows (settings.INSECURE_REGISTRIES)."""

import uuid

import pytest

from workers.runtime.registry import Credentials, RegistryError, RemoteRef, check_login, pull


def test_plain_http_refused_unless_insecure(registry, store, busybox_tar):
    name = f"insecure/app-{uuid.uuid4().hex[:8]}"
    registry.push_image(name, [busybox_tar])
    ref = RemoteRef.parse(f"{registry.host}/{name}")
    with pytest.raises(RegistryError) as e:
        pull(store, ref)
    message = str(e.value)
    assert f"https://{registry.host}/v2/" in message
    assert "DOCKYARD_INSECURE_REGISTRIES" in message
    with pytest.raises(RegistryError):
        check_login(registry.host, Credentials("a", "b"))
    assert pull(store, ref, insecure=True).diff_ids


def test_nothing_listening(store):
    from registry import free_port

    with pytest.raises(RegistryError) as e:
        pull(store, RemoteRef.parse(f"127.0.0.1:{free_port()}/a/b"), insecure=True)
    assert "Connection refused" in str(e.value)
    assert e.value.http_status == 500
