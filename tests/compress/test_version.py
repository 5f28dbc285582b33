"""The compressors' output is pinned to COMPRESSOR_VERSION.

Stable compression promises the same rewrite for the same block in every
process of one version. A change to any compressor's output must therefore
come with a new version (so operators know an upgrade costs one cache
rebuild); this test fails until both the version and its fingerprint are
updated together.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from headroom_twisted.compress.blocks.policy import compress_block
from headroom_twisted.compress.tool_call import tool_call
from headroom_twisted.compress.version import COMPRESSOR_VERSION

CORPUS = Path(__file__).resolve().parents[2] / "bench" / "corpus"

FINGERPRINTS = {
    "2026.12.6": "158903d07737e0ed9cec9a2eb54108df23a70ccf8303d33ce418c93179b448b6",
    "2026.12.8": "64b4252032bc798a3e1f3928559836c8f323c388184a0f783cd5bc5b3518022d",
}
"""COMPRESSOR_VERSION -> SHA-256 of every corpus case's rewrite (see `fingerprint`)."""


def fingerprint() -> str:
    digest = hashlib.sha256()
    for case in json.loads((CORPUS / "cases.json").read_text()):
        text = (CORPUS / case["file"]).read_text()
        call = tool_call(case["call"]["name"], case["call"]["arguments"]) if "call" in case else None
        result = compress_block(text, case["query"], "cl100k_base", call)
        digest.update(json.dumps([case["name"], result.changed, result.text]).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def test_compressor_output_changes_only_with_a_new_version() -> None:
    current = fingerprint()
    assert FINGERPRINTS.get(COMPRESSOR_VERSION) == current, (
        f"compressor output changed: bump COMPRESSOR_VERSION in headroom_twisted/compress/version.py "
        f"and pin {current!r} for it in FINGERPRINTS"
    )
