"""Regenerate bench/corpus/ from real tool output made on this machine.

Each case is a file holding one tool's raw output, plus an entry in
``cases.json`` with the question a user would ask about it and the facts an
answer needs (strings that must survive compression). Facts are extracted
from the output itself (the failing tests' names and assertion lines, the
version asked about, the matching file:line), so the cases stay honest when
the installed packages change.

Run from the repository root: ``.venv/bin/python bench/make_corpus.py``.
Needs the venv, grep, diff, dpkg-query, and the package registry for
``pip download`` / ``pip install``.

The agent cases (``"capped": true``) are cut from the recorded sessions of
Claude Code, Codex and Qwen Code in ``../shared/clients/``: each is one tool
output exactly as the agent sent it, wrapper lines, the agent's own cap and
truncation markers included. ``--agents`` rebuilds only those.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "bench" / "corpus"
PYTHON = sys.executable
CLIENTS = ROOT.parent / "shared" / "clients"
SESSIONS = {"cc": "claude-code/direct/012.json", "codex": "codex/direct/009.json", "qwen": "chat-agent/direct/010.json"}
SITE = Path(sysconfig.get_paths()["purelib"])

FAILING_TESTS = '''\
"""A small, deliberately failing test module run next to a real test suite."""
import json
import urllib.parse
from twisted.web.http_headers import Headers


def test_quote_space():
    assert urllib.parse.quote("a b") == "a+b"


def test_json_roundtrip():
    assert json.loads("[1, 2]") == [1, 2, 3]


def test_header_lookup():
    headers = Headers({b"content-type": [b"text/html"]})
    assert headers.getRawHeaders(b"Content-Type") == [b"application/json"]


def test_split_path():
    assert "a/b/c".split("/", 1) == ["a", "b", "c"]


def test_passes():
    assert urllib.parse.unquote("a%20b") == "a b"
'''

FAILING_TRIAL = '''\
"""Deliberately failing trial tests run next to Twisted's own."""
from twisted.python.url import URL
from twisted.trial import unittest


class URLExpectations(unittest.TestCase):
    def test_port_default(self):
        self.assertEqual(URL.fromText("https://example.com/").port, 80)

    def test_child_path(self):
        self.assertEqual(URL.fromText("http://h/a").child("b").asText(), "http://h/b")

    def test_ok(self):
        self.assertEqual(URL.fromText("http://h/").host, "h")
