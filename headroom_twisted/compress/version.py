"""The compressor version: part of every stable rewrite's identity.

Stable compression promises that a block is rewritten to the same bytes on
every turn, in every process. That holds only while the compressors behave
the same; a release whose compressors change output must bump this string,
so that rewrites made by different versions are never mixed up in a memo or
a log. ``tests/compress/test_version.py`` pins a fingerprint of the
compressors' output on the corpus to this version and fails when the output
changes without a bump.
"""

COMPRESSOR_VERSION = "2026.12.8"
