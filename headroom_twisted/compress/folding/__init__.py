"""Folding source files that agents read: keep the outline, fold the bodies the task does not need.

``reads`` recognises a file read from the tool call that produced it,
``languages`` holds the tree-sitter grammars, ``outline`` decides which rows
fold, and ``fold`` writes the result with one marker per folded run.
"""
