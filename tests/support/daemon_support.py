"""How tests start `twistd headroom` as a real process, plainly or socket-activated."""

from __future__ import annotations

TWISTD_MAIN = "from twisted.scripts.twistd import run; run()"
"""`python -c TWISTD_MAIN ...` is `twistd ...` with the interpreter running the tests."""

EXEC_AS_SOCKET_ACTIVATED = (
    "import os, sys; fd = int(sys.argv[1])\nif fd != 3: os.dup2(fd, 3); os.close(fd)\n"
    "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1', LISTEN_FDNAMES='headroom.socket'); "
    f"os.execv(sys.executable, [sys.executable, '-c', {TWISTD_MAIN!r}, *sys.argv[2:]])"
)
"""What systemd does for a socket unit: `python -c EXEC_AS_SOCKET_ACTIVATED FD twistd-args...`
puts the listening socket FD at fd 3, sets LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES
for this very process, and execs twistd (same pid)."""
