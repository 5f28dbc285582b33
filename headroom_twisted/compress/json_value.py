"""The type of a parsed JSON document, for code that reads documents it did not write.

A request body is the client's: any value may be of any JSON type, so every
read is checked with ``isinstance`` first, and this type makes the checker
insist on it.
"""

from __future__ import annotations

from typing import TypeAlias

JsonValue: TypeAlias = "dict[str, JsonValue] | list[JsonValue] | str | int | float | bool | None"
"""Whatever a JSON parser returns (ints of any size, as Python parses them)."""

JsonObject: TypeAlias = "dict[str, JsonValue]"
