"""The block size below which nothing is compressed, in a module that loads nothing else.

The proxy process reads it to skip small bodies without a round trip to a
worker; importing it must not pull in the detector, the grammars or the
tokenizers, which only the worker processes load.
"""

MIN_BLOCK_BYTES = 512
"""A smaller block costs more to mark than any compressor saves."""
