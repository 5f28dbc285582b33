"""Walkers that select every tool output of the conversation, each with the query before it."""
