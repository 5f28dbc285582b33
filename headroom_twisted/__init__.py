"""headroom-twisted: a byte-faithful LLM reverse proxy that compresses the live zone."""

__version__ = "0.1.0"
