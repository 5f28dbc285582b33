"""A long read-heavy Claude Code session: billed input with and without the proxy, and what the model still sees.

One scripted coding session in a polyglot repository (a Python API service
with a vendored treq, a Go edge router, a Rust ingest service, a Node admin
UI), sent the way Claude Code sends it: ``POST /v1/messages?beta=true``, the
system blocks, tool definitions (``Bash``, ``Edit``, ``Read``; the recorded
client has no ``Grep`` tool, so greps go through ``Bash``), metadata and
options of the recorded Claude Code session in tests/fixtures/clients,
assistant turns of ``thinking`` + ``text`` + ``tool_use``, the whole history
resent every turn, ``cache_control`` on the last block of the newest user
message. Nine user questions, each naming definitions in the code
(``LineReceiver.dataReceived``, ``Router.ServeHTTP``,
``BytesMut::reserve_inner``, ``res.sendFile``, ``Observable._trySubscribe``).

Tool outputs are real and in the client's own formats:

- ``Read`` of twelve whole files (Python, Go, Rust, JavaScript, TypeScript;
  bench/corpus/source, see its README): ``N<TAB>line`` rows numbered from 1,
  no trailer (as in the recorded session), at most 2,000 lines. A file that
  ends with a newline shows one last empty numbered row, as splitting on
  newlines gives; seven ranged re-reads (``offset``/``limit``, 24-150 lines).
- ``Edit``: "The file PATH has been updated. Here's the result of running
  `cat -n` on a snippet of the edited file:" and the edited lines with four
  lines around them, numbered like ``Read``.
- ``Bash``: greps (``path:line:text``), real pytest runs of treq's suite on
  the edited file (bench/corpus/coding_pytest_*.txt), ``git diff`` of the
  edits; an output over 30,000 characters (bench/session.py's ``CAP_CHARS``)
  becomes Claude Code's ``<persisted-output>`` frame with a 2 KB preview.

The session goes through a real proxy (``twistd -n headroom``, stable mode)
and straight to the fake upstream (direct); every turn is priced as
bench/session.py prices it under Anthropic's caching (cache read 0.1, cache
write 1.25, prefixes compared with ``cache_control`` removed), prefix breaks
are counted with tests/support/stable_support.prefix_breaks, and the last
body that reached the upstream is checked for what the model must still see:
(a) every definition line of every whole-file read, with its number;
(b) the whole body of every definition named by the question before the
read; (c) every ranged read, verbatim. Definitions are found by the
independent per-language rules of bench/definitions.py.

Usage: ``.venv/bin/python bench/coding_session.py``. Exit status 1 if a
target is missed or a fact is lost.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from definitions import Definition, definitions, language_of, named_definitions  # noqa: E402
from livezone import start  # noqa: E402
from processes import Processes  # noqa: E402
from session import CAP_CHARS, Priced, Request, forwarded_bodies, price_turns, tokens  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))
from stable_support import prefix_breaks  # noqa: E402
from stable_support import session as recorded_turns  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "corpus"
SOURCE = CORPUS / "source"
PROJECT = "/home/dev/gateway"
SITE_PACKAGES = "services/api/.venv/lib/python3.11/site-packages"
PATH = "/v1/messages?beta=true"
SESSION_ID = "3f9c2d4e-8b1a-4c6e-9d2f-7a5b0e1c8f36"
TOOLS = ("Bash", "Edit", "Grep", "Read")
READ_MAX_LINES = 2000
PREVIEW_CHARS = 2000
PREVIEW_LINE_SLACK = 200
EDIT_CONTEXT_LINES = 4
TARGET_BILLED = 0.45

SOURCES = {
    "treq/client.py.txt": "services/api/third_party/treq/client.py",
    "twisted/web/client.py.txt": f"{SITE_PACKAGES}/twisted/web/client.py",
    "twisted/protocols/basic.py.txt": f"{SITE_PACKAGES}/twisted/protocols/basic.py",
    "twisted/web/server.py.txt": f"{SITE_PACKAGES}/twisted/web/server.py",
    "gorilla-mux/mux.go.txt": "services/edge/vendor/github.com/gorilla/mux/mux.go",
    "gorilla-mux/route.go.txt": "services/edge/vendor/github.com/gorilla/mux/route.go",
    "bytes/src/bytes_mut.rs.txt": "services/ingest/vendor/bytes/src/bytes_mut.rs",
    "http/src/uri/mod.rs.txt": "services/ingest/vendor/http/src/uri/mod.rs",
    "express/lib/response.js.txt": "web/admin/node_modules/express/lib/response.js",
    "express/lib/router/index.js.txt": "web/admin/node_modules/express/lib/router/index.js",
    "rxjs/src/internal/Observable.ts.txt": "web/admin/node_modules/rxjs/src/internal/Observable.ts",
    "rxjs/src/internal/Subscriber.ts.txt": "web/admin/node_modules/rxjs/src/internal/Subscriber.ts",
}
TREQ = SOURCES["treq/client.py.txt"]
PYTEST = (
    "PYTHONPATH=services/api/third_party services/api/.venv/bin/python -m pytest services/api/third_party/treq/test"
    " --ignore=services/api/third_party/treq/test/local_httpbin"
    " --ignore=services/api/third_party/treq/test/test_treq_integration.py"
)
EDITS = [
    (
        "        elif data:\n            return (\n                self._data_to_body_producer(data),\n",
        "        elif isinstance(data, abc.Iterable):\n            return (\n"
        '                self._data_to_body_producer(b"".join(data)),\n                None,\n            )\n'
        "        elif data:\n            return (\n                self._data_to_body_producer(data),\n",
    ),
    (
        "        elif isinstance(data, abc.Iterable):\n",
        '        elif isinstance(data, abc.Iterator) and not hasattr(data, "read"):\n',
    ),
    (
        "            :class:`IBodyProducer`), which accepts file-like objects.\n",
        "            :class:`IBodyProducer`), which accepts file-like objects.\n\n"
        "            An iterator of :class:`bytes` that is not a file, such as a\n"
        "            generator, is joined into one body first.\n",
    ),
]
"""The edits of the session, in order: the same ones the recorded pytest runs were made on."""


# --------------------------------------------------------------------------
# Claude Code's tool output formats


def numbered(lines: list[str], first: int) -> str:
    """Rows as ``Read`` shows them: the line number, unpadded, a tab, the line."""
    return "\n".join(f"{first + index}\t{line}" for index, line in enumerate(lines))


def persisted(output: str, tool_use_id: str) -> str:
    """A Bash output as Claude Code hands it to the model: itself, or past ``CAP_CHARS`` a saved file and a preview.

    The preview is the first 2,000 characters, run on to the end of the line
    they stop in when that line ends soon after (both recorded previews: a
    listing cut at a line end, 2,073 characters; one long JSON line, 2,000).
    """
    if len(output) <= CAP_CHARS:
        return output
    end = output.find("\n", PREVIEW_CHARS)
    preview = output[:end] if 0 <= end - PREVIEW_CHARS <= PREVIEW_LINE_SLACK else output[:PREVIEW_CHARS]
    name = base64.b32encode(hashlib.sha256(tool_use_id.encode()).digest()).decode().lower()[:9]
    saved = f"/home/dev/.claude/projects/{PROJECT.replace('/', '-')}/{SESSION_ID}/tool-results/{name}.txt"
    return (
        f"<persisted-output>\nOutput too large ({len(output.encode()) / 1024:.1f}KB). Full output saved to: {saved}\n\n"
        f"Preview (first 2KB):\n{preview}\n...\n</persisted-output>"
    )


def git_diff(path: str, before: str, after: str) -> str:
    """What ``git diff -- PATH`` prints for one edited file (git itself, in a scratch repository)."""
    with tempfile.TemporaryDirectory(prefix="headroom-coding-git-") as scratch:
        environment = {"PATH": os.environ.get("PATH", ""), "HOME": scratch, "GIT_CONFIG_NOSYSTEM": "1"}
        file = Path(scratch, path)
        file.parent.mkdir(parents=True)
        file.write_text(before)
        subprocess.run(["git", "init", "-q", scratch], check=True, env=environment)
        subprocess.run(["git", "-C", scratch, "add", path], check=True, env=environment)
        file.write_text(after)
        diff = subprocess.run(
            ["git", "-C", scratch, "diff", "--", path], check=True, env=environment, capture_output=True, text=True
        )
    return diff.stdout


class Workspace:
    """The repository as the agent sees it: the corpus files at their project paths, changed by edits."""

    def __init__(self) -> None:
        self.original = {path: (SOURCE / corpus).read_text() for corpus, path in SOURCES.items()}
        self.files = dict(self.original)

    def read(self, path: str, offset: int | None = None, limit: int | None = None) -> str:
        lines = self.files[path].split("\n")
        first = offset or 1
        count = limit if limit is not None else READ_MAX_LINES
        return numbered(lines[first - 1 : first - 1 + count], first)

    def edit(self, path: str, old: str, new: str) -> str:
        """Replace the one occurrence of ``old``; the result text of Claude Code's ``Edit``."""
        text = self.files[path]
        if text.count(old) != 1:
            raise ValueError(f"edit of {path}: old_string found {text.count(old)} times")
        start = text.index(old)
        self.files[path] = text[:start] + new + text[start + len(old) :]
        edited_line = text[:start].count("\n")
        first = max(0, edited_line - EDIT_CONTEXT_LINES)
        last = edited_line + EDIT_CONTEXT_LINES + new.count("\n")
        snippet = numbered(self.files[path].split("\n")[first : last + 1], first + 1)
        return (
            f"The file {PROJECT}/{path} has been updated. Here's the result of running `cat -n` on a snippet "
            f"of the edited file:\n{snippet}"
        )

    def grep(self, pattern: str, paths: list[str]) -> str:
        """``grep -n`` (``path:line:text`` when given several files) with a Python regex."""
        hits = []
        for path in paths:
            for number, line in enumerate(self.files[path].split("\n"), 1):
                if re.search(pattern, line):
                    hits.append(f"{path}:{number}:{line}" if len(paths) > 1 else f"{number}:{line}")
        return "\n".join(hits)

    def diff(self, path: str) -> str:
        return git_diff(path, self.original[path], self.files[path])


