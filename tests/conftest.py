"""Test-wide setup: the shared helpers in tests/support are importable by name from every test.

The test tree mirrors the package: `tests/web/test_proxy.py` tests
`headroom_twisted/web/proxy.py`, and so on, in memory (Clock, StringTransport,
treq's in-memory agent). Suites that need real sockets, processes or the
official SDKs live under `tests/e2e/` and are marked `slow`.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))
