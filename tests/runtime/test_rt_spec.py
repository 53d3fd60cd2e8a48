import pytest

from workers.runtime.spec import (
    DEFAULT_PATH,
    ContainerSpec,
    SpecError,
    combine_command,
    merge_env,
    parse_user,
    signal_number,
    validate,
)

CID = "a" * 64


@pytest.mark.parametrize("img_ep,img_cmd,ep,cmd,expected", [
    (None, ["sh"], None, None, ["sh"]),
    (None, ["sh"], None, ["echo", "hi"], ["echo", "hi"]),
    (["/entry"], ["--default"], None, None, ["/entry", "--default"]),
    (["/entry"], ["--default"], None, ["--x"], ["/entry", "--x"]),
    # an entrypoint given at run resets the image's Cmd
    (["/entry"], ["--default"], ["/other"], None, ["/other"]),
    (None, ["sh"], ["/other"], None, ["/other"]),
    (["/entry"], ["--default"], ["/other"], ["a"], ["/other", "a"]),
    # --entrypoint "" clears the entrypoint and keeps the Cmd fallback
    (["/entry"], ["sh"], [""], None, ["sh"]),
    (["/entry"], ["sh"], [], ["ls"], ["ls"]),
])
def test_combine_command(img_ep, img_cmd, ep, cmd, expected):
    assert combine_command(img_ep, img_cmd, ep, cmd) == expected


@pytest.mark.parametrize("args", [(None, None, None, None), (None, [], None, []),
                                  (["/e"], None, [""], None), (None, ["sh"], [""], [""])])
def test_combine_command_empty(args):
    with pytest.raises(SpecError, match="No command specified"):
        combine_command(*args)


def test_merge_env():
    env = merge_env(["PATH=/bin", "A=1", "B=2"], ["B=3", "C=4", "A"], hostname="h1")
    assert env == ["HOSTNAME=h1", "PATH=/bin", "B=3", "C=4"]
    assert merge_env([], [])[0] == "PATH=" + DEFAULT_PATH
    assert merge_env(None, ["X=a=b"], hostname="h") == ["PATH=" + DEFAULT_PATH, "HOSTNAME=h",
                                                        "X=a=b"]
    assert "TERM=xterm" in merge_env([], [], tty=True)
    assert merge_env([], ["HOSTNAME=mine"], hostname="h")[1] == "HOSTNAME=mine"
    with pytest.raises(SpecError):
        merge_env([], ["=x"])


def test_spec_json_roundtrip_and_validate(tmp_path):
    spec = ContainerSpec(id=CID, name="web", layers=[str(tmp_path)], args=["sh"],
                         env=["A=1"], user="nobody", labels={"a": "b"})
    assert spec.hostname == CID[:12]
    again = ContainerSpec.from_json(spec.to_json())
    assert again == spec
    validate(again)
    with pytest.raises(SpecError, match="unknown field"):
        ContainerSpec.from_json('{"id": "x", "bogus": 1}')


@pytest.mark.parametrize("change,message", [
    ({"id": "xyz"}, "invalid container id"),
    ({"name": "bad name"}, "Invalid container name"),
    ({"layers": []}, "at least one layer"),
    ({"layers": ["relative"]}, "invalid layer dir"),
    ({"layers": ["/nonexistent-dy-layer"]}, "does not exist"),
    ({"args": []}, "No command specified"),
    ({"env": ["NOEQUALS"]}, "invalid environment variable"),
    ({"working_dir": "rel"}, "absolute path"),
    ({"user": "a:b:c"}, "invalid user"),
    ({"hostname": "-bad"}, "invalid hostname"),
    ({"stop_signal": "SIGNOPE"}, "invalid signal"),
    ({"stop_timeout": "10"}, "stop_timeout"),
    ({"labels": {"a": 1}}, "labels"),
    ({"tty": "yes"}, "tty must be a boolean"),
])
def test_validate_errors(tmp_path, change, message):
    fields = dict(id=CID, name="ok", layers=[str(tmp_path)], args=["sh"])
    fields.update(change)
    with pytest.raises(SpecError, match=message):
        validate(ContainerSpec(**fields))


def test_small_helpers():
    assert signal_number("SIGTERM") == 15
    assert signal_number("kill") == 9
    assert signal_number("10") == 10
    with pytest.raises(SpecError):
        signal_number("SIGFOO")
    assert parse_user("") == ("", "")
    assert parse_user("1000:1000") == ("1000", "1000")
    assert parse_user("www-data:adm") == ("www-data", "adm")
