"""What a new user reads is complete and plain: every setting in the README and .env.example, the API's schema names."""

import pytest

from ground.settings import PROJECT_ROOT, Settings


@pytest.mark.parametrize("document", ["README.md", ".env.example"])
def test_every_setting_is_documented(document):
    text = (PROJECT_ROOT / document).read_text()
    missing = [name for name in Settings.model_fields if f"OUTREACH_{name.upper()}" not in text]
    assert missing == []


def test_each_api_schema_has_one_plain_name():
    """Two models of one name make FastAPI qualify both with their module path (`app__schemas__AlertOut`) in the
    API's documentation: each model the API shows has a name of its own."""
    from app.web import create_app

    schemas = create_app(Settings(docs_enabled=True)).openapi()["components"]["schemas"]
    assert [name for name in schemas if "__" in name] == []


def test_the_example_settings_file_loads_as_the_defaults_it_says():
    example = Settings(_env_file=PROJECT_ROOT / ".env.example")
    assert example.asr_engine is None and example.vosk_model_dir is None, "an empty value means the default"
    assert example.voice_end_of_speech_ms == Settings().voice_end_of_speech_ms
