"""Recordings of what residents said on calls in stream mode, for the tracer who reads the transcript.

Kept only for campaigns that opt in (`record_voice`), one WAV file (16-bit, 8 kHz) per utterance, under a random
name in a private folder (0700, files 0600), for `recording_retention_days`; then removed by the worker's daily
job. The transcript turn keeps the file's console URL; the console serves a file only to users who may read that
transcript, and says when one has expired.
"""

import os
import re
import secrets
import time
import wave
from pathlib import Path

from ground.settings import Settings
from voice.telephony import RATE

ROUTE = "/console/recordings"  # where the console serves them (app/console/recordings.py)
NAME = re.compile(r"[0-9a-f]{32}\.wav")


class Recordings:
    def __init__(self, folder: Path, retention_days: int) -> None:
        self.folder = Path(folder)
        self.retention_s = retention_days * 86400

    @classmethod
    def from_settings(cls, settings: Settings) -> "Recordings":
        return cls(settings.recordings_dir, settings.recording_retention_days)

    def keep(self, pcm: bytes) -> str:
        """Save one utterance (16-bit samples at the line's rate); returns the URL its transcript turn links to."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = f"{secrets.token_hex(16)}.wav"
        temporary = self.folder / f".{name}.part"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle, wave.open(handle, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes(pcm)
        os.replace(temporary, self.folder / name)
        return f"{ROUTE}/{name}"

    def file(self, name: str) -> Path | None:
        """The recording of a name this module gave, if it is still kept; None for any other name."""
        if not NAME.fullmatch(name):
            return None
        path = self.folder / name
        return path if path.is_file() else None

    def expire(self, now: float | None = None) -> int:
        """Remove the recordings older than the retention; returns how many went."""
        if not self.folder.is_dir():
            return 0
        cutoff = (time.time() if now is None else now) - self.retention_s
        old = [p for p in self.folder.iterdir() if NAME.fullmatch(p.name) and p.stat().st_mtime < cutoff]
        for path in old:
            path.unlink(missing_ok=True)
        return len(old)
