"""The house's one rule, checked on every run: a lower layer never imports a higher one, and nothing imports in a
circle (type-only imports count). The contracts are in pyproject.toml; `make lint` runs the same check."""

import importlinter.cli  # noqa: F401  (sets import-linter up, as its command does)
from importlinter.application import use_cases

from ground.settings import PROJECT_ROOT


def test_the_import_contracts_are_kept(capsys, monkeypatch):
    # The use case, not the command: the command reconfigures logging and would silence the loggers of later tests.
    monkeypatch.chdir(PROJECT_ROOT)
    kept = use_cases.lint_imports(config_filename=str(PROJECT_ROOT / "pyproject.toml"), cache_dir=None, no_logo=True)
    report = capsys.readouterr().out
    assert kept, report
    assert "0 broken" in report, report