# --------------------------------------------------------------------------
# The conversation, as Claude Code sends it


def _digest(*parts: object, size: int = 32) -> bytes:
    return hashlib.shake_256(json.dumps(parts).encode()).digest(size)


@dataclass(frozen=True)
class WholeRead:
    tool_use_id: str
    path: str
    text: str
    question: str


@dataclass(frozen=True)
class RangedRead:
    tool_use_id: str
    path: str
    output: str
    label: str


@dataclass
class Conversation:
    """Messages in Claude Code's shapes; every user message or tool result makes one request."""

    template: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    question: str = ""

    def ask(self, question: str) -> None:
        self.question = question
        content = [{"type": "text", "text": question}]
        if not self.messages:
            first = self.template["messages"]
            self.messages.append({"role": "user", "content": [first[0]["content"][0], *content]})
            self.messages.append(next(m for m in first if m["role"] == "system"))
        else:
            self.messages.append({"role": "user", "content": content})
        self._send(f"user: {question[:48]}...")

    def next_tool_use_id(self, tool_input: dict[str, Any]) -> str:
        """The id the next ``call`` with this input gets (deterministic, shaped like Claude Code's)."""
        return "toolu_01" + base64.b32encode(_digest(len(self.messages), tool_input)).decode()[:22]

    def call(self, thinking: str, text: str, tool: str, tool_input: dict[str, Any], result: str, step: str) -> str:
        tool_use_id = self.next_tool_use_id(tool_input)
        use = {"type": "tool_use", "id": tool_use_id, "name": tool, "input": tool_input}
        self.messages.append({"role": "assistant", "content": [*self._said(thinking, text), use]})
        block: dict[str, Any] = {"tool_use_id": tool_use_id, "type": "tool_result", "content": result}
        if tool == "Bash":
            block["is_error"] = False
        self.messages.append({"role": "user", "content": [block]})
        self._send(f"{tool}: {step} ({len(result):,} chars)")
        return tool_use_id

    def answer(self, thinking: str, text: str) -> None:
        self.messages.append({"role": "assistant", "content": self._said(thinking, text)})

    def remind(self) -> None:
        """Claude Code's mid-conversation system message (the task-tools reminder of the recording)."""
        reminder = next(
            m for m in self.template["messages"][2:] if m["role"] == "system" and "task tools" in m["content"]
        )
        self.messages.append(reminder)

    def _said(self, thinking: str, text: str) -> list[dict[str, Any]]:
        signature = base64.b64encode(_digest(thinking, size=180)).decode()
        return [{"type": "thinking", "thinking": thinking, "signature": signature}, {"type": "text", "text": text}]

    def _send(self, step: str) -> None:
        messages = copy.deepcopy(self.messages)
        newest = next(m for m in reversed(messages) if isinstance(m["content"], list))
        newest["content"][-1]["cache_control"] = {"type": "ephemeral"}
        body = dict(self.template)
        body["messages"] = messages
        self.requests.append(Request(PATH, json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()))
        self.steps.append(step)


