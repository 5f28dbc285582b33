"""The root of the resource tree: a few exact local paths, everything else proxied."""

from __future__ import annotations

from twisted.web.resource import IResource, Resource
from twisted.web.server import Request


class RootResource(Resource):
    """Routes exact local paths (GET only) to local resources, all else to the proxy.

    Only exact matches are local, so `/healthz/x` or `POST /healthz` still go
    upstream untouched, and a provider path can never be shadowed by accident.
    """

    def __init__(self, proxy: IResource, local: dict[bytes, IResource]) -> None:
        super().__init__()
        self._proxy = proxy
        self._local = local

    def getChildWithDefault(self, path: bytes, request: Request) -> IResource:
        if request.method in (b"GET", b"HEAD"):
            local = self._local.get(request.path)
            if local is not None:
                return local
        return self._proxy
