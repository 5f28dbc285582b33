"""The resource tree: the proxy resource and the local endpoints."""
