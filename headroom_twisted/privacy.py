"""Switch off every library's own telemetry before the library loads.

The proxy carries API keys and source code, so nothing may leave the machine
but the proxied requests. onnxruntime (loaded by Magika in the compression
workers) otherwise runs Microsoft's telemetry: it writes a device id and an
event queue under ``~/.cache/Microsoft`` and tries DNS for Microsoft's
collector dozens of times a minute. Its switch is an environment variable
read when the library loads, so it is set here, from the package's
``__init__``: every process that runs project code (the proxy, the
``twistd`` plugin, the worker processes, which are spawned and import the
package before anything else) sets it before the first heavy import, and the
workers inherit it from the proxy's environment besides.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

TELEMETRY_SWITCHES: dict[str, str] = {
    # onnxruntime, loaded by Magika.
    "ORT_DISABLE_TELEMETRY": "1",
    # The common opt-out that well-behaved tools read (consoledonottrack.com).
    "DO_NOT_TRACK": "1",
}


def switch_off_telemetry(environ: MutableMapping[str, str] = os.environ) -> None:
    """Set every known telemetry opt-out, whatever the environment held: there is no opting back in."""
    for name, value in TELEMETRY_SWITCHES.items():
        environ[name] = value
