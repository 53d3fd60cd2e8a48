"""X-Registry-Auth decoding (base64url JSON, padding optional, lenient like Docker) and how
`fromImage`/`tag` join into a reference."""

import base64
import json

import pytest
from django.test import RequestFactory

from panel.dockerapi.images import join_ref, registry_auth


def _request(header: str | None):
    headers = {} if header is None else {"X-Registry-Auth": header}
    return RequestFactory().post("/images/create", headers=headers)


@pytest.mark.parametrize("encode", [base64.urlsafe_b64encode, base64.b64encode])
@pytest.mark.parametrize("strip_padding", [False, True])
def test_registry_auth_decodes(encode, strip_padding):
    auth = {"username": "u", "password": "p?>~~", "serveraddress": "127.0.0.1:5000"}
    header = encode(json.dumps(auth).encode()).decode()
    if strip_padding:
        header = header.rstrip("=")
    assert registry_auth(_request(header)) == auth


@pytest.mark.parametrize("header", [None, "", "e30=", "e30", "!!!not base64", "bnVsbA"])
def test_registry_auth_empty_or_unreadable_is_anonymous(header):
    assert registry_auth(_request(header)) is None


def test_join_ref():
    assert join_ref("busybox", "1.36") == "busybox:1.36"
    assert join_ref("127.0.0.1:5000/app", "v1") == "127.0.0.1:5000/app:v1"
    assert join_ref("127.0.0.1:5000/app:v2", "") == "127.0.0.1:5000/app:v2"
    assert join_ref("app", "sha256:" + "a" * 64) == "app@sha256:" + "a" * 64
    assert join_ref("127.0.0.1:5000/app", "") == "127.0.0.1:5000/app"
