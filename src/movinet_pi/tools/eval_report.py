"""``movinet-pi eval``'s report: the side-by-side table, the confusion matrices (text, .png).

It is made from the reports :func:`movinet_pi.tools.eval.evaluate` returns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from movinet_pi.errors import MovinetPiError, one_line
from movinet_pi.model.catalogue import MODEL_FPS
from movinet_pi.progress import counted

#: How many misclassified clips the text report lists per model (JSON lists them all).
MAX_LISTED_MISTAKES = 20


def check_plot_path(plot: Path) -> None:
    """Refuse a plot file that cannot be written before spending minutes on clips."""
    if not plot.parent.is_dir():
        raise MovinetPiError(f"--plot: folder {plot.parent} does not exist")
    if not cv2.haveImageWriter(str(plot)):
        raise MovinetPiError(f"--plot: OpenCV cannot write {plot.name!r}: use a .png file name")


# --- text report ----------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100.0 * value:.1f} %"


def format_report(reports: Sequence[dict[str, Any]], clip_dir: Path) -> str:
    """The side-by-side table, then each model's confusion matrix and mistakes."""
    first = reports[0]
    n_classes = len(first["per_class"])
    skipped = f", {first['skipped']} skipped" if first["skipped"] else ""
    roi = first.get("roi")
    looked_at = ("" if roi is None else "; the model reads where the picture moves (--roi auto)"
                 if roi == "auto" else f"; the model reads --roi {','.join(f'{v:g}' for v in roi)}")
    lines = [
        f"{counted(first['clips'], 'clip')} in {counted(n_classes, 'class', 'classes')} "
        f"from {clip_dir}{skipped}; "
        f"{MODEL_FPS:g} fps, states reset for each clip, prediction after the last step"
        f"{looked_at}",
        "",
    ]
    k_note = {r["top5_k"] for r in reports}  # top-5, or fewer for a model with fewer classes
    top_k_name = f"top-{'/'.join(map(str, sorted(k_note)))}"
    rows: list[tuple[str, list[str]]] = [
        ("input", [f"{r['input_size'][0]}x{r['input_size'][1]}" for r in reports]),
        ("classes", [str(r["num_classes"]) for r in reports]),
        ("top-1", [_pct(r["top1"]) for r in reports]),
        (top_k_name, [_pct(r["top5"]) for r in reports]),
        ("ms per step", [f"{r['ms_per_step']:.2f}" for r in reports]),
        ("recall per class", ["" for _ in reports]),
    ]
    # Every report lists the same classes in the same order (their names may differ).
    per_class = [list(r["per_class"].values()) for r in reports]
    for row, (label, stats) in enumerate(first["per_class"].items()):
        rows.append((f"  {label} ({stats['clips']})",
                     [_pct(classes[row]["recall"]) for classes in per_class]))
    head = max(len(name) for name, _ in rows)
    widths = [max(len(r["model"]), *(len(v[i]) for _, v in rows)) for i, r in enumerate(reports)]
    lines.append(" " * head + "".join(f"  {r['model']:>{w}}" for r, w in zip(reports, widths)))
    for name, values in rows:
        line = f"{name:<{head}}" + "".join(f"  {v:>{w}}" for v, w in zip(values, widths))
        lines.append(line.rstrip())
    for r in reports:
        lines += ["", *format_confusion(r)]
        mistakes = r["misclassified"]
        if mistakes:
            lines.append(f"misclassified by {r['model']} (top-1): {len(mistakes)}")
            for m in mistakes[:MAX_LISTED_MISTAKES]:
                lines.append(f"  {m['clip']}: {m['predicted']} {m['score']:.2f} "
                             f"(true: {m['true']})")
            if len(mistakes) > MAX_LISTED_MISTAKES:
                lines.append(f"  ... and {len(mistakes) - MAX_LISTED_MISTAKES} more (--json "
                             "lists them all)")
    return "\n".join(lines)


def format_confusion(report: dict[str, Any]) -> list[str]:
    """Rows true classes, columns predicted; short names as headers, else numbers."""
    rows, columns = report["confusion"]["rows"], report["confusion"]["columns"]
    matrix = report["confusion"]["matrix"]
    by_name = len(columns) <= 10 and all(len(c) <= 16 for c in columns)
    if by_name:
        headers = list(columns)
        row_names = list(rows)
    else:
        headers = [str(i + 1) for i in range(len(rows))] + (["other"] if len(columns) > len(rows)
                                                              else [])
        row_names = [f"{i + 1:>{len(str(len(rows)))}} {name}" for i, name in enumerate(rows)]
    other = " (other: a class not in the folder)" if len(columns) > len(rows) else ""
    width = max(len(str(max((max(row) for row in matrix), default=0))),
                *(len(h) for h in headers))
    name_w = max(len(n) for n in row_names)
    out = [f"confusion, {report['model']}: rows true, columns predicted{other}",
           " " * (name_w + 2) + "".join(f"  {h:>{width}}" for h in headers)]
    for name, row in zip(row_names, matrix):
        out.append(f"  {name:<{name_w}}" + "".join(f"  {v:>{width}}" for v in row))
    return out


