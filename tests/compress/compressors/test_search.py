"""Search compressor: grouped by file, relevant first, capped, every file accounted for."""

from __future__ import annotations

from headroom_twisted.compress.compressors import search


def _grep(files: int, per_file: int) -> str:
    return "\n".join(
        f"site-packages/twisted/mod{f}/impl.py:{10 * m + 1}:    reactor.callLater({m}, self.tick{m})"
        for f in range(files)
        for m in range(per_file)
    )


def test_grouped_by_file_with_path_once() -> None:
    result = search.compress(_grep(3, 3), "")
    lines = result.text.split("\n")
    assert lines[0] == "[search results; paths relative to site-packages/twisted/]"
    assert lines[1] == "mod0/impl.py"
    assert lines[2] == "  1: reactor.callLater(0, self.tick0)"
    assert result.text.count("mod1/impl.py") == 1


def test_per_file_cap_prefers_relevant_lines_and_counts_the_rest() -> None:
    result = search.compress(_grep(2, 20), "what calls tick17?")
    assert "  171: reactor.callLater(17, self.tick17)" in result.text
    assert f"[... {20 - search.PER_FILE:,} more matches in this file omitted ...]" in result.text


def test_no_file_is_dropped_silently() -> None:
    files = search.MAX_FILES + search.MAX_LISTED + 10
    result = search.compress(_grep(files, 2), "")
    assert "mod0/impl.py" in result.text
    assert f"mod{search.MAX_FILES}/impl.py [2 matches not shown]" in result.text
    assert "[... 10 more files omitted; 20 matches ...]" in result.text


def test_relevant_files_are_shown_first_even_if_late() -> None:
    text = _grep(200, 2) + "\nsite-packages/twisted/internet/base.py:812:    def callLater(self, delay, *args):"
    result = search.compress(text, "where is def callLater in base.py?")
    lines = result.text.split("\n")
    assert lines[1:3] == ["internet/base.py", "  812: def callLater(self, delay, *args):"]


def test_long_lines_are_clipped_around_the_relevant_word() -> None:
    text = "\n".join([f"static/app.min.js:1:{'x' * 5000}needle{'y' * 5000}", "a/b.py:2:needle", "a/c.py:3:x"])
    result = search.compress(text, "needle in app.min.js")
    assert "needle" in result.text.split("\n")[1]
    assert len(result.text) < 1000


def test_grep_context_lines_are_counted_not_kept() -> None:
    text = "\n".join(
        [
            "src/app.py-9-    # setup",
            "src/app.py:10:    port = 8080",
            "src/app.py-11-    serve()",
            "--",
            "src/db.py-1-import os",
            "src/db.py:2:PORT = 5432",
            "Binary file src/app.pyc matches",
        ]
    )
    result = search.compress(text, "")
    assert result.text.split("\n") == [
        "Binary file src/app.pyc matches",
        "[... 4 context lines and separators omitted ...]",
        "src/app.py",
        "  10: port = 8080",
        "src/db.py",
        "  2: PORT = 5432",
    ]
