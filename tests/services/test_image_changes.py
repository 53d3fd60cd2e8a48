"""--change for docker commit and docker import, and commit's merge with the container's
config (Docker's BuildFromConfig + merge)."""

import pytest

from panel.errors import InvalidParameter
from panel.images.changes import apply_changes, merge


def test_each_instruction():
    config = apply_changes({"Env": ["A=1", "B=2"], "Cmd": ["sh"]}, [
        'CMD ["nginx", "-g", "daemon off;"]',
        "ENV B=3 C=\"two words\"",
        "ENV D four five",
        "EXPOSE 80 53/udp",
        "LABEL team=blue \"x y\"=z",
        "VOLUME /data /logs",
        'VOLUME ["/cache"]',
        "WORKDIR /srv",
        "WORKDIR app",
        "USER www-data",
        "ONBUILD RUN make",
        "STOPSIGNAL SIGQUIT",
    ])
    assert config == {
        "Cmd": ["nginx", "-g", "daemon off;"],
        "Env": ["A=1", "B=3", "C=two words", "D=four five"],
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
        "Labels": {"team": "blue", "x y": "z"},
        "Volumes": {"/data": {}, "/logs": {}, "/cache": {}},
        "WorkingDir": "/srv/app",
        "User": "www-data",
        "OnBuild": ["RUN make"],
        "StopSignal": "SIGQUIT",
    }


def test_shell_form_and_entrypoint_drops_the_inherited_cmd():
    assert apply_changes({"Cmd": ["sh"]}, ["ENTRYPOINT top -b"]) == {
        "Cmd": None, "Entrypoint": ["/bin/sh", "-c", "top -b"]}
    assert apply_changes({}, ["CMD echo hi", "ENTRYPOINT [\"/x\"]"]) == {
        "Cmd": ["/bin/sh", "-c", "echo hi"], "Entrypoint": ["/x"]}


@pytest.mark.parametrize("change, message", [
    ("RUN apt-get update", "run is not a valid change command"),
    ("FROM busybox", "from is not a valid change command"),
    ("EXPOSE http", "Invalid containerPort: http"),
    ("ENV ONLYKEY", "ENV must have two arguments"),
])
def test_refused(change, message):
    with pytest.raises(InvalidParameter, match=message):
        apply_changes({}, [change])


def test_commit_merge_fills_what_is_unset():
    container = {"Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"], "Entrypoint": None,
                 "Labels": {"a": "1"}, "WorkingDir": "/w", "User": "nobody",
                 "ExposedPorts": {"80/tcp": {}}, "StopSignal": "SIGINT"}
    merged = merge(apply_changes(container, ["ENV A=2", "LABEL b=2"]), container)
    assert merged["Env"] == ["PATH=/bin", "A=2"]
    assert merged["Labels"] == {"a": "1", "b": "2"}
    assert (merged["Cmd"], merged["WorkingDir"], merged["User"]) == (["sh"], "/w", "nobody")
    assert merged["StopSignal"] == "SIGINT"
    # The API's config replaces the container's, what it leaves unset is filled in.
    merged = merge({"Cmd": ["date"], "Env": ["B=1"]}, container)
    assert merged["Cmd"] == ["date"] and merged["Env"] == ["B=1", "PATH=/bin", "A=1"]