# --- plot -----------------------------------------------------------------------------------

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_WHITE = (255, 255, 255)
_DARK = (110, 45, 15)  # BGR of a full cell: dark blue


def _ascii(text: str) -> str:
    """OpenCV's Hershey fonts draw ASCII only."""
    return text.encode("ascii", "replace").decode("ascii")


def _text_width(text: str, scale: float) -> int:
    return cv2.getTextSize(_ascii(text), _FONT, scale, 1)[0][0]


def draw_confusion(report: dict[str, Any]) -> np.ndarray:
    """One model's confusion matrix as a BGR picture: cells shaded by the share of the row
    (recall on the diagonal), counts written in, true classes down the left, predicted
    across the top by number."""
    rows = report["confusion"]["rows"]
    matrix = np.asarray(report["confusion"]["matrix"], dtype=np.float64)
    n_rows, n_cols = matrix.shape
    cell = int(np.clip(480 // max(n_cols, 1), 14, 56))
    scale = 0.45
    row_names = [f"{i + 1} {_ascii(name)}" for i, name in enumerate(rows)]
    col_names = [str(i + 1) for i in range(n_rows)] + (["o"] if n_cols > n_rows else [])
    left = 12 + max(_text_width(n, scale) for n in row_names) + 8
    title = f"{report['model']}: top-1 {_pct(report['top1'])}, top-5 {_pct(report['top5'])}"
    note = "rows: true class; columns: predicted (same numbers" + (", o = other)" if
                                                                   n_cols > n_rows else ")")
    top = 64
    width = max(left + n_cols * cell + 16, 24 + _text_width(title, 0.6),
                24 + _text_width(note, scale))
    height = top + n_rows * cell + 16
    image = np.full((height, width, 3), 255, dtype=np.uint8)
    cv2.putText(image, _ascii(title), (12, 22), _FONT, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, note, (12, 42), _FONT, scale, (80, 80, 80), 1, cv2.LINE_AA)
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    for c, name in enumerate(col_names):
        x = left + c * cell + (cell - _text_width(name, scale)) // 2
        cv2.putText(image, name, (x, top - 6), _FONT, scale, (0, 0, 0), 1, cv2.LINE_AA)
    for r in range(n_rows):
        y0 = top + r * cell
        cv2.putText(image, row_names[r], (12, y0 + cell // 2 + 5), _FONT, scale, (0, 0, 0), 1,
                    cv2.LINE_AA)
        for c in range(n_cols):
            x0 = left + c * cell
            f = share[r, c]
            colour = tuple(round(w + f * (d - w)) for w, d in zip(_WHITE, _DARK))
            cv2.rectangle(image, (x0, y0), (x0 + cell - 1, y0 + cell - 1), colour, -1)
            cv2.rectangle(image, (x0, y0), (x0 + cell - 1, y0 + cell - 1), (200, 200, 200), 1)
            count = int(matrix[r, c])
            if count and cell >= 18:
                text = str(count)
                cs = min(scale, 0.9 * cell / max(1, _text_width(text, 1.0)))
                tw, th = cv2.getTextSize(text, _FONT, cs, 1)[0]
                ink = _WHITE if f > 0.5 else (0, 0, 0)
                cv2.putText(image, text, (x0 + (cell - tw) // 2, y0 + (cell + th) // 2),
                            _FONT, cs, ink, 1, cv2.LINE_AA)
    return image


def write_plot(reports: Sequence[dict[str, Any]], path: Path) -> None:
    """All models' confusion matrices side by side in one picture."""
    panels = [draw_confusion(r) for r in reports]
    height = max(p.shape[0] for p in panels)
    gap = 24  # white between panels
    padded = [
        cv2.copyMakeBorder(p, 0, height - p.shape[0], 0, gap if i < len(panels) - 1 else 0,
                           cv2.BORDER_CONSTANT, value=_WHITE)
        for i, p in enumerate(panels)
    ]
    image = np.hstack(padded) if len(padded) > 1 else padded[0]
    try:
        ok = cv2.imwrite(str(path), image)
    except cv2.error as e:
        raise MovinetPiError(f"cannot write plot {path}: {one_line(e)}", exit_code=1) from e
    if not ok:
        raise MovinetPiError(f"cannot write plot {path}", exit_code=1)


def display_names(paths: Sequence[Path]) -> list[str]:
    """Short column names: file stems; stems shared by several files get their folder
    (``a/model``, ``b/model``) or, for one file given twice, a number (``model#2``)."""
    stems = [p.stem for p in paths]
    names = []
    seen: dict[str, int] = {}
    for path, stem in zip(paths, stems):
        group = [q for q in paths if q.stem == stem]
        if len(group) == 1:
            names.append(stem)
        elif len({q.parent for q in group}) == len(group):
            names.append(f"{path.parent.name}/{stem}")
        else:
            seen[stem] = seen.get(stem, 0) + 1
            names.append(f"{stem}#{seen[stem]}")
    return names
