"""Rendered voice prompts, fetched by Twilio for `<Play>`: no token, and cacheable forever.

A name is an HMAC of what is said under a secret key: only the TwiML of a call gives it out, and a guessed
greeting does not lead to it. A name not rendered here, or a personal prompt removed after its call, is 404 alike.
"""

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from app.deps import PlatformDep
from app.schemas import error_responses
from voice.prompts import MEDIA_TYPES, ROUTE

router = APIRouter(prefix=ROUTE, tags=["voice (Twilio)"])

# A name is the keyed hash of engine, language and text: its content never changes.
IMMUTABLE = "public, max-age=31536000, immutable"


@router.get("/{file_name}", responses=error_responses(404), summary="A rendered prompt (audio/mpeg or audio/wav)")
def prompt_audio(file_name: str, platform: PlatformDep) -> FileResponse:
    path = platform.prompts.cached_file(file_name)
    if path is None:
        raise HTTPException(404, "no such voice prompt")
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers={"Cache-Control": IMMUTABLE})
