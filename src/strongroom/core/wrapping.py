"""Response wrapping: a response is stored in the cubbyhole of a new single-use token, and the client
gets only that token (wrap_info)."""

from __future__ import annotations

from strongroom.errors import InvalidRequest
from strongroom.logical import Request, Response


class Wrapping:
    async def wrap(self, req: Request, resp: Response) -> Response:
        raise InvalidRequest("response wrapping is not supported yet")
