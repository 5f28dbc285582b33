"""Nothing leaves the machine but the proxied requests (issue 20, item 1).

The daemon runs in a network namespace that has only loopback, under strace,
with a fresh HOME and without the telemetry opt-outs in its environment: the
package must switch library telemetry off itself. onnxruntime's telemetry,
when on, writes under ~/.cache/Microsoft at load and tries DNS within
seconds; both are observed here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DRIVER = Path(__file__).resolve().parents[2] / "support" / "isolated_daemon.py"
WAIT_AFTER_REQUEST_SECONDS = 20


def _namespaces_available() -> str | None:
    """Why the test cannot run here, or None."""
    for tool in ("unshare", "strace", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True)
    if probe.returncode != 0:
        return f"cannot create a network namespace: {probe.stderr.decode().strip()}"
    return None


@pytest.mark.skipif(_namespaces_available() is not None, reason=str(_namespaces_available()))
def test_idle_daemon_after_a_compressed_request_phones_nowhere_and_writes_nothing() -> None:
    completed = subprocess.run(
        ["unshare", "--net", sys.executable, str(DRIVER), str(WAIT_AFTER_REQUEST_SECONDS)],
        capture_output=True,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stderr.decode()[-3000:]
    report = json.loads(completed.stdout)
    assert report["status"] == 200
    assert report["upstream_bodies"] and report["upstream_bodies"][0] < report["sent_body"], "nothing was compressed"
    assert report["outbound"] == []
    assert report["files_under_home"] == []
    assert report["non_json_lines"] == []
    assert report["log_lines"] > 0