def recorded_template() -> dict[str, Any]:
    """The last request of the recorded Claude Code session, its tools cut to those this session uses."""
    body: dict[str, Any] = json.loads(recorded_turns("claude-code")[-1].body)
    body["tools"] = [tool for tool in body["tools"] if tool["name"] in TOOLS]
    user = json.loads(body["metadata"]["user_id"])
    user["session_id"] = SESSION_ID
    body["metadata"] = {"user_id": json.dumps(user, separators=(",", ":"))}
    return body


@dataclass
class CodingSession:
    requests: list[Request]
    steps: list[str]
    whole_reads: list[WholeRead]
    ranged_reads: list[RangedRead]


class Agent:
    """Runs tools on the workspace and records them in the conversation."""

    def __init__(self) -> None:
        self.files = Workspace()
        self.chat = Conversation(recorded_template())
        self.whole_reads: list[WholeRead] = []
        self.ranged_reads: list[RangedRead] = []

    def read(self, thinking: str, text: str, path: str, offset: int | None = None, limit: int | None = None) -> None:
        tool_input: dict[str, Any] = {"file_path": f"{PROJECT}/{path}"}
        if offset is not None:
            tool_input |= {"offset": offset, "limit": limit}
        output = self.files.read(path, offset, limit)
        step = path.split("/")[-1] + (f" {offset}-{offset + (limit or 0) - 1}" if offset is not None else "")
        tool_use_id = self.chat.call(thinking, text, "Read", tool_input, output, step)
        if offset is None:
            self.whole_reads.append(WholeRead(tool_use_id, path, self.files.files[path], self.chat.question))
        else:
            self.ranged_reads.append(RangedRead(tool_use_id, path, output, step))

    def edit(self, thinking: str, text: str, path: str, change: int) -> None:
        old, new = EDITS[change]
        result = self.files.edit(path, old, new)
        tool_input = {"file_path": f"{PROJECT}/{path}", "old_string": old, "new_string": new}
        self.chat.call(thinking, text, "Edit", tool_input, result, path.split("/")[-1])

    def bash(self, thinking: str, text: str, command: str, description: str, output: str) -> None:
        tool_input = {"command": command, "description": description}
        result = persisted(output.rstrip("\n"), self.chat.next_tool_use_id(tool_input))
        self.chat.call(thinking, text, "Bash", tool_input, result, description)

    def grep(self, thinking: str, text: str, pattern: str, paths: list[str], description: str) -> None:
        shown = pattern.replace("|", "\\|")
        command = f'grep -n "{shown}" {" ".join(paths)}'
        self.bash(thinking, text, command, description, self.files.grep(pattern, paths))

    def session(self) -> CodingSession:
        return CodingSession(self.chat.requests, self.chat.steps, self.whole_reads, self.ranged_reads)


