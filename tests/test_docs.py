"""Every setting is documented where a new user looks: the README and .env.example."""

import pytest

from ground.settings import PROJECT_ROOT, Settings


@pytest.mark.parametrize("document", ["README.md", ".env.example"])
def test_every_setting_is_documented(document):
    text = (PROJECT_ROOT / document).read_text()
    missing = [name for name in Settings.model_fields if f"OUTREACH_{name.upper()}" not in text]
    assert missing == []
