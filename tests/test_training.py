"""The model fingerprint: retrain exactly when something training reads has changed."""

import shutil

import pytest

from conversations import engine_project
from ground.settings import PROJECT_ROOT


@pytest.fixture
def project_copy(tmp_path):
    shutil.copy(PROJECT_ROOT / "config.yml", tmp_path / "config.yml")
    shutil.copytree(PROJECT_ROOT / "bot", tmp_path / "bot", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_training_inputs_cover_the_engine_project():
    names = {path.relative_to(PROJECT_ROOT).as_posix() for path in engine_project.training_inputs()}
    assert {"config.yml", "bot/domain.yml", "bot/data/nlu.yml", "bot/data/rules.yml"} <= names
    assert {"bot/components.py", "bot/vnparse.py", "bot/vntext.py"} <= names  # the components and their imports
    assert not {"bot/channel.py", "bot/actions.py", "bot/answers.py"} & names  # serving only


def test_a_changed_training_example_changes_the_fingerprint(project_copy):
    before = engine_project.fingerprint(project_copy)
    nlu = project_copy / "bot" / "data" / "nlu.yml"
    nlu.write_text(nlu.read_text().replace("- xin chào\n", "- xin chào\n      - chào anh\n", 1))
    assert engine_project.fingerprint(project_copy) != before


def test_code_training_never_runs_does_not_force_a_retrain(project_copy):
    before = engine_project.fingerprint(project_copy)
    (project_copy / "bot" / "new_helper.py").write_text("# a module no component imports\n")
    (project_copy / "bot" / "channel.py").write_text("# edited\n")
    assert engine_project.fingerprint(project_copy) == before


def test_a_module_a_component_imports_is_training_code(project_copy):
    """Found by following imports from config.yml's components, so a new helper they use is never forgotten."""
    before = engine_project.fingerprint(project_copy)
    (project_copy / "bot" / "new_helper.py").write_text("SPELLINGS = {}\n")
    vnparse = project_copy / "bot" / "vnparse.py"
    vnparse.write_text("from bot import new_helper  # noqa: F401\n" + vnparse.read_text())
    changed = engine_project.fingerprint(project_copy)
    assert changed != before
    (project_copy / "bot" / "new_helper.py").write_text("SPELLINGS = {'ko': 'không'}\n")
    assert engine_project.fingerprint(project_copy) != changed


def test_the_fingerprint_names_the_model():
    assert engine_project.model_path(PROJECT_ROOT / "var").name == f"outreach-{engine_project.fingerprint()}.tar.gz"
