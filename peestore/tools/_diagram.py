"""The schema diagram: an SVG drawn from the live database, in pure Python.

``playhouse.reflection`` reads the tables, columns, types, primary and
foreign keys.  Tables that take part in a foreign key are laid out in
layers, every parent to the left of its children (so most arrows run right to
left between neighbouring layers); tables with no foreign key either way sit
in rows underneath.  Text is monospace and box widths come from character
counts with a generous width per character, so text never leaves its box.

The work is bounded: no step recurses over the graph, every step is about
linear in the tables, columns and foreign keys, and a database with more than
``MAX_TABLES`` tables, ``MAX_COLUMNS`` columns or ``MAX_FOREIGN_KEYS`` foreign
keys is refused (``ValidationError``, a 422 on ``/db/diagram.svg``): nobody
reads a picture that large, and a restored file may hold any number of tables.
"""
from __future__ import annotations

import bisect
import re
from xml.sax.saxutils import escape, quoteattr

import peewee
from playhouse.reflection import Introspector

from ..audit._log import INTERNAL_TABLES
from ..db._connect import get_database
from ..db._dialect import dialect_of
from ..errors import ValidationError
from ._tables import open_connection

TYPE_CHECKING = False  # typing itself is not imported at run time (memory)
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple

__all__ = ["diagram_svg", "MAX_TABLES", "MAX_COLUMNS", "MAX_FOREIGN_KEYS"]

#: The most tables, columns (all tables together) and foreign keys a diagram draws.
MAX_TABLES = 500
MAX_COLUMNS = 10_000
MAX_FOREIGN_KEYS = 2_000

FONT_SIZE = 12
# Monospace glyphs are about 0.6 em wide; 0.68 em leaves room for wide fonts
# and bold headers.
CHAR_W = FONT_SIZE * 0.68
ROW_H = 20
HEADER_H = 28
PAD = 10
GAP_X = 90     # between layers: room for the arrows
GAP_Y = 28
MARGIN = 24
TITLE_H = 30
MAX_ROW_W = 1400  # tables without foreign keys wrap to rows this wide
COLOURS = ("#1f6fb2", "#c0392b", "#27864a", "#8e44ad", "#d35400", "#16818a", "#7f6a00")

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _text(value: str) -> str:
    return escape(_CONTROL.sub("?", str(value)))


def _attr(value: str) -> str:
    return quoteattr(_CONTROL.sub("?", str(value)))


def _width(chars: int) -> float:
    return chars * CHAR_W


class _Box:
    def __init__(self, table: str, rows: List[Tuple[str, str, str]]) -> None:
        self.table = table
        self.rows = rows  # (mark, column, type)
        name_chars = max([len(r[1]) for r in rows] + [4])
        type_chars = max([len(r[2]) for r in rows] + [4])
        self.name_x = PAD + _width(3)
        self.type_w = _width(type_chars)
        body = self.name_x + _width(name_chars) + _width(2) + self.type_w + PAD
        header = PAD + _width(len(table)) + PAD
        self.w = round(max(body, header, 120))
        self.h = HEADER_H + ROW_H * max(1, len(rows)) + 6
        self.x = 0.0
        self.y = 0.0
        self.index: Dict[str, int] = {}
        for i, row in enumerate(rows):
            self.index.setdefault(row[1], i)

    def row_y(self, column: str) -> float:
        """The vertical middle of ``column``'s row (the header's for an unknown column)."""
        i = self.index.get(column)
        if i is None:
            return self.y + HEADER_H / 2
        return self.y + HEADER_H + ROW_H * i + ROW_H / 2


def _layers(tables: List[str], parents: Dict[str, List[str]]) -> Dict[str, int]:
    """Layer of each table: 0 without parents, else one more than its deepest parent.

    A depth-first walk with its own stack (a chain of foreign keys may be
    thousands of tables deep); a foreign key back to a table still on the walk
    (a cycle) is left out, so every table gets a layer.
    """
    layer: Dict[str, int] = {}
    on_path = set()
    for start in tables:
        if start in layer:
            continue
        # Each frame: a table and the iterator over its parents still to visit.
        stack = [(start, iter(parents.get(start, ())))]
        on_path.add(start)
        while stack:
            table, ups = stack[-1]
            for parent in ups:
                if parent != table and parent not in layer and parent not in on_path:
                    on_path.add(parent)
                    stack.append((parent, iter(parents.get(parent, ()))))
                    break
            else:
                stack.pop()
                on_path.discard(table)
                done = [layer[p] for p in parents.get(table, ()) if p in layer and p != table]
                layer[table] = 1 + max(done) if done else 0
    return layer


