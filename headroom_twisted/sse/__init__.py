"""Server-sent-event telemetry: framing and one state machine per provider."""
