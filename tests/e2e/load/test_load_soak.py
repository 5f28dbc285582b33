"""The soak, scaled down for CI: 100 SSE streams x 5 s plus compressed requests through one daemon.

bench/soak.py runs the full size (500 streams x 30 s); this runs the same
code with smaller numbers and checks what it reports.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from load_support import SOAK

INTERVAL = 0.25  # seconds between a stream's events


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_soak_streams_are_whole_unstalled_and_leave_no_fds_or_memory_behind(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    run = subprocess.run(
        [
            sys.executable,
            str(SOAK),
            "--streams=100",
            "--duration=5",
            f"--interval={INTERVAL}",
            "--ramp=1",
            "--compress-rate=3",
            "--idle-connections=200",
            "--rounds=2",
            f"--json={out}",
        ],
        capture_output=True,
        text=True,
        timeout=220,
    )
    assert out.exists(), run.stdout + run.stderr
    reports = json.loads(out.read_text())
    for report in reports:
        assert report["streams_ok"] == 100, report["stream_errors"]
        assert report["max_gap_s"] <= 5 * INTERVAL, "a stream stalled for several event intervals"
        assert report["compressed_total"] >= 10 and report["compressed_ok"] == report["compressed_total"]
        assert report["after"]["proxy_fds"] <= report["baseline"]["proxy_fds"]
        assert all(report["checks"].values()), run.stdout
    retained = [report["after"]["proxy_rss_kib"] for report in reports]
    assert retained[1] - retained[0] <= 4 * 1024, f"RSS kept growing: {retained} KiB"
    assert run.returncode == 0, run.stdout + run.stderr
