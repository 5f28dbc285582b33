"""Walkers that find the live zone (the blocks no prompt cache holds yet) per API."""
