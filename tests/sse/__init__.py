"""Tests for the SSE telemetry side branch (pure code, no reactor)."""
