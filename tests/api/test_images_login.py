"""docker login (POST /auth) and authenticated push/pull against basic- and token-auth
registries; X-Registry-Auth from docker-py; wrong credentials are refused with 401.

Each test gets fresh registries: a login stays stored for the team, server side."""

import secrets

import pytest

IMAGE = "busybox:1.29"


@pytest.mark.parametrize("kind", ["basic", "token"])
def test_login_push_pull_run(registry_factory, cli, names, kind):
    with registry_factory(auth=kind) as reg:
        ref = f"{reg.host}/dyapi-login-{secrets.token_hex(3)}:v1"
        assert cli("tag", IMAGE, ref).returncode == 0
        try:
            r = cli("push", ref)
            assert r.returncode != 0, "an anonymous push to an auth registry succeeded"
            r = cli("login", reg.host, "-u", reg.username, "--password-stdin",
                    input=reg.password + "\n")
            assert r.returncode == 0, r.stderr
            assert "Login Succeeded" in r.stdout
            r = cli("push", ref)
            assert r.returncode == 0, r.stderr
            assert "v1: digest: sha256:" in r.stdout
            assert cli("rmi", ref).returncode == 0
            r = cli("pull", ref)
            assert r.returncode == 0, r.stderr
            r = cli("run", "--rm", "--name", names("auth"), ref, "echo", f"via-{kind}")
            assert r.returncode == 0, r.stderr
            assert r.stdout.strip() == f"via-{kind}"
        finally:
            cli("logout", reg.host)
            cli("rmi", ref)


def test_docker_py_auth_config(registry_factory, docker_client):
    with registry_factory(auth="token") as reg:
        repository = f"{reg.host}/dyapi-pyauth-{secrets.token_hex(3)}"
        docker_client.images.get(IMAGE).tag(repository, "v1")
        creds = {"username": reg.username, "password": reg.password}
        try:
            with pytest.raises(Exception) as refused:  # anonymous: the registry says no
                docker_client.images.pull(repository, tag="nothere")
            assert getattr(refused.value, "status_code", None) in (401, 404), refused.value
            lines = list(docker_client.api.push(repository, tag="v1", auth_config=creds,
                                                stream=True, decode=True))
            assert any("aux" in line for line in lines), lines
            docker_client.images.remove(f"{repository}:v1")
            image = docker_client.images.pull(repository, tag="v1", auth_config=creds)
            assert f"{repository}:v1" in image.tags
        finally:
            docker_client.images.remove(f"{repository}:v1")


def test_wrong_password_is_refused(registry_factory, cli, docker_client, live_stack):
    with registry_factory(auth="basic") as reg:
        r = cli("login", reg.host, "-u", reg.username, "--password-stdin", input="wrong\n")
        assert r.returncode != 0
        assert "unauthorized" in r.stderr.lower() or "401" in r.stderr, r.stderr
        with pytest.raises(Exception) as caught:  # docker.errors.APIError
            docker_client.login(username=reg.username, password="wrong", registry=reg.host,
                                reauth=True)
        assert getattr(caught.value, "status_code", None) == 401, caught.value
        answer = docker_client.login(username=reg.username, password=reg.password,
                                     registry=reg.host, reauth=True)
        assert answer["Status"] == "Login Succeeded"
        # the password is never written to a log
        assert reg.password not in live_stack.logs(2000)