def corpus_output(name: str) -> str:
    return (CORPUS / name).read_text()


def coding_session() -> CodingSession:
    """The scripted session: nine questions, 31 tool calls, one request per user message or tool result."""
    agent = Agent()
    chat, src = agent.chat, SOURCES
    chat.ask(
        'Uploads from services/api fail when the body is a generator: treq raises "Could not adapt" before '
        "anything is sent. How does HTTPClient.request hand data to _request_body in our vendored treq "
        "(services/api/third_party/treq/client.py), and what does FileBodyProducer.startProducing do with a "
        "file object once it gets one?"
    )
    agent.read(
        "The question is about treq's request path; start with the vendored client module, whole.",
        "I'll read the vendored treq client first.",
        TREQ,
    )
    agent.read(
        "HTTPClient.request calls _request_body and passes the producer to the agent. FileBodyProducer is "
        "Twisted's, in twisted/web/client.py; read it to see startProducing.",
        "Now Twisted's client module, where FileBodyProducer lives.",
        src["twisted/web/client.py.txt"],
    )
    agent.grep(
        "Which types does treq adapt to IBodyProducer? A generator must not be among them.",
        "Let me check which types treq registers body-producer adapters for.",
        "registerAdapter|IBodyProducer",
        [TREQ],
        "Find IBodyProducer adapters in treq's client",
    )
    agent.read(
        "Re-read _request_body to follow a generator through the branches.",
        "Looking at _request_body once more.",
        TREQ,
        offset=348,
        limit=86,
    )
    chat.answer(
        "A generator is truthy and not a dict, list or tuple, so it reaches the last branch.",
        "`HTTPClient.request` (client.py:170) builds headers, then calls `self._request_body(data, files, json)` "
        "(client.py:348). A generator is not a dict/list/tuple and no `files` are given, so it falls to "
        "`elif data:` and goes to `self._data_to_body_producer(data)`, which is `IBodyProducer` by default: "
        "zope adaptation. Adapters are registered only for `bytes`, `io.BytesIO` and `io.BufferedReader` "
        "(client.py:559-564), hence `Could not adapt`.\n\nFor a file, `_from_file` wraps it in "
        "`FileBodyProducer` (twisted/web/client.py:516). `startProducing` (line 572) runs `_writeloop` under a "
        "cooperator task: each step reads `readSize` bytes (64 KiB) and writes them to the consumer until EOF, "
        "then closes the file and fires the returned Deferred.\n\nThe simplest fix is a branch for iterators "
        "before the generic one.",
    )
    chat.ask(
        "Let _request_body accept any iterator of bytes by joining it into one body, keep file objects going to "
        "FileBodyProducer as today, then run the treq tests."
    )
    agent.edit(
        "Add a branch before `elif data:` that joins an iterable of bytes.",
        "Adding an iterable branch before the generic one.",
        TREQ,
        0,
    )
    agent.bash(
        "Run treq's unit tests against the vendored copy; keep a log in case the output is long.",
        "Running treq's unit tests.",
        f"{PYTEST} 2>&1 | tee /tmp/treq-tests.log",
        "Run treq's unit tests, keeping a log",
        corpus_output("coding_pytest_fail.txt"),
    )
    failed = corpus_output("coding_pytest_fail.txt").rstrip("\n").split("\n")
    agent.bash(
        "The output was saved; look at its end for the failures.",
        "The output was large; the end of the log has the failures.",
        "tail -n 60 /tmp/treq-tests.log",
        "Show the end of the test log",
        "\n".join(failed[-60:]),
    )
    agent.read(
        "11 failures, all TypeError in the new join: check the branch as written.",
        "All 11 failures are a TypeError in the new branch; let me look at it.",
        TREQ,
        offset=412,
        limit=24,
    )
    agent.edit(
        "bytes are Iterable too, so b'bar' went through the join and yielded ints. Narrow the branch to "
        "iterators that are not files.",
        'bytes are iterable too, so `data=b"bar"` took the new branch. Narrowing it to iterators that are not files.',
        TREQ,
        1,
    )
    agent.bash(
        "Re-run the suite.",
        "Re-running the tests.",
        f"{PYTEST} -q 2>&1 | tail -n 5",
        "Re-run treq's unit tests",
        corpus_output("coding_pytest_pass.txt"),
    )
    chat.answer(
        "All 176 pass.",
        "Done. `_request_body` now joins any iterator of bytes that has no `read` method (a generator, "
        "`iter(chunks)`) into one body; bytes and file objects take the old paths. All 176 treq unit tests pass.",
    )
    chat.remind()
    chat.ask(
        "Different problem in services/api's line protocol: clients with long lines get disconnected. Why does "
        "LineReceiver.dataReceived call LineReceiver.lineLengthExceeded even when the delimiter arrives in the "
        "same chunk, and what does LineReceiver.setLineMode do with the extra bytes?"
    )
    agent.read(
        "LineReceiver is in twisted/protocols/basic.py; read it whole.",
        "Reading Twisted's basic protocols module.",
        src["twisted/protocols/basic.py.txt"],
    )
    agent.read(
        "Focus on the LineReceiver class itself.",
        "The LineReceiver class again, closely.",
        src["twisted/protocols/basic.py.txt"],
        offset=487,
        limit=135,
    )
    chat.answer(
        "The length check happens per line after the split, before lineReceived.",
        "`LineReceiver.dataReceived` (basic.py:521) splits the buffer on the delimiter and checks each complete "
        "line: `if lineLength > self.MAX_LENGTH` it calls `lineLengthExceeded(line + delimiter + rest)` "
        "(basic.py:545-548) whether or not the delimiter came in the same chunk. Without a delimiter it gives up "
        "once the buffer reaches `MAX_LENGTH + len(delimiter)`. The default `lineLengthExceeded` (basic.py:609) "
        "calls `transport.loseConnection()`: that is the disconnect. `MAX_LENGTH` is 16384; raise it on your "
        "subclass or override `lineLengthExceeded`.\n\n`setLineMode(extra)` (basic.py:561) sets `line_mode` and, "
        "if `extra` is given, feeds it straight back through `dataReceived`, so the extra bytes are parsed as "
        "lines (and length-checked) at once.",
    )
    chat.ask(
        "Switching to the Go edge service: requests with a double slash get a 301, and unknown paths under a "
        "known prefix return 405 instead of 404. Walk me through Router.ServeHTTP and cleanPath in "
        "services/edge/vendor/github.com/gorilla/mux, and how Route.Match sets ErrMethodMismatch."
    )
    agent.read(
        "Router.ServeHTTP and cleanPath are in mux.go.",
        "Reading gorilla/mux's router.",
        src["gorilla-mux/mux.go.txt"],
    )
    agent.read(
        "Route.Match is in route.go.",
        "And the route matcher.",
        src["gorilla-mux/route.go.txt"],
    )
    mux = [src["gorilla-mux/mux.go.txt"], src["gorilla-mux/route.go.txt"]]
    agent.grep(
        "Where are the two match errors set and read?",
        "Finding where the match errors are set.",
        "ErrMethodMismatch|ErrNotFound",
        mux,
        "Find uses of the match errors in gorilla/mux",
    )
    agent.read(
        "Router.Match and ServeHTTP together.",
        "Router.Match and ServeHTTP side by side.",
        src["gorilla-mux/mux.go.txt"],
        offset=136,
        limit=78,
    )
    chat.answer(
        "cleanPath redirects; a method matcher failing sets ErrMethodMismatch and keeps looking.",
        "`Router.ServeHTTP` (mux.go:173), unless `skipClean` is set, runs `cleanPath` (mux.go:462), which is "
        "`path.Clean` plus the trailing slash put back. `//a` cleans to `/a`, so the router answers "
        "`301 Moved Permanently` with that Location before any route is tried. Use `r.SkipClean(true)` if the "
        "double slash must reach your handlers.\n\n`Route.Match` (route.go:41) runs every matcher; when only the "
        "`methodMatcher` fails it records `ErrMethodMismatch` and goes on, and returns false with "
        "`match.MatchErr = ErrMethodMismatch`. `Router.Match` then keeps that error unless a later route matches, "
        "and `ServeHTTP` turns it into `methodNotAllowedHandler()` (405). So a path that some route matches "
        "with another method gives 405; set `MethodNotAllowedHandler` or register the method to change it.",
    )
    chat.ask(
        "In services/ingest the frame decoder keeps reallocating its buffer. Explain BytesMut::reserve_inner and "
        "when BytesMut::split_to hands capacity back without copying. Also, what does Uri::from_shared do with a "
        'request target like "*" or an authority-only target?'
    )
    agent.read(
        "bytes' BytesMut is in src/bytes_mut.rs.",
        "Reading the vendored bytes crate's BytesMut.",
        src["bytes/src/bytes_mut.rs.txt"],
    )
    agent.read(
        "Uri::from_shared is in http's src/uri/mod.rs.",
        "And http's Uri parser.",
        src["http/src/uri/mod.rs.txt"],
    )
    rust = [src["bytes/src/bytes_mut.rs.txt"], src["http/src/uri/mod.rs.txt"]]
    agent.grep(
        "Every place that touches ptr, cap, len or unsafe code, to follow the buffer's bookkeeping.",
        "Listing every place that changes the buffer's pointer, length or capacity.",
        "ptr|cap|unsafe|len",
        rust,
        "Find pointer, length and capacity bookkeeping",
    )
    agent.read(
        "reserve and reserve_inner in full.",
        "reserve and reserve_inner in full.",
        src["bytes/src/bytes_mut.rs.txt"],
        offset=560,
        limit=150,
    )
    chat.answer(
        "Reclaiming needs a unique owner and enough room in front of the data.",
        "`BytesMut::split_to` (bytes_mut.rs:378) never copies: it shallow-clones (promoting the buffer to the "
        "shared `KIND_ARC` form) and moves the start of `self`. `reserve_inner` (bytes_mut.rs:581) can then "
        "reuse space only when `self` is the unique owner: a `KIND_VEC` buffer with `off >= len` and enough "
        "total room is shifted back to the front with one `copy_nonoverlapping`; a unique `KIND_ARC` buffer "
        "either has room after the data or, when `offset >= len`, is compacted the same way. While the halves "
        "you split off are still alive, `is_unique()` is false and it allocates a new buffer (at least double, "
        "at least the original capacity). Drop or `freeze` the split frames before reserving to get reuse.\n\n"
        '`Uri::from_shared` (mod.rs:293): a one-byte `"/"` or `"*"` becomes a path-only URI '
        "(`PathAndQuery::slash()` / `star()`); any other one-byte target, and a longer target that starts with "
        "neither `/` nor a scheme, is parsed as an authority with an empty path.",
    )
    chat.ask(
        "The admin UI's downloads hang when the browser aborts. Why does res.sendFile never call its callback "
        "then, what do the onaborted() and onfinish() handlers do, and how does proto.handle get to next() after "
        "an error in web/admin/node_modules/express?"
    )
    agent.read(
        "res.sendFile is in express/lib/response.js.",
        "Reading express's response module.",
        src["express/lib/response.js.txt"],
    )
    agent.read(
        "proto.handle and next are in lib/router/index.js.",
        "And the router.",
        src["express/lib/router/index.js.txt"],
    )
    agent.grep(
        "Where ECONNABORTED is produced and filtered.",
        "Checking how an aborted request is reported.",
        "onaborted|ECONNABORTED|headersSent",
        [src["express/lib/response.js.txt"]],
        "Find abort handling in express's response",
    )
    agent.read(
        "The sendfile helper with its handlers.",
        "The sendfile helper and its handlers.",
        src["express/lib/response.js.txt"],
        offset=1053,
        limit=90,
    )
    chat.answer(
        "The callback does run with ECONNABORTED; next() is skipped for it without a callback.",
        "`res.sendFile` (response.js:419) streams through the `sendfile` helper (response.js:1053). When the "
        "client goes away, `onfinish(err)` (line 1097) sees the response finished: `ECONNRESET` goes to "
        "`onaborted()`, and a finish while the file is still streaming also calls `onaborted()` on the next "
        "tick. `onaborted()` (line 1058) marks the transfer done and calls back with an `Error('Request "
        "aborted')` whose `code` is `ECONNABORTED`. With your own callback you get that error; without one, "
        "`sendFile` calls `next(err)` for every error except `ECONNABORTED` and write errors, so an abort "
        "ends silently.\n\n`proto.handle` (router/index.js:136) defines `next(err)` (line 177): it restores "
        "`req.url`, then walks the remaining layers; with an error it skips ordinary middleware and only calls "
        "error handlers (four arguments) via `layer.handle_error`. So pass a callback to `sendFile` and log "
        "`ECONNABORTED` there rather than waiting on it.",
    )
    chat.ask(
        "Last dependency question, rxjs in the admin UI: how does Observable.subscribe decide between wrapping the "
        "argument in a SafeSubscriber and using it as it is, and what does Observable._trySubscribe do with an "
        "error thrown synchronously?"
    )
    agent.read(
        "Observable.subscribe and _trySubscribe are in src/internal/Observable.ts.",
        "Reading rxjs's Observable.",
        src["rxjs/src/internal/Observable.ts.txt"],
    )
    agent.read(
        "SafeSubscriber is defined in Subscriber.ts.",
        "And Subscriber.ts, where SafeSubscriber is defined.",
        src["rxjs/src/internal/Subscriber.ts.txt"],
    )
    chat.answer(
        "isSubscriber decides; _trySubscribe routes synchronous throws to sink.error.",
        "`Observable.subscribe` (Observable.ts:204) keeps the argument as it is only when `isSubscriber` "
        "(line 485) says it is a `Subscriber` (or has `next`/`error`/`complete` functions and is a "
        "`Subscription`); anything else, a partial observer or bare callbacks, is wrapped in a `new "
        "SafeSubscriber(...)` (Subscriber.ts:187), which binds the callbacks and reports errors from them as "
        "unhandled instead of throwing.\n\n`_trySubscribe` (Observable.ts:233) calls `this._subscribe(sink)` "
        "in a `try`; a synchronous throw is caught and delivered as `sink.error(err)`, so the subscriber sees "
        "an error notification and `subscribe` itself does not throw.",
    )
    chat.ask(
        "Back in services/api: why does Request.process call Site.getResourceFor before anything checks the "
        "method, and what does Request.render do with the body of a HEAD request?"
    )
    agent.read(
        "Both are in twisted/web/server.py.",
        "Reading twisted.web.server.",
        src["twisted/web/server.py.txt"],
    )
    agent.read(
        "Request.render's HEAD handling closely.",
        "Request.render in full.",
        src["twisted/web/server.py.txt"],
        offset=280,
        limit=106,
    )
    chat.answer(
        "Resource lookup first; method support is the resource's job.",
        "`Request.process` (server.py:196) resolves the resource first because the method is the resource's "
        "business: `Site.getResourceFor` (server.py:897) walks `postpath` through `getChildWithDefault`, and "
        "only the resource knows which `render_*` methods it has. `Request.render` (server.py:280) calls "
        "`resrc.render(self)`; on `UnsupportedMethod` for a HEAD request whose resource allows GET it re-renders "
        "as GET with `_inFakeHead` set, sets `Content-Length` from the body, and then writes nothing "
        '(`self.write(b"")`) before finishing, so the body is dropped. A real `render_HEAD` gets its body '
        "discarded by `write` too.",
    )
    chat.ask(
        "Good. Document the iterator case in the _request_body docstring, show me the diff of the vendored "
        "client, and run the treq tests once more."
    )
    agent.edit(
        "Add a paragraph to the data parameter's description.",
        "Documenting the iterator case.",
        TREQ,
        2,
    )
    agent.bash(
        "Show the whole change.",
        "Here is the diff.",
        f"git diff -- {TREQ}",
        "Show the diff of the vendored treq client",
        agent.files.diff(TREQ),
    )
    agent.bash(
        "And the tests.",
        "Running the tests once more.",
        f"{PYTEST} -q 2>&1 | tail -n 5",
        "Re-run treq's unit tests",
        corpus_output("coding_pytest_pass_again.txt"),
    )
    return agent.session()


