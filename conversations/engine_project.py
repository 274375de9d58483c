"""Which trained model belongs to the current engine project (the Rasa project in bot/ and config.yml).

A model is named after a fingerprint of everything training reads, so a stale model is never served and an
unchanged project is never trained twice. What training reads is derived, not listed: config.yml, the domain, the
data, and the custom components config.yml names with every module of bot/ they import. Code that only serves
(the turn channel, the actions) is not in it: editing it needs no retraining.
"""

import ast
import hashlib
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BOT_DIR = PROJECT_ROOT / "bot"
CONFIG = PROJECT_ROOT / "config.yml"
DOMAIN = BOT_DIR / "domain.yml"
DATA_DIR = BOT_DIR / "data"
ENGINE_PACKAGE = "bot"


def training_inputs(root: Path = PROJECT_ROOT) -> list[Path]:
    """Every file `rasa train` reads, custom NLU code included (its changes change the model)."""
    bot = root / ENGINE_PACKAGE
    data = sorted((bot / "data").rglob("*.yml"))
    return [root / "config.yml", bot / "domain.yml", *data, *sorted(_training_code(root))]


def _training_code(root: Path) -> set[Path]:
    """The modules of the pipeline's custom components (`name: bot.module.Class`) and all they import from bot/."""
    config = yaml.safe_load((root / "config.yml").read_text()) or {}
    names = [str(step.get("name", "")) for step in config.get("pipeline") or [] if isinstance(step, dict)]
    pending = {name.rsplit(".", 1)[0] for name in names if name.startswith(f"{ENGINE_PACKAGE}.")}
    found: set[Path] = set()
    while pending:
        path = root / (pending.pop().replace(".", "/") + ".py")
        if path in found or not path.exists():
            continue
        found.add(path)
        pending |= _engine_imports(path)
    return found


def _engine_imports(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            modules |= {f"{node.module}.{alias.name}" for alias in node.names}  # `from bot import vntext`
    return {module for module in modules if module.split(".")[0] == ENGINE_PACKAGE}


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
