"""Log compressor: failures, tracebacks and verdicts kept; passes collapsed with a tally."""

from __future__ import annotations

from headroom_twisted.compress.compressors import logs


def _pytest_log() -> str:
    passes = [
        f"tests/test_url.py::URLTests::test_case_{i} PASSED                   [{i % 100:3d}%]" for i in range(300)
    ]
    return "\n".join(
        [
            "============================= test session starts ==============================",
            "platform linux -- Python 3.11.7, pytest-9.2.0",
            "collecting ... collected 302 items",
            *passes[:150],
            "tests/test_url.py::URLTests::test_port FAILED                           [ 50%]",
            *passes[150:],
            "tests/test_url.py::URLTests::test_skip SKIPPED (no network)             [ 99%]",
            "",
            "=================================== FAILURES ===================================",
            "______________________________ URLTests.test_port ______________________________",
            "",
            "    def test_port(self):",
            ">       assert URL.fromText('https://h/').port == 80",
            "E       AssertionError: assert 443 == 80",
            "",
            "tests/test_url.py:42: AssertionError",
            "=========================== short test summary info ============================",
            "FAILED tests/test_url.py::URLTests::test_port - AssertionError: assert 443 == 80",
            "=================== 1 failed, 300 passed, 1 skipped in 1.20s ===================",
        ]
    )


def test_failures_and_summary_survive_passes_collapse() -> None:
    text = _pytest_log()
    result = logs.compress(text, "why did the tests fail?")
    for fact in (
        "test_port FAILED",
        "AssertionError: assert 443 == 80",
        "tests/test_url.py:42",
        "1 failed, 300 passed, 1 skipped",
        "test session starts",
    ):
        assert fact in result.text
    assert "PASSED" in result.text and "lines omitted" in result.text
    assert len(result.text) < len(text) / 4


def test_collapsed_runs_say_what_they_held() -> None:
    result = logs.compress(_pytest_log(), "")
    assert "[... 150 similar lines omitted; 150 PASSED ...]" in result.text
    assert "[... 151 similar lines omitted; 150 PASSED, 1 SKIPPED ...]" in result.text


def test_tracebacks_are_kept_whole() -> None:
    noise = [f"[INFO] worker {i} idle" for i in range(50)]
    trace = [
        "Traceback (most recent call last):",
        '  File "/srv/app/main.py", line 10, in <module>',
        "    run()",
        '  File "/srv/app/main.py", line 7, in run',
        "    connect(port=8080)",
        "ConnectionRefusedError: [Errno 111] Connection refused",
    ]
    result = logs.compress("\n".join(noise[:25] + trace + noise[25:]), "")
    assert "\n".join(trace) in result.text


def test_repeated_warnings_are_deduplicated() -> None:
    lines = ["build started"]
    for i in range(40):
        lines.append(f"WARNING: Location 'file:///opt/simple/pkg{i}/' is ignored")
        lines.append(f"Collecting pkg{i}")
        lines.append(f"  Using cached pkg{i}-1.0-py3-none-any.whl")
    lines.append("Successfully installed pkg0-1.0")
    result = logs.compress("\n".join(lines), "")
    assert result.text.count("WARNING: Location") <= logs.MAX_REPEATS + 1  # + the last one, kept as a tail line
    assert "Successfully installed pkg0-1.0" in result.text


def test_query_words_keep_their_lines() -> None:
    lines = [f"copying build/lib/mod{i}.py -> target" for i in range(100)]
    result = logs.compress("\n".join(lines), "where did mod57.py go?")
    assert "copying build/lib/mod57.py -> target" in result.text


def test_indented_traceback_ends_at_its_own_indentation() -> None:
    lines = (
        ["  building wheel"]
        + [
            "  Traceback (most recent call last):",
            '    File "setup.py", line 3, in <module>',
            "      import numpy",
            "  ModuleNotFoundError: No module named 'numpy'",
            "",
        ]
        + [f"  copying src/mod{i}.py -> build/lib" for i in range(60)]
    )
    result = logs.compress("\n".join(lines), "")
    assert "  ModuleNotFoundError: No module named 'numpy'" in result.text
    assert "copying src/mod30.py" not in result.text


def test_identical_errors_are_collapsed() -> None:
    lines = ["start"] + ["ERROR: connection to 10.0.0.7:5432 refused, retrying" for _ in range(200)] + ["done"]
    result = logs.compress("\n".join(lines), "")
    assert result.text.count("connection to 10.0.0.7") <= logs.MAX_REPEATS + logs.TAIL_LINES
    assert "[... 194 repeats of a line kept above omitted ...]" in result.text
