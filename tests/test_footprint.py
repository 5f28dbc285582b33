"""The proxy process loads no model: Magika, onnxruntime, numpy, the grammars and the tokenizers stay in the workers."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("magika", "onnxruntime", "numpy", "tree_sitter", "bpe_openai", "tiktoken")


def test_the_composition_root_imports_nothing_heavy() -> None:
    probe = (
        "import sys, headroom_twisted.wiring, headroom_twisted.tap\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[]"
