"""Compression: detection, token counting, compressors, live-zone walkers and surgery.

Nothing in this package knows about HTTP or Twisted; it is plain data in,
plain data out, so it can run on worker threads and be tested without a reactor.
"""
