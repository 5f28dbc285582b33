"""Talking to the providers: routing, header rules, the agent, and the body protocol."""
