"""Telephone audio: G.711 mu-law at 8 kHz, the only format Twilio Media Streams carry, and the way any sound file
gets there.

The standard library's `audioop` is gone in Python 3.13 (PEP 594), so mu-law is two lookup tables in numpy: 256
entries to decode, 65,536 to encode (every 16-bit sample), built once. Resampling is `soxr` (the SoX resampler);
files of any common format and rate are read with `soundfile` (libsndfile: WAV, FLAC, OGG, MP3).
"""

from functools import cache, lru_cache
from pathlib import Path

import numpy as np
import soundfile
import soxr

RATE = 8000  # samples per second on the line
FRAME_MS = 20
FRAME_SAMPLES = RATE * FRAME_MS // 1000  # 160: one mu-law byte per sample
SILENCE = b"\xff"  # mu-law of a zero sample
_BIAS = 0x84  # G.711: added before the segment search so that every segment has a leading one
_CLIP = 32635


@cache
def _decode_table() -> np.ndarray:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent, mantissa = (code >> 4) & 0x07, code & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(code & 0x80, -magnitude, magnitude).astype(np.int16)


@cache
def _encode_table() -> np.ndarray:
    """G.711 as CPython's audioop did it: on the 14-bit scale (the sample shifted down, rounding to minus
    infinity), the magnitude clipped and biased, its segment and four mantissa bits, inverted."""
    sample = np.arange(-32768, 32768, dtype=np.int32) >> 2
    magnitude = np.minimum(np.abs(sample), _CLIP >> 2) + (_BIAS >> 2)
    segment = np.floor(np.log2(magnitude)).astype(np.int32) - 5
    code = np.where(segment >= 8, 0x7F, (np.minimum(segment, 7) << 4) | ((magnitude >> (segment + 1)) & 0x0F))
    return (code ^ np.where(sample < 0, 0x7F, 0xFF)).astype(np.uint8)


def ulaw_decode(ulaw: bytes) -> np.ndarray:
    """Mu-law bytes to 16-bit samples."""
    return _decode_table()[np.frombuffer(ulaw, dtype=np.uint8)]


def ulaw_encode(pcm: np.ndarray) -> bytes:
    """16-bit samples to mu-law bytes."""
    return _encode_table()[np.asarray(pcm, dtype=np.int16).astype(np.int32) + 32768].tobytes()


def resample(pcm: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """16-bit samples at another rate."""
    if from_rate == to_rate:
        return np.asarray(pcm, dtype=np.int16)
    return soxr.resample(np.asarray(pcm, dtype=np.int16), from_rate, to_rate)


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """A sound file's samples (16-bit, channels mixed down to one) and its rate. Raises ValueError for a file that
    is not sound."""
    try:
        samples, rate = soundfile.read(str(path), dtype="int16", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as error:
        raise ValueError(f"{Path(path).name} is not a sound file this platform reads: {error}") from error
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    return np.asarray(mono, dtype=np.int16), int(rate)


def on_the_line(path: Path) -> bytes:
    """A sound file as the telephone carries it: mu-law, 8 kHz, mono."""
    samples, rate = read_audio(path)
    return ulaw_encode(resample(samples, rate, RATE))


def prompt_on_the_line(path: Path) -> bytes:
    """A rendered prompt as the telephone carries it, transcoded once and kept in memory (a file's name changes
    with its text, and a removed file's copy ages out with the least used)."""
    stat = Path(path).stat()
    return _transcoded(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=512)  # a prompt of 5 s is 40 kB on the line: 20 MB at most
def _transcoded(path: str, _mtime_ns: int, _size: int) -> bytes:
    return on_the_line(Path(path))


def frames(ulaw: bytes) -> list[bytes]:
    """Mu-law audio cut into 20 ms frames, the last one padded with silence (a partial frame may not play)."""
    padded = ulaw + SILENCE * (-len(ulaw) % FRAME_SAMPLES)
    return [padded[start : start + FRAME_SAMPLES] for start in range(0, len(padded), FRAME_SAMPLES)]
