"""`twistd headroom`: the command-line Options and makeService."""

from __future__ import annotations

import os
from typing import cast

from twisted.application.service import IService
from twisted.python import usage

from headroom_twisted.config import OPTION_SPECS, Config, ConfigError, build_config, env_name


class Options(usage.Options):
    """Every option also reads HEADROOM_<NAME> from the environment; the flag wins."""

    synopsis = "[options]"
    longdesc = "A byte-faithful reverse proxy for LLM APIs that compresses large tool outputs."
    optParameters = [
        [spec.name, None, None, f"{spec.help} [env {env_name(spec.name)}, default {spec.default}]"]
        for spec in OPTION_SPECS
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []

    def opt_listen(self, description: str) -> None:
        """A Twisted endpoint to listen on; repeatable. [env HEADROOM_LISTEN, space-separated;
        default tcp:8787:interface=127.0.0.1]
        """
        self["listen"].append(description)

    def postOptions(self) -> None:
        flags = {spec.name: self[spec.name] for spec in OPTION_SPECS}
        try:
            self["config"] = build_config(flags, self["listen"], os.environ)
        except ConfigError as error:
            raise SystemExit(f"headroom: {error}") from None


def makeService(options: Options) -> IService:
    from twisted.internet import reactor

    from headroom_twisted.logging import configure_logging
    from headroom_twisted.wiring import IProxyReactor, build_service

    config: Config = options["config"]
    configure_logging(config.log_format, config.log_level)
    # The installed reactor, which type checkers see as the module attribute
    # it replaces at import. Every reactor twistd installs (epoll, poll,
    # select, asyncio) provides each interface IProxyReactor gathers; none
    # declares that type-checking-only union, hence a cast, not a check.
    return build_service(config, cast(IProxyReactor, reactor))
