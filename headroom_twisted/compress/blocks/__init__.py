"""Block policy: what one tool output is, and whether its rewrite is worth forwarding.

`policy.compress_block` takes one block's text and its question, peels the
agent's wrapper (`envelope`, `wrappers`), detects the payload (`detect`),
runs the matching compressor and keeps the result only when it is smaller by
the token count (`tokens`); `result` holds the `BlockResult` it returns.
"""
