"""Dockerfile parsing and Docker's word rules, without containers: stages, flags, line
numbers in errors, the escape directive, variable substitution, ENV/LABEL pairs, and the
.dockerignore matcher as the docker CLI applies it."""

import pytest

from workers.runtime.build import dockerfile as D
from workers.runtime.build.context import Context, Matcher, glob, read_dockerignore


def test_stages_flags_and_continuations():
    df = D.parse("# syntax=docker/dockerfile:1\nARG BASE=busybox\n\nFROM ${BASE} AS Build\n"
                 "RUN echo a \\\n  # a comment inside\n\n  && echo b\n"
                 "COPY --from=build --chown=1:2 a b /x/\nfrom scratch\ncopy --from=0 /a /a\n")
    assert [i.original for i in df.meta_args] == ["ARG BASE=busybox"]
    first, second = df.stages
    assert (first.base, first.name, first.start.line) == ("${BASE}", "build", 4)
    run, copy = first.instructions
    assert run.args == "echo a   && echo b" and run.line == 5
    assert copy.flags == {"from": "build", "chown": "1:2"} and copy.args == "a b /x/"
    assert copy.original == "COPY --from=build --chown=1:2 a b /x/"
    assert (second.base, second.name) == ("scratch", "")
    assert second.instructions[0].original == "copy --from=0 /a /a"


