"""The client's address as the audit log records it (X-Forwarded-For is believed from trusted proxies only: see
`app.web.create_app`)."""

from typing import Annotated

from fastapi import Depends, Request


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


ClientIpDep = Annotated[str | None, Depends(client_ip)]
