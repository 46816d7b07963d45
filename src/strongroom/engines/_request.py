"""Small request helpers shared by the builtin secrets engines."""

from __future__ import annotations

from strongroom.framework import Backend, Op, Request, Response
from strongroom.framework import storage_of as storage_of  # the engines' name for it

IGNORED_PARAMS = "Endpoint ignored these unrecognized parameters: [{}]"


def warn_ignored_params(backend: Backend, req: Request, resp: Response | None) -> Response | None:
    """Add Vault's "Endpoint ignored these unrecognized parameters" warning to a response.

    Vault's framework does this for every path; ours does not (yet), so the KV engines apply it
    after dispatch. Responses without a body (204) cannot carry warnings, as in Vault.
    """
    if resp is None or req.operation is Op.HELP or (resp.status == 404 and resp.data is None):
        return resp
    hit = backend.route(req.path)
    if hit is None:
        return resp
    path, groups = hit
    ignored = [k for k in sorted(req.data) if k not in path.fields and k not in groups]
    if ignored:
        resp.warnings.append(IGNORED_PARAMS.format(" ".join(ignored)))
    return resp
