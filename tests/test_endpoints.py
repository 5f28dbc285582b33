"""The endpoint table: what a path means, one rule per question."""

from __future__ import annotations

import pytest

from headroom_twisted.endpoints import (
    Endpoint,
    Provider,
    endpoint_for_path,
    label_for_path,
    path_of,
    provider_for_path,
)


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        (b"/v1/chat/completions", Endpoint.CHAT),
        (b"/v1/messages", Endpoint.ANTHROPIC),
        (b"/v1/responses", Endpoint.RESPONSES),
    ],
)
def test_the_three_llm_paths_name_their_endpoint(path, endpoint):
    assert endpoint_for_path(path) is endpoint
    assert endpoint.provider is provider_for_path(path)
    assert label_for_path(path) == path.decode()


@pytest.mark.parametrize(
    "path",
    [
        b"/v1/chat/completions/",
        b"/v1/messages/count_tokens",
        b"/v1/responses/resp_123",
        b"/V1/messages",
        b"/v1/chat%2Fcompletions",
        b"//v1/messages",
        b"/openai/v1/chat/completions",
        b"/v1/models",
        b"",
    ],
)
def test_any_other_spelling_names_no_llm_endpoint(path):
    """Exact match: the upstream would treat each of these as another resource."""
    assert endpoint_for_path(path) is None


@pytest.mark.parametrize(
    ("target", "path"),
    [
        (b"/v1/responses?stream=true", b"/v1/responses"),
        (b"/x?/v1/messages", b"/x"),
        (b"/v1/models", b"/v1/models"),
        (b"/?a?b", b"/"),
    ],
)
def test_the_query_string_is_cut_at_the_first_question_mark(target, path):
    assert path_of(target) == path


@pytest.mark.parametrize(
    ("path", "provider"),
    [
        (b"/v1/messages", Provider.ANTHROPIC),
        (b"/v1/messages/count_tokens", Provider.ANTHROPIC),
        (b"/v1/messages/batches/abc", Provider.ANTHROPIC),
        (b"/v1/messagesx", Provider.OPENAI),
        (b"/v1/chat/completions", Provider.OPENAI),
        (b"/anything/else", Provider.OPENAI),
    ],
)
def test_anthropic_owns_v1_messages_and_everything_below_it(path, provider):
    assert provider_for_path(path) is provider


@pytest.mark.parametrize(
    ("path", "label"),
    [
        (b"/v1/messages/count_tokens", "/v1/messages/count_tokens"),
        (b"/v1/models", "/v1/models"),
        (b"/v1/models/gpt-4o", "other"),
        (b"/v1/chat/completions/", "other"),
    ],
)
def test_metrics_labels_are_bounded(path, label):
    assert label_for_path(path) == label
