"""Language quality on held-out data, scored by Rasa itself, with thresholds.

- NLU: `rasa test nlu` on tests/nlu/heldout_nlu.yml, written apart from the training data (bot/data/nlu.yml).
- Dialogue: `rasa test core` on tests/stories/, one story per path of the conversation.
The scores are printed at the end of the test run.
"""

import json
import os
import subprocess

import pytest

from conversations import engine_project
from ground.settings import PROJECT_ROOT, Settings
from tests.conftest import QUALITY_REPORT

pytestmark = pytest.mark.engine
INTENT_MACRO_F1_MIN = 0.95
ENTITY_F1_MIN = 0.90


def _rasa(*args: str) -> subprocess.CompletedProcess[str]:
    settings = Settings()
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "RASA_TELEMETRY_ENABLED": "false",
    }
    command = [
        str(settings.engine_python),
        "-m",
        "rasa",
        *args,
        "--model",
        str(engine_project.model_path(settings.engine_models_dir)),
    ]
    return subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def nlu_reports(tmp_path_factory):
    out = tmp_path_factory.mktemp("nlu-results")
    result = _rasa("test", "nlu", "--nlu", "tests/nlu/heldout_nlu.yml", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    return {path.stem: json.loads(path.read_text()) for path in out.glob("*_report.json")}


def test_intents_on_held_out_utterances(nlu_reports):
    report = nlu_reports["intent_report"]
    macro_f1 = report["macro avg"]["f1-score"]
    weakest = sorted((v["f1-score"], k) for k, v in report.items() if isinstance(v, dict) and "support" in v)[:3]
    QUALITY_REPORT.append(
        f"NLU intents: macro F1 {macro_f1:.3f} on {report['macro avg']['support']} held-out "
        f"utterances (accuracy {report['accuracy']:.3f}; weakest "
        + ", ".join(f"{name} {f1:.2f}" for f1, name in weakest)
        + ")"
    )
    assert macro_f1 >= INTENT_MACRO_F1_MIN


def test_entities_on_held_out_utterances(nlu_reports):
    report = nlu_reports["VietnameseEntityExtractor_report"]
    micro, macro = report["micro avg"]["f1-score"], report["macro avg"]["f1-score"]
    per_type = ", ".join(
        f"{k} {v['f1-score']:.2f}"
        for k, v in report.items()
        if k not in ("micro avg", "macro avg", "weighted avg") and isinstance(v, dict)
    )
    QUALITY_REPORT.append(f"NLU entities: micro F1 {micro:.3f}, macro F1 {macro:.3f} ({per_type})")
    assert micro >= ENTITY_F1_MIN and macro >= ENTITY_F1_MIN


def test_every_dialogue_path_story(tmp_path):
    result = _rasa("test", "core", "--stories", "tests/stories", "--out", str(tmp_path), "--fail-on-prediction-errors")
    report = (
        json.loads((tmp_path / "story_report.json").read_text()) if (tmp_path / "story_report.json").exists() else {}
    )
    failed = (
        (tmp_path / "failed_test_stories.yml").read_text() if (tmp_path / "failed_test_stories.yml").exists() else ""
    )
    stories = failed.count("- story:")
    QUALITY_REPORT.append(
        f"Dialogue stories: {'all passed' if result.returncode == 0 else f'{stories} failed'}; "
        f"action accuracy {report.get('accuracy', 'n/a')}"
    )
    assert result.returncode == 0, failed[-4000:] or result.stderr[-3000:]
