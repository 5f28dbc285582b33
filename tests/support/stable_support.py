"""Recorded agent sessions, multi-turn conversations, and the prefix-stability check.

The property every stable test checks: a history item (message or input
item) that the client resent unchanged must reach the upstream exactly as it
did on the previous turn, so the provider's cached prefix stays valid.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headroom_twisted.endpoints import Endpoint

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "clients"
CORPUS = Path(__file__).resolve().parents[2] / "bench" / "corpus"
AGENTS = ("claude-code", "codex", "chat-agent")
ENDPOINTS = {endpoint.value: endpoint for endpoint in Endpoint}


@dataclass(frozen=True)
class Turn:
    """One request of a recorded session and the reply the fake model gave."""

    path: str
    content_type: str
    body: bytes
    reply: bytes

    @property
    def endpoint(self) -> Endpoint:
        return ENDPOINTS[self.path.split("?", 1)[0]]


def session(agent: str) -> list[Turn]:
    """The LLM requests of one recorded session, in order (see fixtures/clients/build.py)."""
    records = json.loads(gzip.decompress((FIXTURES / f"{agent}.json.gz").read_bytes()))
    return [
        Turn(
            record["path"],
            record["content_type"],
            record["body"].encode("utf-8", "surrogateescape"),
            record["reply"].encode("utf-8", "surrogateescape"),
        )
        for record in records
    ]


def history(body: bytes) -> list[Any]:
    document = json.loads(body)
    return document["messages"] if "messages" in document else document["input"]


def prefix_breaks(sent: list[bytes], forwarded: list[bytes]) -> list[tuple[int, int]]:
    """(turn, item) for every item resent unchanged whose forwarded form changed since the turn before."""
    breaks = []
    for turn in range(1, len(sent)):
        before_sent, now_sent = history(sent[turn - 1]), history(sent[turn])
        before_forwarded, now_forwarded = history(forwarded[turn - 1]), history(forwarded[turn])
        for index, (old, new) in enumerate(zip(before_sent, now_sent, strict=False)):
            if old == new and before_forwarded[index] != now_forwarded[index]:
                breaks.append((turn, index))
    return breaks


def corpus_text(name: str) -> str:
    return (CORPUS / name).read_text()
