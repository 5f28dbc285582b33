"""Detection: structural checks for the shapes Magika calls text, Magika for the rest."""

from __future__ import annotations

from headroom_twisted.compress.blocks.detect import detect

PYTEST_LOG = "\n".join(
    [
        "============================= test session starts ==============================",
        "collecting ... collected 120 items",
        *[f"tests/test_paths.py::FilePathTests::test_case_{i} PASSED                [ {i}%]" for i in range(20)],
        "tests/test_paths.py::FilePathTests::test_walk FAILED                      [ 99%]",
        "========================= 1 failed, 119 passed in 1.2s =========================",
    ]
)
GREP = "\n".join(f"twisted/internet/base.py:{i}:        self.callLater(0, f)" for i in range(10, 30))
DIFF = """diff -ru a/x.py b/x.py
--- a/x.py\t2023-05-22 15:08:07.000000000 +0000
+++ b/x.py\t2024-05-20 13:47:22.000000000 +0000
@@ -1,3 +1,3 @@
 import os
-import sys
+import json
 print(1)
"""


def test_structural_types() -> None:
    assert detect('[{"a": 1}, {"a": 2}]') == "json"
    assert detect('{\n  "files": []\n}\n') == "json"
    assert detect(PYTEST_LOG) == "log"
    assert detect(GREP) == "search"
    assert detect(DIFF) == "diff"


def test_bracketed_log_lines_are_not_json() -> None:
    text = "\n".join(f"[INFO] step {i} running" for i in range(20))
    assert detect(text) == "log"


def test_magika_for_code_and_prose() -> None:
    code = "import os\n\n\ndef main(argv):\n    for name in os.listdir(argv[1]):\n        print(name)\n" * 8
    assert detect(code) == "code"
    assert detect("The quick brown fox jumps over the lazy dog. " * 40) == "text"
