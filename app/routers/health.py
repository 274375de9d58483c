"""Liveness of the platform and what it depends on."""

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.deps import PlatformDep
from conversations.engine import EngineError
from ground.store import ping

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="200 when the store and the engine answer, 503 naming what is down")
async def healthz(platform: PlatformDep) -> JSONResponse:
    checks: dict[str, dict[str, Any]] = {}
    try:
        await asyncio.to_thread(ping, platform.db_engine)
        checks["store"] = {"ok": True, "backend": platform.db_engine.dialect.name}
    except Exception as error:  # any driver error means the store is down, whatever its class
        checks["store"] = {"ok": False, "error": f"{error.__class__.__name__}: {error}"[:300]}
    try:
        status = await platform.engine_client.status()
        checks["engine"] = {"ok": True, "model": status.get("model_file")}
    except EngineError as error:
        checks["engine"] = {"ok": False, "error": str(error)}
    down = [name for name, check in checks.items() if not check["ok"]]
    body = {"status": "ok" if not down else "unavailable", "down": down, **checks}
    return JSONResponse(body, status_code=503 if down else 200)
