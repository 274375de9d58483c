"""The model fingerprint: retrain exactly when something training reads has changed."""

import shutil

import pytest

from bot import training
from outreach.settings import PROJECT_ROOT


@pytest.fixture
def project_copy(tmp_path):
    shutil.copy(PROJECT_ROOT / "config.yml", tmp_path / "config.yml")
    shutil.copytree(PROJECT_ROOT / "bot", tmp_path / "bot", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_training_inputs_cover_the_engine_project():
    names = {path.relative_to(PROJECT_ROOT).as_posix() for path in training.training_inputs()}
    assert {"config.yml", "bot/domain.yml", "bot/data/nlu.yml", "bot/data/rules.yml"} <= names
    assert "bot/client.py" not in names


def test_a_changed_training_example_changes_the_fingerprint(project_copy):
    before = training.fingerprint(project_copy)
    nlu = project_copy / "bot" / "data" / "nlu.yml"
    nlu.write_text(nlu.read_text().replace("- xin chào\n", "- xin chào\n      - chào anh\n", 1))
    assert training.fingerprint(project_copy) != before


def test_platform_side_code_does_not_force_a_retrain(project_copy):
    before = training.fingerprint(project_copy)
    (project_copy / "bot" / "client.py").write_text("# edited\n")
    (project_copy / "bot" / "channel.py").write_text("# edited\n")
    assert training.fingerprint(project_copy) == before


def test_the_fingerprint_names_the_model():
    assert training.model_path(PROJECT_ROOT / "var").name == f"outreach-{training.fingerprint()}.tar.gz"