# --------------------------------------------------------------------------
# What the model still sees


@dataclass
class FactCheck:
    name: str
    total: int = 0
    missing: list[str] = field(default_factory=list)

    def expect(self, present: bool, label: str) -> None:
        self.total += 1
        if not present:
            self.missing.append(label)


def tool_results(body: bytes) -> dict[str, str]:
    """Each tool_result's text by tool_use_id."""
    found = {}
    for message in json.loads(body)["messages"]:
        for block in message["content"] if isinstance(message["content"], list) else []:
            if block.get("type") == "tool_result":
                content = block["content"]
                text = content if isinstance(content, str) else "".join(p.get("text", "") for p in content)
                found[block["tool_use_id"]] = text
    return found


def check_facts(session: CodingSession, final_body: bytes) -> list[FactCheck]:
    received = tool_results(final_body)
    lines_kept = FactCheck("(a) definition lines of whole-file reads, with their numbers")
    bodies_kept = FactCheck("(b) full bodies of the definitions the question names")
    ranges_kept = FactCheck("(c) ranged reads, verbatim")
    for read in session.whole_reads:
        rows = set(received[read.tool_use_id].split("\n"))
        lines = read.text.split("\n")[:READ_MAX_LINES]
        language = language_of(read.path)
        assert language is not None
        found = [d for d in definitions(read.text, language) if d.first <= len(lines)]
        short = read.path.split("/")[-1]
        for definition in found:
            lines_kept.expect(f"{definition.first}\t{lines[definition.first - 1]}" in rows, _label(short, definition))
        for definition in named_definitions(found, read.question):
            last = min(definition.last, len(lines))
            body = [f"{number}\t{lines[number - 1]}" for number in range(definition.first, last + 1)]
            kept = sum(row in rows for row in body)
            bodies_kept.expect(kept == len(body), f"{_label(short, definition)}: {kept}/{len(body)} lines")
    for ranged in session.ranged_reads:
        ranges_kept.expect(ranged.output in received[ranged.tool_use_id], ranged.label)
    return [lines_kept, bodies_kept, ranges_kept]


