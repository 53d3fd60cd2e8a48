"""A Dockerfile as stages of instructions, and Docker's variable substitution.

dockerfile-parse does the line structure (continuations, comments, the ``# escape=``
directive); its substitution is not Docker's (no ``${VAR:-x}``, other escapes), so the word
rules of Docker's shell lexer (moby/buildkit frontend/dockerfile/shell/lex.go) and of its
key=value splitting (parser/line_parsers.go parseWords) are written here.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field

from dockerfile_parse import DockerfileParser

from ..images import ImageError

KNOWN = {"FROM", "RUN", "CMD", "ENTRYPOINT", "COPY", "ADD", "ENV", "ARG", "WORKDIR", "USER",
         "EXPOSE", "LABEL", "VOLUME", "STOPSIGNAL", "SHELL", "HEALTHCHECK", "ONBUILD",
         "MAINTAINER"}
FLAGS = {"FROM": {"platform"}, "COPY": {"from", "chown", "chmod"}, "ADD": {"chown", "chmod"},
         "HEALTHCHECK": {"interval", "timeout", "start-period", "start-interval", "retries"}}
# usable without an ARG line; not written into history (Docker's builtinAllowedBuildArgs)
PROXY_ARGS = {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY",
              "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"}
_ESCAPE_DIRECTIVE = re.compile(r"^\s*#\s*escape\s*=\s*(\\|`)\s*$", re.I)
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9\-_.]*$")


class DockerfileError(ImageError):
    http_status = 400


@dataclass
class Instruction:
    cmd: str                    # upper case: RUN, COPY...
    original: str               # as written, for "Step N/M : <original>"
    args: str                   # the arguments after the flags
    line: int                   # 1-based
    flags: dict[str, str] = field(default_factory=dict)

    def error(self, message: str) -> DockerfileError:
        return DockerfileError(f"Dockerfile parse error line {self.line}: {message}")


@dataclass
class Stage:
    index: int
    base: str                   # the FROM image word, not substituted yet
    name: str                   # the AS name (lower case) or ""
    start: Instruction
    instructions: list[Instruction] = field(default_factory=list)


@dataclass
class Dockerfile:
    meta_args: list[Instruction]
    stages: list[Stage]
    escape: str = "\\"


def parse(text: str, name: str = "Dockerfile") -> Dockerfile:
    lines = text.splitlines(keepends=True)
    escape = "\\"
    for line in lines:
        m = _ESCAPE_DIRECTIVE.match(line)
        if m:
            escape = m.group(1)
        elif not re.match(r"^\s*#\s*\w+\s*=", line):
            break
    # Docker skips blank lines inside a continuation; dockerfile-parse would end the
    # instruction there. Past the directives blank lines mean nothing, so drop them.
    kept: list[int] = []
    seen_instruction = False
    for i, line in enumerate(lines):
        if seen_instruction and not line.strip():
            continue
        seen_instruction = seen_instruction or (line.strip() and not line.lstrip()
                                                .startswith("#"))
        kept.append(i)
    source = "".join(lines[i] for i in kept)
    if not source.endswith("\n"):
        source += "\n"
    parser = DockerfileParser(fileobj=io.BytesIO(source.encode()))
    meta: list[Instruction] = []
    stages: list[Stage] = []
    for item in parser.structure:
        if item["instruction"] == "COMMENT":
            continue
        line = kept[item["startline"]] + 1
        word = item["content"].split(None, 1)[0]
        value = (item["value"] or "").strip()
        inst = Instruction(item["instruction"], f"{word} {value}".rstrip(), value, line)
        if inst.cmd not in KNOWN:
            raise inst.error(f"unknown instruction: {word.upper()}")
        _split_flags(inst)
        _check(inst)
        if inst.cmd == "FROM":
            words = inst.args.split()
            if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
                raise inst.error("FROM requires either one or three arguments")
            stage_name = words[2].lower() if len(words) == 3 else ""
            if stage_name and not _STAGE_NAME.match(stage_name):
                raise inst.error(f"invalid name for build stage: {words[2]!r}, name can't "
                                 "start with a number or contain symbols")
            if stage_name and any(s.name == stage_name for s in stages):
                raise inst.error(f"duplicate stage name {stage_name!r}")
            stages.append(Stage(len(stages), words[0], stage_name, inst))
        elif not stages:
            if inst.cmd != "ARG":
                raise inst.error("no build stage in current context")
            meta.append(inst)
        else:
            stages[-1].instructions.append(inst)
    if not stages:
        if meta:
            raise DockerfileError("no build stage in current context")
        raise DockerfileError(f"the Dockerfile ({name}) cannot be empty")
    return Dockerfile(meta, stages, escape)


def _split_flags(inst: Instruction) -> None:
    rest = inst.args
    while rest.startswith("--"):
        word, _, rest = rest.partition(" ")
        rest = rest.lstrip()
        key, has_value, value = word[2:].partition("=")
        if key not in FLAGS.get(inst.cmd, ()):
            raise inst.error(f"Unknown flag: {key}")
        if not has_value:
            raise inst.error(f"Missing a value on flag: {word}")
        if key in inst.flags:
            raise inst.error(f"Duplicate flag specified: {key}")
        inst.flags[key] = value
    inst.args = rest


def _check(inst: Instruction) -> None:
    """The per-instruction shape checks Docker makes while parsing."""
    cmd, args = inst.cmd, inst.args
    if cmd in ("COPY", "ADD") and len(json_or_words(args)) < 2:
        raise inst.error(f"{cmd} requires at least two arguments, but only one was provided. "
                         "Destination could not be determined.")
    if cmd in ("FROM", "WORKDIR", "USER", "STOPSIGNAL", "MAINTAINER", "ARG", "ENV", "LABEL",
               "EXPOSE", "VOLUME", "ONBUILD", "SHELL", "HEALTHCHECK", "RUN") and not args:
        raise inst.error(f"{cmd} requires at least one argument")
    if cmd == "SHELL" and exec_form(args) is None:
        raise inst.error("SHELL requires the arguments to be in JSON form")
    if cmd in ("ENV", "LABEL"):
        key_values(inst)
    if cmd == "ONBUILD":
        trigger = args.split(None, 1)[0].upper()
        if trigger == "ONBUILD":
            raise inst.error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if trigger in ("FROM", "MAINTAINER"):
            raise inst.error(f"{trigger} isn't allowed as an ONBUILD trigger")
    if cmd == "HEALTHCHECK":
        kind = args.split(None, 1)[0].upper()
        if kind == "NONE" and (inst.flags or len(args.split()) > 1):
            raise inst.error("HEALTHCHECK NONE takes no arguments")
        if kind not in ("NONE", "CMD"):
            raise inst.error(f"Unknown type {kind!r} in HEALTHCHECK (try CMD)")


def exec_form(args: str) -> list[str] | None:
    """The JSON array of an exec-form RUN/CMD/ENTRYPOINT/SHELL, or None (shell form)."""
    if not args.lstrip().startswith("["):
        return None
    try:
        value = json.loads(args)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def json_or_words(args: str) -> list[str]:
    """COPY/ADD/VOLUME arguments: a JSON array, or whitespace-separated words."""
    parsed = exec_form(args)
    return parsed if parsed is not None else args.split()


def parse_words(rest: str, escape: str = "\\") -> list[str]:
    """Docker's parseWords: split at blanks outside quotes; quotes and escapes kept."""
    words: list[str] = []
    word, quote, blank_ok, in_word = "", "", False, False
    i = 0
    while i < len(rest):
        ch = rest[i]
        if not in_word and not quote:
            if ch.isspace():
                i += 1
                continue
            in_word = True
        if quote:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'":
                if i + 1 == len(rest):
                    break
                word += ch
                i += 1
                ch = rest[i]
            word += ch
        elif ch.isspace():
            if blank_ok or word:
                words.append(word)
            word, blank_ok, in_word = "", False, False
        else:
            if ch in "'\"":
                quote, blank_ok = ch, True
            elif ch == escape:
                if i + 1 == len(rest):
                    i += 1
                    continue
                word += ch
                i += 1
                ch = rest[i]
            word += ch
        i += 1
    if in_word and (blank_ok or word):
        words.append(word)
    return words


