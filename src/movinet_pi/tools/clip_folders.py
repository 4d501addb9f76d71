"""Folders of labelled clips, as ``eval`` and ``teach`` read them: one sub-folder of clips per
class, named after its label (case, ``_`` and spaces do not matter)."""

from __future__ import annotations

import difflib
from pathlib import Path

from movinet_pi.errors import MovinetPiError
from movinet_pi.model.labels import Labels
from movinet_pi.progress import counted

#: File name endings taken as clips (case-insensitive); other files in class folders
#: (notes, annotations, thumbnails) are ignored.
VIDEO_SUFFIXES = frozenset({
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv",
    ".3gp", ".ogv", ".gif",
})
CLIP_KINDS = ".mp4, .avi, .mkv, .mov, .webm, .gif and other video files"



def normalise_label(name: str) -> str:
    """The form folder names and labels are compared in: case-folded, ``_`` as a space,
    runs of spaces as one."""
    return " ".join(name.replace("_", " ").split()).casefold()


def match_label(folder: str, labels: Labels) -> int:
    """The class index a folder name stands for, or a one-line error naming the closest."""
    for i, name in enumerate(labels.names):
        if name == folder:
            return i
    key = normalise_label(folder)
    hits = [i for i, name in enumerate(labels.names) if normalise_label(name) == key]
    if len(hits) == 1:
        return hits[0]
    if hits:
        both = " and ".join(repr(labels[i]) for i in hits[:2])
        raise MovinetPiError(
            f"clip folder {folder!r} matches several labels of {labels.source} ({both}): "
            "rename it to one of them exactly"
        )
    normalised = [normalise_label(n) for n in labels.names]
    closest = difflib.get_close_matches(key, normalised, n=1, cutoff=0.0)
    hint = f" (closest: {labels[normalised.index(closest[0])]!r})" if closest else ""
    raise MovinetPiError(
        f"clip folder {folder!r} is not a label of {labels.source}{hint}: name each folder "
        "after its label (case, '_' and spaces do not matter)"
    )


def is_clip(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES and not _hidden(path)


def _hidden(path: Path) -> bool:
    return path.name.startswith(".")


def find_class_folders(clip_dir: Path) -> dict[str, list[Path]]:
    """Folder name -> its clips (any depth below it, sorted), for every visible sub-folder."""
    if not clip_dir.exists():
        raise MovinetPiError(f"clip folder not found: {clip_dir}")
    if not clip_dir.is_dir():
        raise MovinetPiError(
            f"{clip_dir} is not a folder: pass a folder with one sub-folder of clips per class"
        )
    folders = sorted(p for p in clip_dir.iterdir() if p.is_dir() and not _hidden(p))
    if not folders:
        loose = sum(1 for p in clip_dir.iterdir() if is_clip(p))
        found = f" (it holds {counted(loose, 'clip')} but no class folders)" if loose else ""
        raise MovinetPiError(
            f"no class folders in {clip_dir}{found}: put each class's clips in a folder "
            f"named after its label, e.g. {clip_dir}/<label>/clip.mp4"
        )
    return {
        folder.name: sorted(
            p for p in folder.rglob("*")
            if is_clip(p) and not any(_hidden(q) for q in p.relative_to(folder).parents
                                      if q.name)
        )
        for folder in folders
    }
