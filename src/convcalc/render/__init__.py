"""Renderers: a `Report` (or other results) in, a string out. No printing here.

`table` needs rich and is imported only when a table is asked for.
"""

from __future__ import annotations

FORMATS = ("table", "json", "csv", "markdown")