def key_values(inst: Instruction, escape: str = "\\") -> list[tuple[str, str]]:
    """ENV/LABEL pairs, not substituted yet (Docker's parseNameVal): ``KEY value`` (the old
    form: the rest of the line is the value) or ``k=v k2="v 2"``."""
    words = parse_words(inst.args, escape)
    if "=" not in words[0]:
        parts = re.split(r"\s+", inst.args, maxsplit=1)
        if len(parts) < 2:
            raise inst.error(f"{inst.cmd} must have two arguments")
        return [(parts[0], parts[1])]
    pairs = []
    for word in words:
        if "=" not in word:
            raise inst.error(f"Syntax error - can't find = in {word!r}. "
                             "Must be of the form: name=value")
        key, _, value = word.partition("=")
        pairs.append((key, value))
    return pairs


def arg_pairs(inst: Instruction, escape: str = "\\") -> list[tuple[str, str | None]]:
    """ARG name[=default] ... (the default not substituted yet)."""
    pairs: list[tuple[str, str | None]] = []
    for word in parse_words(inst.args, escape):
        key, has_value, value = word.partition("=")
        pairs.append((key, value if has_value else None))
    return pairs


# -- Docker's shell-word lexer ------------------------------------------------------------

def substitute(word: str, env: dict[str, str], escape: str = "\\") -> str:
    """One word processed as Docker does for ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL,
    USER, VOLUME, WORKDIR and ARG: quotes removed, escapes applied, ``$VAR``, ``${VAR}``,
    ``${VAR:-word}``, ``${VAR:+word}``, ``${VAR:?msg}`` (and without the colon) expanded."""
    return _Lexer(word, env, escape).until("")