def _place_column(boxes: Dict[str, _Box], names: List[str], x: float) -> float:
    """Stack ``names`` top to bottom at ``x``; returns the y below the last box."""
    y = MARGIN + TITLE_H
    for table in names:
        boxes[table].x, boxes[table].y = x, y
        y += boxes[table].h + GAP_Y
    return y


def _mean(values: List[float], default: float) -> float:
    return sum(values) / len(values) if values else default


def _layout(boxes: Dict[str, _Box], links: List[Tuple[str, str, str, str]]
            ) -> Tuple[float, float, Dict[str, int], List[Tuple[float, float]]]:
    """Place every box.

    Returns the drawing's width and height, each linked table's layer, and
    each layer's horizontal extent.
    """
    parents: Dict[str, List[str]] = {}
    for table, _, dest, _ in links:
        if dest != table and dest in boxes:
            parents.setdefault(table, []).append(dest)
            parents.setdefault(dest, [])
    layer = _layers(sorted(parents), parents)
    columns: Dict[int, List[str]] = {}
    for table in sorted(parents):
        columns.setdefault(layer[table], []).append(table)
    depths = sorted(columns)
    xs: Dict[int, float] = {}
    extents: List[Tuple[float, float]] = []
    x = MARGIN
    for depth in depths:
        width = max(boxes[t].w for t in columns[depth])
        for table in columns[depth]:  # one width per layer: arrows meet a straight edge
            boxes[table].w = width
        xs[depth] = x
        extents.append((x, x + width))
        x += width + GAP_X
    for depth in depths:
        _place_column(boxes, columns[depth], xs[depth])
    # Fewer crossings: order each layer by where its links land in the next one
    # (parents by their children's rows, then children by their parents' rows).
    # Each table's links, found once: the passes cost the number of links.
    down: Dict[str, List[Tuple[str, str]]] = {}  # parent -> (child, child column)
    up: Dict[str, List[Tuple[str, str]]] = {}    # child -> (parent, parent column)
    for child, column, dest, dest_column in links:
        if child in layer and dest in layer:
            down.setdefault(dest, []).append((child, column))
            up.setdefault(child, []).append((dest, dest_column))
    for _ in range(3):
        for depth in reversed(depths[:-1]):
            def downstream(t: str, depth: int = depth) -> float:
                ys = [boxes[c].row_y(col) for c, col in down.get(t, ()) if layer[c] > depth]
                return _mean(ys, boxes[t].y)
            columns[depth].sort(key=downstream)
            _place_column(boxes, columns[depth], xs[depth])
        for depth in depths[1:]:
            def upstream(t: str, depth: int = depth) -> float:
                ys = [boxes[d].row_y(dcol) for d, dcol in up.get(t, ()) if layer[d] < depth]
                return _mean(ys, boxes[t].y)
            columns[depth].sort(key=upstream)
            _place_column(boxes, columns[depth], xs[depth])
    bottom = max([MARGIN + TITLE_H] + [b.y + b.h + GAP_Y for t, b in boxes.items()
                                       if t in layer])
    right = extents[-1][1] if extents else MARGIN
    # Tables without foreign keys: rows underneath, as wide as the layers (or MAX_ROW_W).
    loose = sorted(t for t in boxes if t not in layer)
    row_limit = MAX_ROW_W if not extents else max(right, min(MAX_ROW_W, 900))
    x, y, row_h = MARGIN, bottom, 0.0
    for table in loose:
        box = boxes[table]
        if x > MARGIN and x + box.w > row_limit:
            x, y, row_h = MARGIN, y + row_h + GAP_Y, 0.0
        box.x, box.y = x, y
        x += box.w + GAP_Y
        row_h = max(row_h, box.h)
        right = max(right, box.x + box.w)
    if loose:
        bottom = y + row_h + GAP_Y
    return right + MARGIN + 40, bottom - GAP_Y + MARGIN, layer, extents


