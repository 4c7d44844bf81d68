"""Where an output goes and whether it may go there, decided before anything is encoded.

A folder or a printf pattern (``shot_%05d.png``) means a PNG sequence; the output must not be the
input, must not exist unless overwriting, must not be claimed by another live run (``claim``), and its
directory must be writable (a missing one is created, and removed again if the run leaves it empty).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from birefnet.errors import ConfigError, OutputError
from pipeline.media import PRINTF_NUMBER, printf_name
from pipeline.sinks.claim import OutputClaim, claim_owner, remove_stale_partials
from pipeline.sinks.writers import sequence_files
from pipeline.sources import SourceInfo

notes = logging.getLogger("birefnet_video.notes")

DEFAULT_SEQUENCE_NAME = "frame_%06d.png"


SEQUENCE_EXTENSIONS = {"png": ".png", "exr": ".exr", "dpx": ".dpx", "tiff": ".tif", "jpeg": ".jpg"}
IMAGE_FILE_EXTENSIONS = (*SEQUENCE_EXTENSIONS.values(), ".tiff", ".jpeg")


def destination(path: str, codec: str | None = None, still: bool = False) -> tuple[Path, str]:
    """(final path, extension) — a folder or printf/#### pattern means an image sequence (PNG, or the
    ``codec``'s format for a folder). ``still``: the input is one image, so an image file name
    (``photo_rgba.png``) is that one file; for any other input it needs a pattern or a folder."""
    target = Path(path)
    target = target.with_name(printf_name(target.name))
    if PRINTF_NUMBER.search(target.name):
        return target, target.suffix.lower()
    if path.endswith(("/", os.sep)) or (target.exists() and target.is_dir()) or not target.suffix:
        suffix = SEQUENCE_EXTENSIONS.get((codec or "").lower(), ".png")
        return target / DEFAULT_SEQUENCE_NAME.replace(".png", suffix), suffix
    if target.suffix.lower() in IMAGE_FILE_EXTENSIONS and not still:
        raise ConfigError(f"a {target.suffix} output of a video or image sequence needs a frame-number "
                          f"pattern such as plate.####{target.suffix} or a folder, not {path}")
    return target, target.suffix.lower()


def writable_dir_error(directory: Path) -> str | None:
    """Why files cannot be created in ``directory`` (None when they can)."""
    if not directory.exists():
        return f"output directory does not exist: {directory}"
    if not directory.is_dir():
        return f"output parent is not a directory: {directory}"
    if not os.access(directory, os.W_OK | os.X_OK):
        return f"output directory is not writable: {directory}"
    return None


def check_destination(final: Path, info: SourceInfo, overwrite: bool,
                      sequence: bool) -> tuple[Path | None, OutputClaim]:
    """Refuse a destination we must not write, create a missing directory and claim the output name.

    Returns (the directory created, else None; the claim, held until the sink closes or aborts).
    Whether the output exists is decided under the claim, so two runs cannot both find it free."""
    check_not_input(final, info)
    parent, created = final.parent, None
    if not parent.exists():
        created = parent
        while not created.parent.exists():
            created = created.parent
        try:
            parent.mkdir(parents=True)
        except OSError as exc:
            raise OutputError(f"cannot create output directory {parent}: {exc.strerror}") from None
        notes.warning("created output directory %s", parent)
    try:
        problem = writable_dir_error(parent)
        if problem:
            raise OutputError(problem)
        claim = OutputClaim(final)
    except BaseException:
        remove_empty_dirs(parent, created)
        raise
    try:
        check_free(final, overwrite, sequence)
        remove_stale_partials(final, sequence)
    except BaseException:
        claim.release()
        remove_empty_dirs(parent, created)
        raise
    return created, claim


def check_not_input(final: Path, info: SourceInfo) -> None:
    """An input on this disk must not be overwritten by its own output."""
    if info.kind in ("stream", "generated"):
        return
    src = Path(info.path)
    if (src.exists() and final.exists() and os.path.samefile(src, final)) or src.resolve() == final.resolve():
        raise OutputError(f"output is the input: {final}")


def check_free(final: Path, overwrite: bool, sequence: bool) -> None:
    """Refuse an output that exists (unless overwriting) or is a directory."""
    if sequence:
        if sequence_files(final.parent, final.name) and not overwrite:
            raise OutputError(f"output frames exist in {final.parent} (use --overwrite)")
    elif final.exists() and not overwrite:
        raise OutputError(f"output exists: {final} (use --overwrite)")
    elif final.exists() and final.is_dir():
        raise OutputError(f"output is a directory: {final}")


def _create_error(directory: Path) -> str | None:
    """Why a file cannot be created in ``directory``, found by creating (and removing) a hidden one:
    permission bits do not tell root about a read-only mount or a pseudo file system."""
    import tempfile

    try:
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".birefnet-video-probe-"):
            return None
    except OSError as exc:
        return f"output directory is not writable: {directory} ({exc.strerror or exc})"


def check_before_start(final: Path, info: SourceInfo | None, overwrite: bool, sequence: bool) -> None:
    """What ``check_destination`` will refuse, checked without creating, claiming or removing anything:
    the output is the input, its nearest existing directory is not writable, it exists, another live
    run has claimed it. ``info`` None: a live input (nothing on disk to compare with)."""
    if info is not None:
        check_not_input(final, info)
    existing = final.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    problem = writable_dir_error(existing) or _create_error(existing)
    if problem:
        raise OutputError(problem if existing == final.parent else f"cannot create {final.parent}: {problem}")
    check_free(final, overwrite, sequence)
    owner = claim_owner(final)
    if owner is not None:
        raise OutputError(f"output {final} is being written by another run (pid {owner}); "
                          "wait for it to finish or choose another name")


def remove_empty_dirs(folder: Path, top: Path | None) -> None:
    """Remove ``folder`` and its parents up to ``top`` (directories this sink created) if empty."""
    if top is None:
        return
    while True:
        try:
            folder.rmdir()
        except OSError:
            return
        if folder == top:
            return
        folder = folder.parent