@pytest.mark.parametrize("text, message", [
    ("FROM busybox\nFOO bar\n", "Dockerfile parse error line 2: unknown instruction: FOO"),
    ("RUN true\n", "Dockerfile parse error line 1: no build stage in current context"),
    ("FROM a b\n", "line 1: FROM requires either one or three arguments"),
    ("FROM a AS 1x\n", "invalid name for build stage"),
    ("FROM a AS x\nFROM b AS x\n", "line 2: duplicate stage name 'x'"),
    ("FROM a\nCOPY --link a b\n", "line 2: Unknown flag: link"),
    ("FROM a\nCOPY onlyone\n", "COPY requires at least two arguments"),
    ("FROM a\nONBUILD ONBUILD RUN x\n", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("FROM a\nONBUILD FROM b\n", "FROM isn't allowed as an ONBUILD trigger"),
    ("FROM a\nSHELL /bin/sh -c\n", "SHELL requires the arguments to be in JSON form"),
    ("FROM a\nHEALTHCHECK WHAT x\n", "Unknown type 'WHAT' in HEALTHCHECK (try CMD)"),
    ("FROM a\nENV onlykey\n", "ENV must have two arguments"),
    ("FROM a\nENV a=1 b\n", "Syntax error - can't find = in 'b'"),
    ("\n# only a comment\n", "the Dockerfile (Dockerfile) cannot be empty"),
])
def test_parse_errors(text, message):
    with pytest.raises(D.DockerfileError) as err:
        D.parse(text)
    assert message in str(err.value)


def test_escape_directive():
    df = D.parse("# escape=`\nFROM busybox\nRUN echo a `\n  b\nCOPY C:\\dir /x\n")
    assert df.escape == "`"
    run, copy = df.stages[0].instructions
    assert run.args == "echo a   b"
    assert D.substitute("C:\\dir", {}, "`") == "C:\\dir"
    assert D.substitute("a` b`$X", {"X": "1"}, "`") == "a b$X"


ENV = {"A": "a", "EMPTY": "", "SP": "x y"}


@pytest.mark.parametrize("word, expected", [
    ("$A", "a"), ("${A}", "a"), ("pre${A}post", "preapost"),
    ("$A_b", ""), ("${UNSET}", ""), ("${UNSET:-def}", "def"), ("${EMPTY:-def}", "def"),
    ("${EMPTY-def}", ""), ("${UNSET-def}", "def"), ("${A:+alt}", "alt"),
    ("${EMPTY:+alt}", ""), ("${EMPTY+alt}", "alt"), ("${UNSET:-${A}x}", "ax"),
    ('"$A and $SP"', "a and x y"), ("'$A'", "$A"), ("\\$A", "$A"), ('"\\$A"', "$A"),
    ('"a\\b"', "a\\b"), ("a\\ b", "a b"), ("$", "$"), ("a$", "a$"), ("$1x", "x"),
    ("${A:?}", "a"),
])
def test_substitution(word, expected):
    assert D.substitute(word, ENV) == expected


@pytest.mark.parametrize("word, message", [
    ("${A", "missing '}'"), ("${}", "bad substitution"), ("${A:%x}", "unsupported modifier"),
    ("${UNSET:?need it}", "UNSET: need it"), ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
    ("'open", "matching single-quote"), ('"open', "matching double-quote"),
])
def test_substitution_errors(word, message):
    with pytest.raises(D.DockerfileError) as err:
        D.substitute(word, ENV)
    assert message in str(err.value)


def test_env_and_label_pairs():
    df = D.parse('FROM a\nENV A="x y" B=c\\ d C=\'$e\'\nENV OLD form with  spaces\n'
                 'LABEL "com.x"="1" k=v\n')
    new, old, label = df.stages[0].instructions
    assert D.key_values(new) == [("A", '"x y"'), ("B", "c\\ d"), ("C", "'$e'")]
    assert [D.substitute(v, {"e": "E"}) for _k, v in D.key_values(new)] == ["x y", "c d", "$e"]
    assert D.key_values(old) == [("OLD", "form with  spaces")]
    assert D.key_values(label) == [('"com.x"', '"1"'), ("k", "v")]
    assert D.arg_pairs(D.parse("FROM a\nARG A B=2 C=\n").stages[0].instructions[0]) == [
        ("A", None), ("B", "2"), ("C", "")]


def test_exec_and_shell_forms():
    assert D.exec_form('["echo", "a b"]') == ["echo", "a b"]
    assert D.exec_form("[not json") is None
    assert D.exec_form('[1, 2]') is None
    assert D.json_or_words('["a b", "c"]') == ["a b", "c"]
    assert D.json_or_words("a  b c") == ["a", "b", "c"]


@pytest.mark.parametrize("patterns, path, excluded", [
    (["*.md"], "README.md", True), (["*.md"], "docs/a.md", False),
    (["**/*.md"], "docs/deep/a.md", True), (["**/*.md"], "a.md", True),
    (["docs"], "docs/a/b.txt", True),             # a parent dir match excludes its contents
    (["docs", "!docs/keep.txt"], "docs/keep.txt", False),
    (["docs", "!docs/keep.txt"], "docs/other.txt", True),
    (["*", "!src"], "src/main.c", False),
    (["!x", "x"], "x", True),                      # the last matching pattern wins
    (["a?c"], "abc", True), (["a?c"], "a/c", False),
    (["[a-c]*.log"], "b1.log", True), (["[a-c]*.log"], "d1.log", False),
    (["/abs/path"], "abs/path", True), (["./rel/../x"], "x", True),
    (["temp**"], "temp/a/b", True), (["**"], "anything/at/all", True),
])
def test_dockerignore_matcher(patterns, path, excluded, tmp_path):
    (tmp_path / ".dockerignore").write_text("# a comment\n\n" + "\n".join(patterns) + "\n")
    assert Context(str(tmp_path)).excluded(path) is excluded
    assert Matcher(read_dockerignore(str(tmp_path))).matches(path) is excluded


def test_context_listing_and_glob(tmp_path):
    for name in ("a.txt", "b.txt", "docs/x.md", "docs/keep.txt", "src/one.c", "src/two.h"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    (tmp_path / ".dockerignore").write_text("docs\n!docs/keep.txt\nb.txt\n")
    ctx = Context(str(tmp_path))
    assert ctx.listdir("") == [".dockerignore", "a.txt", "docs", "src"]
    assert ctx.listdir("docs") == ["keep.txt"]
    assert ctx.lstat("b.txt") is None and ctx.lstat("docs/x.md") is None
    assert glob(ctx, "*.txt") == ["a.txt"]
    assert glob(ctx, "src/*.[ch]") == ["src/one.c", "src/two.h"]
    assert glob(ctx, "*/k*") == ["docs/keep.txt"]
