"""Which trained model belongs to the current engine project (pure Python, used by both environments).

A model is named after a fingerprint of everything training reads, so a stale model is never served and an
unchanged project is never trained twice.
"""

import hashlib
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BOT_DIR = PROJECT_ROOT / "bot"
CONFIG = PROJECT_ROOT / "config.yml"
DOMAIN = BOT_DIR / "domain.yml"
DATA_DIR = BOT_DIR / "data"

# Modules of bot/ that training never runs: editing them must not force a retrain.
NOT_TRAINING_CODE = {"__init__.py", "channel.py", "client.py", "training.py", "actions.py", "answers.py"}


def training_inputs(root: Path = PROJECT_ROOT) -> list[Path]:
    """Every file `rasa train` reads, custom NLU code included (its changes change the model)."""
    bot = root / "bot"
    data = sorted((bot / "data").rglob("*.yml"))
    code = sorted(p for p in bot.rglob("*.py") if p.name not in NOT_TRAINING_CODE)
    return [root / "config.yml", bot / "domain.yml", *data, *code]


def fingerprint(root: Path = PROJECT_ROOT) -> str:
    digest = hashlib.sha256()
    for path in training_inputs(root):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def model_name() -> str:
    return f"outreach-{fingerprint()}"


def model_path(models_dir: Path) -> Path:
    return models_dir / f"{model_name()}.tar.gz"