'''


def run(args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run a command and return stdout+stderr as text (non-zero exit is expected for test runs)."""
    proc = subprocess.run(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
    return proc.stdout.decode("utf-8", "replace")


def pytest_case(tmp: Path) -> dict:
    tests = tmp / "pytest_run"
    tests.mkdir()
    (tests / "test_expectations.py").write_text(FAILING_TESTS)
    modules = [
        "test/test_paths.py",
        "python/test/test_url.py",
        "web/test/test_http_headers.py",
        "test/test_formmethod.py",
        "python/test/test_deprecate.py",
        "python/test/test_components.py",
        "python/test/test_util.py",
    ]
    paths = [str(SITE / "twisted" / m) for m in modules]
    out = run(
        [
            PYTHON,
            "-m",
            "pytest",
            "-v",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tests),
            str(tests / "test_expectations.py"),
            *paths,
        ],
        cwd=tests,
    )
    facts = []
    for line in out.splitlines():
        found = re.match(r"^FAILED (\S+)::(\w+) - (.*)$", line)
        if found:
            facts.append(found[2])
            facts.append(found[3][:60])
    return case("pytest_failures", out, "log", "Which tests failed and why?", facts)


def trial_case(tmp: Path) -> dict:
    pkg = tmp / "trial_run"
    pkg.mkdir()
    (pkg / "test_expectations.py").write_text(FAILING_TRIAL)
    env = dict(os.environ, PYTHONPATH=str(pkg))
    out = run(
        [
            PYTHON,
            "-m",
            "twisted.trial",
            "test_expectations",
            "twisted.test.test_paths",
            "twisted.python.test.test_url",
            "twisted.test.test_defer",
            "twisted.test.test_formmethod",
            "twisted.web.test.test_http_headers",
            "twisted.python.test.test_util",
        ],
        cwd=tmp,
        env=env,
    )
    facts = [
        "FAILED (",
        "test_expectations.URLExpectations.test_port_default",
        "443 != 80",
        "test_expectations.URLExpectations.test_child_path",
        "'http://h/a/b' != 'http://h/b'",
        "No module named 'hamcrest'",
    ]
    return case("trial_failures", out, "log", "Why did the trial run fail?", facts)


def pip_install_case(tmp: Path) -> dict:
    out = run(
        [
            PYTHON,
            "-m",
            "pip",
            "install",
            "-v",
            "--no-cache-dir",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--target",
            str(tmp / "target"),
            "six==1.16.0",
            "idna==3.7",
            "attrs==23.2.0",
        ]
    )
    return case(
        "pip_install_verbose",
        out,
        "log",
        "Did the install succeed and which versions were installed?",
        ["Successfully installed", "six-1.16.0", "idna-3.7", "attrs-23.2.0"],
    )


def make_case(tmp: Path) -> dict:
    """A C build with make -k: many clean compiles, two warnings, one hard error."""
    src = tmp / "cbuild"
    src.mkdir()
    for i in range(60):
        body = f"int f{i}(int x) {{ return x * {i}; }}\n"
        if i == 17:
            body = "int f17(int x) { int unused; return x; }\n"
        if i == 33:
            body = "int f33(int x) { return x + undefined_total; }\n"
        if i == 48:
            body = '#include <stdio.h>\nint f48(long x) { printf("%d\\n", x); return 0; }\n'
        (src / f"unit{i}.c").write_text(body)
    (src / "Makefile").write_text(
        "OBJS := $(patsubst %.c,%.o,$(sort $(wildcard *.c)))\n"
        "all: libunits.a\nlibunits.a: $(OBJS)\n\tar rcs $@ $^\n"
        "%.o: %.c\n\tgcc -Wall -Wextra -O2 -c $< -o $@\n"
    )
    out = run(["make", "-k", "-j1"], cwd=src)
    return case(
        "make_gcc_errors",
        out,
        "log",
        "Why does the build fail?",
        ["unit33.c", "undefined_total", "unused variable", "unit48.c", "-Wformat=", "Error 1"],
    )


def grep_case() -> dict:
    out = run(["grep", "-rn", "callLater", "twisted", "--include=*.py"], cwd=SITE)
    target = next(line for line in out.splitlines() if "twisted/internet/base.py" in line and "def callLater" in line)
    line_no = target.split(":")[1]
    return case(
        "grep_calllater",
        out,
        "search",
        "Where is callLater defined in the reactor base class (twisted/internet/base.py)?",
        ["twisted/internet/base.py", f"{line_no}: ", "def callLater"],
    )


def grep_venv_case() -> dict:
    root = ROOT / ".venv" / "lib"
    out = run(["grep", "-rn", "--include=*.py", "-e", "DeprecationWarning", "."], cwd=root)
    target = next(line for line in out.splitlines() if "/twisted/python/deprecate.py:" in line)
    path, line_no = target.split(":")[0:2]
    return case(
        "grep_deprecationwarning",
        out,
        "search",
        "Where does twisted/python/deprecate.py emit DeprecationWarning?",
        [path.split("site-packages/")[1], f"{line_no}: "],
    )


def diff_case(tmp: Path) -> dict:
    trees = []
    for version in ("2.31.0", "2.32.3"):
        run(
            [
                PYTHON,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-d",
                str(tmp / "dl"),
                f"requests=={version}",
            ]
        )
        with tarfile.open(tmp / "dl" / f"requests-{version}.tar.gz") as tar:
            tar.extractall(tmp / "src", filter="data")
        trees.append(f"requests-{version}")
    out = run(["diff", "-ru", trees[0] + "/requests", trees[1] + "/src/requests"], cwd=tmp / "src")
    headers = [line for line in out.splitlines() if line.startswith(("diff -ru", "Only in"))]
    return case(
        "diff_requests",
        out,
        "diff",
        "What changed in requests' source between 2.31.0 and 2.32.3?",
        headers + ['-__version__ = "2.31.0"', '+__version__ = "2.32.3"'],
    )


def git_diff_case(tmp: Path) -> dict:
    src = tmp / "src"
    out = run(["git", "diff", "--no-index", "requests-2.31.0/tests", "requests-2.32.3/tests"], cwd=src)
    headers = [line for line in out.splitlines() if line.startswith("diff --git")]
    return case(
        "git_diff_requests_tests",
        out,
        "diff",
        "How did the requests test-suite change between 2.31.0 and 2.32.3?",
        headers,
    )


def dpkg_case() -> dict:
    fmt = (
        '{"package":"${Package}","version":"${Version}","architecture":"${Architecture}",'
        '"status":"${Status}","installed_size":"${Installed-Size}","source":"${source:Package}"},\\n'
    )
    raw = run(["dpkg-query", "-W", "-f", fmt])
    records = json.loads("[" + raw.rstrip().rstrip(",") + "]")
    out = json.dumps(records, indent=2)
    wanted = [r for r in records if r["package"] in ("zlib1g", "libssl3", "libssl3t64", "openssl")]
    facts = [r["version"] for r in wanted] + [r["package"] for r in wanted]
    return case(
        "dpkg_packages_json", out, "json", "Which versions of openssl, libssl3 and zlib1g are installed?", facts
    )


def files_case() -> dict:
    out = run(
        [
            "find",
            "twisted",
            "numpy",
            "pip",
            "-name",
            "*.py",
            "-printf",
            '{"path":"%p","size":%s,"mode":"%m","links":%n}\\n',
        ],
        cwd=SITE,
    )
    listed = sorted(out.splitlines())
    twisted = [line for line in listed if line.startswith('{"path":"twisted/')]
    others = [line for line in listed if not line.startswith('{"path":"twisted/')]
    records = [json.loads(line) for line in (twisted + others)[:1500]]
    names = ("twisted/web/client.py", "twisted/internet/defer.py", "twisted/internet/base.py")
    wanted = [r for r in records if r["path"] in names]
    text = json.dumps({"root": str(SITE), "count": len(records), "files": records}, indent=2)
    return case(
        "find_files_1500",
        text,
        "json",
        "How big are twisted/web/client.py, twisted/internet/defer.py and twisted/internet/base.py?",
        [r["path"] for r in wanted] + [str(r["size"]) for r in wanted],
    )


def pip_list_case() -> dict:
    out = run([PYTHON, "-m", "pip", "list", "--format=json", "--verbose"])
    data = json.loads(out[out.index("[") :])
    wanted = [p for p in data if p["name"].lower() in ("twisted", "treq")]
    return case(
        "pip_list_json",
        json.dumps(data, indent=2),
        "json",
        "Which versions of Twisted and treq are installed?",
        [p["version"] for p in wanted],
    )


def source_case() -> dict:
    text = (SITE / "twisted" / "internet" / "task.py").read_text()
    return case(
        "source_task_py",
        text,
        "code",
        "How does LoopingCall schedule its calls?",
        ["class LoopingCall", "def start(", "def _scheduleFrom"],
    )


def tool_outputs(session: str) -> list[str]:
    """The tool outputs of a session's last request, in order (each agent sends the whole history)."""
    body = json.loads((CLIENTS / SESSIONS[session]).read_text())
    found: list[str] = []
    for item in body.get("messages", []) + body.get("input", []):
        content = item.get("output") if item.get("type", "").endswith("_output") else item.get("content")
        if item.get("role") == "tool" or item.get("type", "").endswith("_output"):
            found.append(_text_of(content))
        elif isinstance(content, list):
            found.extend(_text_of(block.get("content")) for block in content if block.get("type") == "tool_result")
    return found


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [] if isinstance(part, dict))


def _find(text: str, pattern: str) -> str:
    """The first match of ``pattern`` (its group 1 if it has one): a fact taken from the output itself."""
    found = re.search(pattern, text, re.M)
    if found is None:
        raise SystemExit(f"no match for {pattern!r}")
    return found.group(1) if found.re.groups else found.group(0)


def _cuts(text: str) -> list[str]:
    """The agent's own truncation markers and the saved-output paths: the model needs them to read on."""
    marks = re.findall(r"…\d+ chars truncated…|\.\.\. \[CONTENT TRUNCATED\] \.\.\.", text)
    saved = re.findall(r"(?:saved to|Full output saved to): (\S+)", text)
    return marks + saved


def _wrapper_facts(text: str) -> list[str]:
    lines = re.findall(
        r"^(?:Exit Code: .*|Process exited with code \d+|Shell cwd was reset to .*|\[notice\] .*)$", text, re.M
    )
    return lines + _cuts(text)


AGENT_CASES = [
    # (session, output index, name, kind, question, fact patterns)
    ("cc", 0, "cc_pytest", "log", "Did the test suite pass?", [r"\d+ passed in [\d.]+s"]),
    (
        "cc",
        1,
        "cc_pip_list_notice",
        "json",
        "Which versions of Twisted and treq are installed?",
        [r'"Twisted", "version": "([^"]+)"', r'"treq", "version": "([^"]+)"'],
    ),
    (
        "cc",
        2,
        "cc_grep_defs",
        "search",
        "Where is _handleResponse defined?",
        [r"def _handleResponse\(self, response, method.*", r"def _handleResponse\(self, response\):"],
    ),
    (
        "cc",
        3,
        "cc_git_log_p",
        "diff",
        "Where did free_port move to?",
        [r"^\+def free_port\(\) -> int:", r"^-def free_port\(\) -> int:", r"^diff --git a/bench/processes.py.*"],
    ),
    ("cc", 4, "cc_persisted_find", "listing", "Where is the full list of files?", []),
    (
        "cc",
        5,
        "cc_trial_log",
        "log",
        "Why did the trial run fail?",
        [
            r"test_forbiddenResource",
            r"No module named 'hamcrest'",
            r"FAILED \(skips=1, failures=1, errors=1, successes=\d+\)",
        ],
    ),
    ("cc", 6, "cc_dpkg_listing", "listing", "Which version of openssl is installed?", [r"^openssl [^ ]+"]),
    (
        "cc",
        8,
        "cc_read_http_py",
        "code",
        "Which classes does twisted/web/http.py define?",
        [r"^672\tclass HTTPClient\(basic\.LineReceiver\):", r"^849\tclass Request:"],
    ),
    ("codex", 0, "codex_pytest", "log", "Did the test suite pass?", [r"\d+ passed in [\d.]+s"]),
    (
        "codex",
        1,
        "codex_pip_list",
        "json",
        "Which versions of Twisted and treq are installed?",
        [r'"Twisted", "version": "([^"]+)"', r'"treq", "version": "([^"]+)"'],
    ),
    (
        "codex",
        2,
        "codex_grep_defs",
        "search",
        "Where is handleResponsePart defined?",
        [r"def handleResponsePart\(self, buffer\):"],
    ),
    ("codex", 3, "codex_git_log_p", "diff", "What changed in bench/soak.py?", [r"^diff --git a/bench/soak.py.*"]),
    ("codex", 4, "codex_find", "listing", "Is structlog/_config.py in the venv?", [r"_config\.py", r"structlog/"]),
    (
        "codex",
        5,
        "codex_trial_log",
        "log",
        "Why did the trial run fail?",
        [
            r"test_defer \.\.\..*\[ERROR\]",
            r"No module named 'hamcrest'",
            r"FAILED \(skips=1, failures=1, errors=1, successes=\d+\)",
        ],
    ),
    (
        "codex",
        6,
        "codex_dpkg_listing",
        "listing",
        "Which versions of python3 and zlib1g are installed?",
        [r"^python3 [^ ]+", r"^zlib1g [^ ]+"],
    ),
    ("codex", 7, "codex_dpkg_json_cut", "json", "Which version of apt is installed?", [r'"apt", "version": "([^"]+)"']),
    ("qwen", 0, "qwen_pytest", "log", "Did the test suite pass?", [r"\d+ passed in [\d.]+s"]),
    (
        "qwen",
        1,
        "qwen_pip_list",
        "json",
        "Which versions of Twisted and treq are installed?",
        [r'"Twisted", "version": "([^"]+)"', r'"treq", "version": "([^"]+)"'],
    ),
    (
        "qwen",
        2,
        "qwen_grep_defs",
        "search",
        "Where is handleResponsePart defined?",
        [r"def handleResponsePart\(self, buffer\):"],
    ),
    ("qwen", 3, "qwen_git_log_p", "diff", "Where did free_port move to?", [r"^diff --git a/bench/processes.py.*"]),
    ("qwen", 4, "qwen_find", "listing", "Is structlog/_config.py in the venv?", [r"_config\.py", r"structlog/"]),
    (
        "qwen",
        5,
        "qwen_trial_log",
        "log",
        "Why did the trial run fail?",
        [r"No module named 'hamcrest'", r"FAILED \(skips=1, failures=1, errors=1, successes=\d+\)"],
    ),
    (
        "qwen",
        6,
        "qwen_dpkg_listing",
        "listing",
        "Which versions of openssl and python3 are installed?",
        [r"^openssl [^ ]+", r"^python3 [^ ]+"],
    ),
    (
        "qwen",
        7,
        "qwen_grep_deferred",
        "search",
        "Where is DeferredResource defined?",
        [r"class DeferredResource\(resource\.Resource\):"],
    ),
    (
        "qwen",
        8,
        "qwen_git_diff_bench",
        "diff",
        "Where did free_port move to?",
        [r"^\+def free_port\(\) -> int:", r"^diff --git a/bench/processes.py.*"],
    ),
]


def agent_cases() -> list[dict]:
    """Tool outputs cut from the recorded agent sessions, facts taken from each before compressing."""
    outputs = {session: tool_outputs(session) for session in SESSIONS}
    cases = []
    for session, index, name, kind, query, patterns in AGENT_CASES:
        text = outputs[session][index]
        facts = [_find(text, p) for p in patterns] + _wrapper_facts(text)
        cases.append({**case(name, text, kind, query, facts), "capped": True, "agent": session})
    return cases


def case(name: str, text: str, kind: str, query: str, facts: list[str]) -> dict:
    missing = [f for f in facts if f not in text]
    if missing or not facts:
        raise SystemExit(f"{name}: facts not in the raw output: {missing or 'none extracted'}")
    path = CORPUS / f"{name}.txt"
    path.write_text(text)
    return {"name": name, "file": path.name, "kind": kind, "query": query, "facts": facts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", action="store_true", help="rebuild only the cases cut from agent sessions")
    args = parser.parse_args()
    CORPUS.mkdir(parents=True, exist_ok=True)
    if args.agents:
        kept = [c for c in json.loads((CORPUS / "cases.json").read_text()) if not c.get("capped")]
        _write(kept + agent_cases())
        return
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        cases = [
            pytest_case(tmp),
            trial_case(tmp),
            pip_install_case(tmp),
            make_case(tmp),
            grep_case(),
            grep_venv_case(),
            diff_case(tmp),
            git_diff_case(tmp),
            dpkg_case(),
            files_case(),
            pip_list_case(),
            source_case(),
        ]
    _write(cases + agent_cases())


def _write(cases: list[dict]) -> None:
    (CORPUS / "cases.json").write_text(json.dumps(cases, indent=2) + "\n")
    total = sum((CORPUS / c["file"]).stat().st_size for c in cases)
    print(f"{len(cases)} cases, {total:,} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