class _Lexer:
    SPECIAL = "@*#?-$!0"

    def __init__(self, text: str, env: dict[str, str], escape: str):
        self.s, self.i, self.env, self.escape = text, 0, env, escape

    def _peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def _next(self) -> str:
        ch = self._peek()
        self.i += 1 if ch else 0
        return ch

    def until(self, stop: str) -> str:
        out: list[str] = []
        while self.i < len(self.s):
            ch = self._next()
            if stop and ch == stop:
                return "".join(out)
            if ch == "'":
                out.append(self._single_quoted())
            elif ch == '"':
                out.append(self._double_quoted())
            elif ch == "$":
                out.append(self._dollar())
            elif ch == self.escape:
                out.append(self._next())
            else:
                out.append(ch)
        if stop:
            raise DockerfileError("syntax error: missing '}'")
        return "".join(out)

    def _single_quoted(self) -> str:
        end = self.s.find("'", self.i)
        if end < 0:
            raise DockerfileError("unexpected end of statement while looking for matching "
                                  "single-quote")
        text, self.i = self.s[self.i:end], end + 1
        return text

    def _double_quoted(self) -> str:
        out: list[str] = []
        while True:
            ch = self._next()
            if not ch:
                raise DockerfileError("unexpected end of statement while looking for matching "
                                      "double-quote")
            if ch == '"':
                return "".join(out)
            if ch == "$":
                out.append(self._dollar())
                continue
            if ch == self.escape and self._peek() in ('"', "$", self.escape) and self._peek():
                ch = self._next()
            out.append(ch)

    def _name(self) -> str:
        ch = self._peek()
        if ch.isdigit():
            start = self.i
            while self._peek().isdigit():
                self.i += 1
            return self.s[start:self.i]
        if ch and ch in self.SPECIAL:
            return self._next()
        start = self.i
        while self._peek() and (self._peek().isalnum() or self._peek() == "_"):
            self.i += 1
        return self.s[start:self.i]

    def _dollar(self) -> str:
        if self._peek() != "{":
            name = self._name()
            return self.env.get(name, "") if name else "$"
        self._next()
        if not self._peek():
            raise DockerfileError("syntax error: missing '}'")
        if self._peek() in "{}:":
            raise DockerfileError("syntax error: bad substitution")
        name = self._name()
        ch = self._next()
        if not ch:
            raise DockerfileError("syntax error: missing '}'")
        if ch == "}":
            return self.env.get(name, "")
        colon = ch == ":"
        modifier = self._next() if colon else ch
        if modifier not in ("-", "+", "?"):
            if not colon:
                raise DockerfileError("missing ':' in substitution")
            raise DockerfileError(f"unsupported modifier ({modifier}) in substitution")
        word = self.until("}")
        found = name in self.env
        value = self.env.get(name, "")
        is_set = value != "" if colon else found
        if modifier == "-":
            return value if is_set else word
        if modifier == "+":
            return word if is_set else ""
        if not found:
            raise DockerfileError(f"{name}: {word or 'is not allowed to be unset'}")
        if colon and not value:
            raise DockerfileError(f"{name}: {word or 'is not allowed to be empty'}")
        return value
