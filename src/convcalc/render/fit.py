"""Fitting text to a terminal's width: short numbers, and prose wrapped at word boundaries.

Only for output to a terminal; piped output is never abbreviated or wrapped. A number or a
word is never split across lines, except a word longer than the width (a deep layer path),
which is broken after a dot where it can be, so every line fits.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

Segment = tuple[str, str | None]  # text and a rich style name (or None)
Line = list[Segment]

_SUFFIXES = ((10**3, "K"), (10**6, "M"), (10**9, "G"), (10**12, "T"), (10**15, "P"))


def abbreviate(n: int) -> str:
    """Three significant digits and an SI suffix: `1.50G`, `23.5M`, `512K`; below 1000 as is."""
    if abs(n) < 1000:
        return str(n)
    for factor, suffix in _SUFFIXES:
        value = n / factor
        for digits, below in ((2, 10), (1, 100), (0, 1000)):
            text = f"{value:.{digits}f}"
            if abs(float(text)) < below:
                return text + suffix
    return f"{n / 10**15:.0f}P"


def abbreviate_bytes(n: int) -> str:
    """Bytes in powers of 1024 with three significant digits: `784KiB`, `3.06MiB`."""
    if n < 1024:
        return f"{n}B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        for digits, below in ((2, 10), (1, 100), (0, 1024)):
            text = f"{value:.{digits}f}"
            if float(text) < below:
                return text + unit
    return f"{value:.0f}PiB"


def width_of(line: Line) -> int:
    return sum(len(text) for text, _ in line)


def wrap(line: Line, width: int, indent: int = 0) -> list[Line]:
    """`line` broken at spaces into lines of at most `width` characters (a longer word stays
    whole); continuation lines start with `indent` spaces. Styles stay with their words."""
    if width_of(line) <= width:
        return [line]
    lead = len(line[0][0]) - len(line[0][0].lstrip(" ")) if line else 0
    words: list[list[Segment]] = [[]]  # each word: its styled pieces
    for text, style in line:
        for piece in re.split(r"( +)", text):
            if not piece:
                continue
            if piece.startswith(" "):
                if words[-1]:
                    words.append([])
            else:
                words[-1].append((piece, style))
    out: list[Line] = []
    current: Line = [(" " * lead, None)] if lead else []
    used = lead
    room = max(1, width - max(lead, indent))
    for whole in (w for w in words if w):
        for k, word in enumerate(_fold(whole, room)):
            size = sum(len(t) for t, _ in word)
            fresh = used == (lead if not out else indent)
            if k or (not fresh and used + 1 + size > width):
                out.append(current)
                current, used = ([(" " * indent, None)] if indent else []), indent
                fresh = True
            if not fresh:
                current.append((" ", None))
                used += 1
            current.extend(word)
            used += size
    out.append(current)
    return out


def _fold(word: list[Segment], room: int) -> list[list[Segment]]:
    """A word longer than `room` in pieces that fit, cut after a dot where there is one."""
    text = "".join(t for t, _ in word)
    if len(text) <= room:
        return [word]
    cuts, start = [], 0
    while len(text) - start > room:
        cut = text.rfind(".", start, start + room) + 1
        start = cut if cut > start else start + room
        cuts.append(start)
    pieces: list[list[Segment]] = [[] for _ in range(len(cuts) + 1)]
    position = 0
    for segment, style in word:
        for i, char in enumerate(segment):
            index = sum(1 for c in cuts if c <= position + i)
            if pieces[index] and pieces[index][-1][1] == style:
                pieces[index][-1] = (pieces[index][-1][0] + char, style)
            else:
                pieces[index].append((char, style))
        position += len(segment)
    return pieces


def join_or_stack(parts: Sequence[Line], width: int | None, sep: str = "   ") -> list[Line]:
    """Parts on one line separated by `sep` when it fits (always when `width` is None),
    otherwise one line per part, each wrapped."""
    joined: Line = []
    for i, part in enumerate(parts):
        if i:
            joined.append((sep, None))
        joined.extend(part)
    if width is None or width_of(joined) <= width:
        return [joined]
    return [wrapped for part in parts for wrapped in wrap(part, width, indent=2)]


def wrap_text(text: str, width: int | None) -> str:
    """Plain text with each line wrapped at word boundaries (None: unchanged); continuation
    lines are indented two spaces more than the line they continue."""
    if width is None:
        return text
    out = []
    for line in text.split("\n"):
        lead = len(line) - len(line.lstrip(" "))
        out += ["".join(t for t, _ in part) for part in wrap([(line, None)], width, indent=lead + 2)]
    return "\n".join(out)
