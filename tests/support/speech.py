"""Real Vietnamese speech for the voice tests and the bench: the clips with transcripts that ship in the `vieneu`
wheel (Apache-2.0; six speakers of the North and the South, 24 kHz), and single words cut out of them.

The cut points were found by sliding a window (25 ms steps) over each clip, on the line (mu-law 8 kHz) between
silences, and taking one in the middle of the windows viet-asr heard as that word alone; the tests check again that
the cut is heard as the word, so a cut that drifted would fail loudly.
"""

from importlib.resources import files
from pathlib import Path

import numpy as np

from voice.telephony import RATE, read_audio, resample, ulaw_encode

SAMPLES = Path(str(files("vieneu").joinpath("assets/samples")))
SPEAKERS = sorted(path.stem for path in SAMPLES.glob("*.wav"))
# word -> (speaker, start ms, end ms)
WORDS = {
    "không": ("Đoan (nữ miền Nam)", 1950, 2350),
    "có": ("Ly (nữ miền Bắc)", 275, 600),
    "một": ("Bình (nam miền Bắc)", 1250, 1700),
}


def clip(speaker: str) -> tuple[np.ndarray, int]:
    return read_audio(SAMPLES / f"{speaker}.wav")


def transcript(speaker: str) -> str:
    return (SAMPLES / f"{speaker}.txt").read_text(encoding="utf-8").strip()


def on_the_line(samples: np.ndarray, rate: int) -> bytes:
    """Speech as a caller's phone sends it: mu-law at 8 kHz."""
    return ulaw_encode(resample(samples, rate, RATE))


def spoken(word: str) -> bytes:
    """A word said by a real speaker, on the line."""
    speaker, start_ms, end_ms = WORDS[word]
    samples, rate = clip(speaker)
    return on_the_line(samples[start_ms * rate // 1000 : end_ms * rate // 1000], rate)


def sentence(speaker: str) -> bytes:
    return on_the_line(*clip(speaker))


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word edits (substitutions, insertions, deletions) over the reference's words, case and punctuation aside."""
    ref, hyp = _words(reference), _words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, said in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (word != said))
    return row[-1] / max(1, len(ref))


def _words(text: str) -> list[str]:
    return "".join(c if c.isalnum() or c.isspace() else " " for c in text.lower()).split()