class _Gaps:
    """Where an arrow may cross the layers between its ends without running through a
    box: the free heights of each span of layers, worked out once per span."""

    def __init__(self, boxes: List[_Box]) -> None:
        self.boxes = boxes
        self.spans: Dict[Tuple[float, float], List[float]] = {}

    def free_y(self, lo: float, hi: float, want: float) -> float:
        """A y between the boxes of the layers spanned (x from lo to hi), near ``want``."""
        free = self.spans.get((lo, hi))
        if free is None:
            free = self.spans[(lo, hi)] = self._free(lo, hi)
        at = bisect.bisect_left(free, want)
        near = free[max(0, at - 1):at + 1]
        return min(near, key=lambda y: abs(y - want))

    def _free(self, lo: float, hi: float) -> List[float]:
        blocking = sorted((b.y - 6, b.y + b.h + 6) for b in self.boxes
                          if b.x < hi and b.x + b.w > lo)
        candidates = [MARGIN + TITLE_H - GAP_Y / 2] + [end - 6 + GAP_Y / 2
                                                       for _, end in blocking]
        # The blocked heights as disjoint intervals (they are sorted by start).
        merged: List[List[float]] = []
        for start, end in blocking:
            if merged and start < merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        starts = [m[0] for m in merged]
        free = []
        for y in candidates:
            at = bisect.bisect_left(starts, y) - 1
            # Only the last interval starting below y can hold it.
            if at < 0 or not y < merged[at][1]:
                free.append(y)
        return sorted(free or candidates)


def _arrow(child: _Box, column: str, parent: _Box, dest: str, colour: str,
           gaps: _Gaps) -> str:
    sy, ey = child.row_y(column), parent.row_y(dest)
    if child is parent:  # self reference: a loop on the right
        sx = ex = child.x + child.w
        bend = 36
        path = f"M{sx:.1f},{sy:.1f} C{sx + bend:.1f},{sy:.1f} {ex + bend:.1f},{ey:.1f} " \
               f"{ex + 2:.1f},{ey:.1f}"
    elif child.x > parent.x + parent.w:  # the usual case: parent to the left
        sx, ex = child.x, parent.x + parent.w
        lo, hi = ex + GAP_X, sx - GAP_X  # the layers in between, if any
        if hi > lo:  # go round their boxes, through a gap
            y = gaps.free_y(lo, hi, (sy + ey) / 2)
            b = GAP_X / 2
            path = f"M{sx:.1f},{sy:.1f} C{sx - b:.1f},{sy:.1f} {hi + b:.1f},{y:.1f} " \
                   f"{hi:.1f},{y:.1f} L{lo:.1f},{y:.1f} C{lo - b:.1f},{y:.1f} " \
                   f"{ex + b:.1f},{ey:.1f} {ex + 2:.1f},{ey:.1f}"
        else:
            bend = max(30.0, (sx - ex) / 2)
            path = f"M{sx:.1f},{sy:.1f} C{sx - bend:.1f},{sy:.1f} {ex + bend:.1f},{ey:.1f} " \
                   f"{ex + 2:.1f},{ey:.1f}"
    else:  # same layer (a cycle) or parent to the right: around the right side
        sx, ex = child.x + child.w, parent.x + parent.w
        far = max(sx, ex) + 40
        path = f"M{sx:.1f},{sy:.1f} C{far:.1f},{sy:.1f} {far:.1f},{ey:.1f} " \
               f"{ex + 2:.1f},{ey:.1f}"
    return (f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.6" '
            f'marker-end="url(#arrow-{COLOURS.index(colour)})"/>')


def _box_svg(box: _Box) -> List[str]:
    x, y, w = box.x, box.y, box.w
    out = [f'<g class="table" data-table={_attr(box.table)}>',
           f'<rect x="{x:.1f}" y="{y:.1f}" width="{w}" height="{box.h}" rx="5" '
           f'fill="#ffffff" stroke="#34495e" stroke-width="1.2"/>',
           f'<path d="M{x:.1f},{y + HEADER_H:.1f} h{w}" stroke="#34495e"/>',
           f'<rect x="{x + 0.6:.1f}" y="{y + 0.6:.1f}" width="{w - 1.2:.1f}" '
           f'height="{HEADER_H - 1.2:.1f}" rx="4" fill="#e8eef5"/>',
           f'<text x="{x + PAD:.1f}" y="{y + HEADER_H / 2 + FONT_SIZE * 0.35:.1f}" '
           f'font-weight="bold">{_text(box.table)}</text>']
    if not box.rows:
        out.append(f'<text x="{x + PAD:.1f}" y="{y + HEADER_H + 14:.1f}" fill="#7f8c8d">'
                   f'(no columns)</text>')
    for i, (mark, column, type_) in enumerate(box.rows):
        base = y + HEADER_H + ROW_H * i + ROW_H / 2 + FONT_SIZE * 0.35
        if mark:
            colour = "#b7950b" if "PK" in mark else "#1f6fb2"
            out.append(f'<text x="{x + PAD:.1f}" y="{base:.1f}" font-size="10" '
                       f'font-weight="bold" fill="{colour}">{_text(mark)}</text>')
        weight = ' font-weight="bold"' if "PK" in mark else ""
        out.append(f'<text x="{x + box.name_x:.1f}" y="{base:.1f}"{weight}>'
                   f'{_text(column)}</text>')
        out.append(f'<text x="{x + w - PAD:.1f}" y="{base:.1f}" text-anchor="end" '
                   f'fill="#7f8c8d">{_text(type_)}</text>')
    out.append("</g>")
    return out


