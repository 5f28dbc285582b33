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
"""

from __future__ import annotations

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


def case(name: str, text: str, kind: str, query: str, facts: list[str]) -> dict:
    missing = [f for f in facts if f not in text]
    if missing or not facts:
        raise SystemExit(f"{name}: facts not in the raw output: {missing or 'none extracted'}")
    path = CORPUS / f"{name}.txt"
    path.write_text(text)
    return {"name": name, "file": path.name, "kind": kind, "query": query, "facts": facts}


def main() -> None:
    CORPUS.mkdir(parents=True, exist_ok=True)
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
    (CORPUS / "cases.json").write_text(json.dumps(cases, indent=2) + "\n")
    total = sum((CORPUS / c["file"]).stat().st_size for c in cases)
    print(f"{len(cases)} cases, {total:,} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
