"""Compression: plain data in, plain data out; no HTTP, no Twisted, no headers.

Three levels, outermost first:

- request level (this package): `plan` parses a body and picks its blocks
  with the walkers (`stable/`, `livezone/`), `spans` finds their literals,
  `rewrite`/`memo`/`pipeline` compress what is new, `surgery` splices the
  result in, and `processes` runs the CPU-bound halves in worker processes;
- block policy (`blocks/`): one block's wrapper, content type, compressor
  and keep/drop decision by token count;
- `compressors/`: one function per content type.

Which request reaches this package, and as which `Endpoint`, is decided in
`web/` from the HTTP request; nothing here reads a header.
"""
