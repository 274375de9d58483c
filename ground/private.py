"""The platform's files are private: the store, logs, rejects files, prompts and secrets hold residents' data.

Every `outreach` command runs with umask 077 (files 0600, folders 0700); `tighten` puts an older installation's
files right. Secrets the platform makes for itself (the engine token, the prompt key) are created once, atomically,
so an API process and a worker starting together agree on them.
"""

import os
import secrets
import stat
from pathlib import Path
from typing import TextIO

from ground.settings import Settings

PRIVATE_UMASK = 0o077


def make_files_private() -> None:
    os.umask(PRIVATE_UMASK)


def private_text_file(path: Path, encoding: str = "utf-8") -> TextIO:
    """`path` opened for writing text (CSV-ready: no newline translation), readable by the platform's user only,
    whatever the umask; a file left by an earlier run keeps its mode otherwise, hence the fchmod."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    return open(descriptor, "w", encoding=encoding, newline="")


def tighten(folder: Path) -> int:
    """Folders 0700 and files 0600 under `folder` (links are not followed). Returns how many modes changed."""
    changed = 0
    if not folder.is_dir():
        return changed
    for path in [folder, *folder.rglob("*")]:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            continue
        wanted = 0o700 if stat.S_ISDIR(mode) else stat.S_IMODE(mode) & 0o700
        if stat.S_IMODE(mode) != wanted:
            path.chmod(wanted)
            changed += 1
    return changed


def secret_in_file(path: Path) -> str:
    """The secret kept in `path`, made (random, mode 0600) by whichever process asks first."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as sink:
            sink.write(secrets.token_urlsafe(32))
        try:
            os.link(draft, path)  # atomic, and fails if another process made it first: theirs wins
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


def engine_token(settings: Settings) -> str:
    """The secret between the platform and the engine: the setting, or one kept for this installation."""
    return settings.engine_token.get_secret_value() or secret_in_file(settings.engine_token_file)
