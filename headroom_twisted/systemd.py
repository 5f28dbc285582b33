"""sd_notify, the few lines of it the proxy needs (no library required)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


def notify(message: bytes, environ: Mapping[str, str] = os.environ) -> bool:
    """Send `message` (e.g. b"READY=1") to systemd; False when not run by systemd."""
    address = environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message)
    return True
