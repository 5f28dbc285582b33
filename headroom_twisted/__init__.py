"""headroom-twisted: a byte-faithful LLM reverse proxy that compresses tool outputs cache-stably."""

from headroom_twisted.privacy import switch_off_telemetry

# Before any submodule can import a library that phones home (see privacy.py).
switch_off_telemetry()

__version__ = "0.1.0"