def _label(file: str, definition: Definition) -> str:
    return f"{file}:{definition.first} {'.'.join((*definition.scope, definition.name))}"


# --------------------------------------------------------------------------
# Running and reporting


def describe(session: CodingSession) -> None:
    languages = sorted({language_of(read.path) or "?" for read in session.whole_reads})
    tools = [step.split(":", 1)[0] for step in session.steps]
    print(
        f"\n## Coding session: {len(session.requests)} requests, {len(session.whole_reads)} whole-file reads "
        f"({', '.join(languages)}), {len(session.ranged_reads)} ranged reads, {tools.count('Edit')} edits, "
        f"{tools.count('Bash')} Bash calls; last request {len(session.requests[-1].body) / 1e6:.2f} MB\n"
    )


def in_cache_order(body: bytes) -> bytes:
    """The prompt as Anthropic caches it: tools, then system, then messages.

    Claude Code sends ``messages`` before ``system`` and ``tools``, so priced
    as raw body bytes (bench/session.py's way) its unchanging tools and system
    would look like a fresh cache write every turn, for the proxy and direct
    alike, and blur the ratio.
    """
    document = json.loads(body)
    prompt = {key: document[key] for key in ("tools", "system", "messages") if key in document}
    return json.dumps(prompt, separators=(",", ":"), ensure_ascii=False).encode()


