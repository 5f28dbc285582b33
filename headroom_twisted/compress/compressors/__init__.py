"""The compressors: one pure function per content type, ``compress(text, query) -> CompressResult``.

Each knows one shape (JSON rows, build and test logs, search results, diffs,
listings) and keeps every line that carries a fact the question may need;
`result` holds the contract they share. None of them decides *whether* a
block is compressed: that is `compress.blocks.policy`.
"""