def _too_large(what: str, count: int, limit: int) -> ValidationError:
    return ValidationError(f"the database has {count} {what}; the schema diagram draws at "
                           f"most {limit}: look at a schema this large with a SQL client")


def _check_size(db: peewee.Database) -> None:
    """Refuse a schema over the limits before reading it in detail."""
    tables = len([t for t in db.get_tables() if t not in INTERNAL_TABLES])
    if tables > MAX_TABLES:
        raise _too_large("tables", tables, MAX_TABLES)
    if dialect_of(db).has_file:
        # One query for the columns of every table (a restored file may hold
        # tables of 2,000 columns each).
        (columns,) = db.execute_sql(
            "SELECT count(*) FROM sqlite_master AS m, pragma_table_info(m.name) "
            "WHERE m.type = 'table'").fetchone()
        if columns > MAX_COLUMNS:
            raise _too_large("columns", columns, MAX_COLUMNS)


def diagram_svg(database: Optional[peewee.Database] = None) -> str:
    """An SVG picture of every table, its columns and types, primary and foreign keys.

    Raises ``ValidationError`` for a database over ``MAX_TABLES`` tables,
    ``MAX_COLUMNS`` columns or ``MAX_FOREIGN_KEYS`` foreign keys.
    """
    db = get_database(database)
    with open_connection(db):
        _check_size(db)
        metadata = Introspector.from_database(db).introspect()
    columns = sum(len(c) for c in metadata.columns.values())
    if columns > MAX_COLUMNS:
        raise _too_large("columns", columns, MAX_COLUMNS)
    keys = sum(len(f) for f in metadata.foreign_keys.values())
    if keys > MAX_FOREIGN_KEYS:
        raise _too_large("foreign keys", keys, MAX_FOREIGN_KEYS)
    boxes: Dict[str, _Box] = {}
    links: List[Tuple[str, str, str, str]] = []
    for table in sorted(metadata.columns):
        if table in INTERNAL_TABLES:
            continue  # peestore's bookkeeping, not the app's data
        keys = set(metadata.primary_keys.get(table, ()))
        fks = {fk.column: fk for fk in metadata.foreign_keys.get(table, ())}
        rows = []
        for name, column in metadata.columns[table].items():
            mark = "/".join(m for m, on in (("PK", name in keys), ("FK", name in fks)) if on)
            rows.append((mark, name, str(column.raw_column_type or "").lower()))
        boxes[table] = _Box(table, rows)
        links.extend((table, fk.column, fk.dest_table, fk.dest_column)
                     for fk in fks.values())
    width, height, _, _ = _layout(boxes, links)
    width, height = round(max(width, 320)), round(max(height, 120))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans Mono, Menlo, Consolas, '
           f'monospace" font-size="{FONT_SIZE}">',
           "<title>database schema</title>",
           "<defs>"]
    for i, colour in enumerate(COLOURS):
        out.append(f'<marker id="arrow-{i}" viewBox="0 0 10 10" refX="9" refY="5" '
                   f'markerWidth="8" markerHeight="8" orient="auto">'
                   f'<path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>')
    out.append("</defs>")
    out.append(f'<rect width="{width}" height="{height}" fill="#fbfcfd"/>')
    count = len(boxes)
    title = f"{count} table{'s' if count != 1 else ''}, {len(links)} foreign " \
            f"key{'s' if len(links) != 1 else ''}"
    out.append(f'<text x="{MARGIN}" y="{MARGIN + 8}" font-size="13" fill="#34495e">'
               f'{_text(title)}</text>')
    gaps = _Gaps(list(boxes.values()))
    for i, (table, column, dest_table, dest_column) in enumerate(links):
        if dest_table in boxes:
            out.append(_arrow(boxes[table], column, boxes[dest_table], dest_column,
                              COLOURS[i % len(COLOURS)], gaps))
    for table in sorted(boxes):
        out.extend(_box_svg(boxes[table]))
    out.append("</svg>")
    return "\n".join(out) + "\n"