def report(session: CodingSession, proxied: list[bytes], direct: list[bytes]) -> bool:
    """Print the per-turn table, totals, targets and fact checks; True if every target is met and no fact lost."""
    through = price_turns([in_cache_order(body) for body in proxied])
    straight = price_turns([in_cache_order(body) for body in direct])
    as_sent = _total(price_turns(proxied)) / _total(price_turns(direct))
    print("| turn | step | tokens direct | tokens proxy | billed direct | billed proxy | ratio |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    ratios = []
    for turn, (step, p, d) in enumerate(zip(session.steps, through, straight, strict=True), 1):
        ratios.append(p.anthropic / d.anthropic)
        print(
            f"| {turn} | {step} | {d.tokens:,} | {p.tokens:,} | {d.anthropic:,.0f} | {p.anthropic:,.0f} "
            f"| {ratios[-1]:.2f} |"
        )
    billed = _total(through) / _total(straight)
    breaks = len({turn for turn, _ in prefix_breaks([r.body for r in session.requests], proxied)})
    dearer = sum(1 for ratio in ratios if ratio > 1 + 1e-9)
    print(
        f"\nTokens: direct {sum(p.tokens for p in straight):,}, proxy {sum(p.tokens for p in through):,}; "
        f"last request: direct {straight[-1].tokens:,}, proxy {through[-1].tokens:,}"
    )
    print(
        f"Billed input (Anthropic rule, units of one uncached token): direct {_total(straight):,.0f}, "
        f"proxy {_total(through):,.0f}; priced on the body bytes as sent instead: {as_sent:.2f}x direct\n"
    )
    targets = [
        (billed <= TARGET_BILLED, f"billed input {billed:.2f}x direct (target <= {TARGET_BILLED}x)"),
        (breaks == 0, f"prefix breaks {breaks} (target 0)"),
        (dearer == 0, f"max per-turn ratio {max(ratios):.2f}, {dearer} turns dearer than direct (target none)"),
    ]
    for met, text in targets:
        print(f"- {'PASS' if met else 'FAIL'}: {text}")
    reads(session, proxied[-1], direct[-1])
    print("\n## Facts in the last request that reached the upstream\n")
    checks = check_facts(session, proxied[-1])
    for check in checks:
        kept = check.total - len(check.missing)
        print(f"- {'PASS' if not check.missing else 'FAIL'}: {check.name}: {kept}/{check.total} kept")
        for label in check.missing[:25]:
            print(f"    missing {label}")
        if len(check.missing) > 25:
            print(f"    ... and {len(check.missing) - 25} more")
    return all(met for met, _ in targets) and not any(check.missing for check in checks)


def reads(session: CodingSession, proxied: bytes, direct: bytes) -> None:
    """Tokens of each whole-file read in the last request, as the client sent it and as the upstream got it."""
    sent, received = tool_results(direct), tool_results(proxied)
    print("\n| whole-file read | language | tokens sent | tokens forwarded |")
    print("|---|---|---:|---:|")
    before = after = 0
    for read in session.whole_reads:
        count = tokens(sent[read.tool_use_id].encode()), tokens(received[read.tool_use_id].encode())
        before, after = before + count[0], after + count[1]
        print(f"| {read.path.split('/')[-1]} | {language_of(read.path)} | {count[0]:,} | {count[1]:,} |")
    print(f"| all {len(session.whole_reads)} | | {before:,} | {after:,} ({after / before:.2f}x) |")


def _total(priced: list[Priced]) -> float:
    return sum(p.anthropic for p in priced)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.parse_args()
    session = coding_session()
    describe(session)
    processes = Processes(Path(tempfile.mkdtemp(prefix="headroom-coding-session-")))
    try:
        ports = start(processes, options=("--compression", "stable"))
        proxied = forwarded_bodies(ports, session.requests, lambda p: p.proxy)
        direct = forwarded_bodies(ports, session.requests, lambda p: p.upstream)
    finally:
        processes.stop_all()
    ok = report(session, proxied, direct)
    print(f"\nTargets {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
