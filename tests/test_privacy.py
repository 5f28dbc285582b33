"""Library telemetry is off in every process that imports the package, before any heavy import."""

from __future__ import annotations

import os
import subprocess
import sys

from headroom_twisted.privacy import TELEMETRY_SWITCHES, switch_off_telemetry


def test_switch_overrides_an_environment_that_opted_in() -> None:
    environ = {"ORT_DISABLE_TELEMETRY": "0", "PATH": "/bin"}
    switch_off_telemetry(environ)
    assert environ == {**TELEMETRY_SWITCHES, "PATH": "/bin"}


def test_importing_the_package_switches_telemetry_off_before_onnxruntime_loads() -> None:
    environment = {k: v for k, v in os.environ.items() if k not in TELEMETRY_SWITCHES}
    probe = (
        "import sys, os, headroom_twisted\n"
        "assert 'onnxruntime' not in sys.modules\n"
        "print(os.environ['ORT_DISABLE_TELEMETRY'])"
    )
    completed = subprocess.run([sys.executable, "-c", probe], env=environment, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "1"
