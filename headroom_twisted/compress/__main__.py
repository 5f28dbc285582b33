"""``python -m headroom_twisted.compress FILE [--query Q] [--model M]``.

Shows a user exactly what the proxy would send upstream for one tool
output: the compressed text on stdout, a one-line summary on stderr.
"""

from __future__ import annotations

import argparse
import sys

from headroom_twisted.compress.blocks.policy import compress_block
from headroom_twisted.compress.blocks.tokens import counter_for


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m headroom_twisted.compress",
        description="Compress one tool output the way the proxy would.",
    )
    parser.add_argument("file", help="file holding the tool output ('-' for stdin)")
    parser.add_argument("--query", default="", help="the user's question, used to pick what is relevant")
    parser.add_argument("--model", default=None, help="model name, selects the tokenizer")
    args = parser.parse_args(argv)
    if args.file == "-":
        text = sys.stdin.read()
    else:
        with open(args.file, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    result = compress_block(text, args.query, counter_for(args.model).encoding_name)
    sys.stdout.write(result.text)
    if not result.text.endswith("\n"):
        sys.stdout.write("\n")
    print(
        f"type={result.content_type} strategy={result.strategy} reason={result.reason} "
        f"tokens={_fmt(result.tokens_before)}->{_fmt(result.tokens_after)} "
        f"bytes={result.text_bytes_before:,}->{result.text_bytes_after:,} ms={result.ms:.1f}",
        file=sys.stderr,
    )
    return 0


def _fmt(tokens: int | None) -> str:
    return "-" if tokens is None else f"{tokens:,}"


if __name__ == "__main__":
    sys.exit(main())
