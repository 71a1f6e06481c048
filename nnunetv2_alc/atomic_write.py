"""Write a folder or a file so that readers see either the old or the complete new version, never a half.

A folder is built in a hidden temporary sibling (same file system, so the final move is a rename)
and moved into place only when the work inside the ``with`` block succeeded; on any error, including
Ctrl-C, the temporary folder is removed and the target is left as it was.
"""

from __future__ import annotations

import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from nnunetv2_alc.input_errors import InputDataError


def _sibling(target: Path, tag: str) -> Path:
    """A fresh hidden path next to ``target`` (hidden, so nnU-Net's DatasetXXX_ lookup never sees it)."""
    return target.with_name(f".{target.name}.{tag}-{secrets.token_hex(4)}")


@contextmanager
def atomic_folder(target: str | os.PathLike, replace: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``target`` that becomes ``target`` when the block succeeds.

    An existing ``target`` is replaced only if ``replace`` is true; otherwise it is an error (checked
    before any work starts). The old folder is removed after the new one is in place.
    """
    target = Path(target)
    if target.exists() and not replace:
        raise InputDataError(f"{target} already exists; refusing to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = _sibling(target, "tmp")
    temporary.mkdir()
    try:
        yield temporary
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    if target.exists():
        old = _sibling(target, "old")
        os.rename(target, old)
        os.rename(temporary, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(temporary, target)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and an atomic replace."""
    path = Path(path)
    temporary = _sibling(path, "tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
