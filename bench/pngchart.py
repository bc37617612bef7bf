"""pngchart: histogram charts as PNG files, in pure Python (zlib + struct), no dependencies.

A tiny RGB canvas, a 5x7 bitmap font (upper case, digits, a little punctuation; text is
drawn upper case), and one chart type: stacked panels of latency histograms, each with
filled bars for one series, a step outline for a second one, vertical percentile markers,
a log-scale count axis and tick labels.
"""

import math
import struct
import zlib

# 5x7 glyphs, one string of 7 rows of 5 columns each ('#' = ink).
_GLYPHS = {
    "A": ".###. #...# #...# ##### #...# #...# #...#",
    "B": "####. #...# #...# ####. #...# #...# ####.",
    "C": ".###. #...# #.... #.... #.... #...# .###.",
    "D": "###.. #..#. #...# #...# #...# #..#. ###..",
    "E": "##### #.... #.... ####. #.... #.... #####",
    "F": "##### #.... #.... ####. #.... #.... #....",
    "G": ".###. #...# #.... #.### #...# #...# .####",
    "H": "#...# #...# #...# ##### #...# #...# #...#",
    "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "J": "..### ...#. ...#. ...#. ...#. #..#. .##..",
    "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
    "L": "#.... #.... #.... #.... #.... #.... #####",
    "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#",
    "N": "#...# #...# ##..# #.#.# #..## #...# #...#",
    "O": ".###. #...# #...# #...# #...# #...# .###.",
    "P": "####. #...# #...# ####. #.... #.... #....",
    "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#",
    "R": "####. #...# #...# ####. #.#.. #..#. #...#",
    "S": ".#### #.... #.... .###. ....# ....# ####.",
    "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "U": "#...# #...# #...# #...# #...# #...# .###.",
    "V": "#...# #...# #...# #...# #...# .#.#. ..#..",
    "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
    "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
    "Y": "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
    "Z": "##### ....# ...#. ..#.. .#... #.... #####",
    "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
    "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
    "2": ".###. #...# ....# ...#. ..#.. .#... #####",
    "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
    "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
    "5": "##### #.... ####. ....# ....# #...# .###.",
    "6": "..##. .#... #.... ####. #...# #...# .###.",
    "7": "##### ....# ...#. ..#.. .#... .#... .#...",
    "8": ".###. #...# #...# .###. #...# #...# .###.",
    "9": ".###. #...# #...# .#### ....# ...#. .##..",
    ".": "..... ..... ..... ..... ..... .##.. .##..",
    ",": "..... ..... ..... ..... .##.. ..#.. .#...",
    ":": "..... .##.. .##.. ..... .##.. .##.. .....",
    "%": "##... ##..# ...#. ..#.. .#... #..## ...##",
    "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
    ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
    "-": "..... ..... ..... ##### ..... ..... .....",
    "/": "..... ....# ...#. ..#.. .#... #.... .....",
    "=": "..... ..... ##### ..... ##### ..... .....",
    "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
    "<": "...#. ..#.. .#... #.... .#... ..#.. ...#.",
    ">": ".#... ..#.. ...#. ....# ...#. ..#.. .#...",
    "_": "..... ..... ..... ..... ..... ..... #####",
    "'": "..#.. ..#.. ..... ..... ..... ..... .....",
    "µ": "..... #...# #...# #...# ##.## #.#.# #....",
    " ": "..... ..... ..... ..... ..... ..... .....",
}
_FONT = {c: [row for row in g.split()] for c, g in _GLYPHS.items()}

WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
GREY = (200, 200, 200)
LIGHT = (235, 235, 235)
BLUE = (52, 101, 164)
ORANGE = (230, 120, 20)
RED = (200, 30, 30)
GREEN = (40, 140, 60)


class Canvas:
    """An RGB image in memory."""

    def __init__(self, width, height, bg=WHITE):
        self.w, self.h = width, height
        self.px = bytearray(bytes(bg) * (width * height))

    def set(self, x, y, c):
        if 0 <= x < self.w and 0 <= y < self.h:
            i = (y * self.w + x) * 3
            self.px[i:i + 3] = bytes(c)

    def rect(self, x0, y0, x1, y1, c):
        """Fills [x0, x1) x [y0, y1)."""
        x0, x1 = max(0, min(x0, x1)), min(self.w, max(x0, x1))
        y0, y1 = max(0, min(y0, y1)), min(self.h, max(y0, y1))
        if x0 >= x1:
            return
        row = bytes(c) * (x1 - x0)
        for y in range(y0, y1):
            i = (y * self.w + x0) * 3
            self.px[i:i + len(row)] = row

    def hline(self, x0, x1, y, c, dash=0):
        for x in range(min(x0, x1), max(x0, x1) + 1):
            if not dash or (x // dash) % 2 == 0:
                self.set(x, y, c)

    def vline(self, x, y0, y1, c, dash=0):
        for y in range(min(y0, y1), max(y0, y1) + 1):
            if not dash or (y // dash) % 2 == 0:
                self.set(x, y, c)

    def text(self, x, y, s, c=BLACK, scale=2, anchor="left"):
        """Draws `s` with its top at `y`; anchor left, center or right at `x`."""
        s = s.upper()
        width = text_width(s, scale)
        if anchor == "center":
            x -= width // 2
        elif anchor == "right":
            x -= width
        for ch in s:
            glyph = _FONT.get(ch, _FONT[" "])
            for gy, row in enumerate(glyph):
                for gx, bit in enumerate(row):
                    if bit == "#":
                        self.rect(x + gx * scale, y + gy * scale,
                                  x + (gx + 1) * scale, y + (gy + 1) * scale, c)
            x += 6 * scale

    def png(self):
        raw = bytearray()
        stride = self.w * 3
        for y in range(self.h):
            raw.append(0)
            raw += self.px[y * stride:(y + 1) * stride]

        def chunk(kind, data):
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

        return (b"\x89PNG\r\n\x1a\n"
                + chunk(b"IHDR", struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(bytes(raw), 9))
                + chunk(b"IEND", b""))

    def save(self, path):
        with open(path, "wb") as f:
            f.write(self.png())


def text_width(s, scale=2):
    return len(s) * 6 * scale - scale if s else 0


def nice_step(span, target):
    """A 1/2/5 x 10^k step that cuts `span` into about `target` pieces."""
    raw = span / max(1, target)
    k = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for m in (1, 2, 5, 10):
        if m * k >= raw:
            return m * k
    return 10 * k


def fmt_num(v):
    return str(int(v)) if float(v).is_integer() else ("%g" % v)


def histogram_panel(cv, box, panel):
    """Draws one panel into `box` = (x0, y0, x1, y1) of canvas `cv`.

    panel: dict with
      title: str
      edges: bin edges (us), len(counts) + 1; the last bin also holds everything beyond
      bars: (label, color, counts) drawn as filled bars
      outline: (label, color, counts) or None, drawn as a step line
      markers: list of (label, value_us, color) vertical dashed lines
      xlabel, ylabel: axis titles
    """
    x0, y0, x1, y1 = box
    left, right, top, bottom = 78, 40, 64, 52
    px0, py0, px1, py1 = x0 + left, y0 + top, x1 - right, y1 - bottom
    edges = panel["edges"]
    lo, hi = edges[0], edges[-1]
    series = [panel["bars"]] + ([panel["outline"]] if panel.get("outline") else [])
    peak = max(max(s[2]) for s in series) or 1
    ymax_exp = max(1, math.ceil(math.log10(peak + 1)))

    def sx(v):
        return px0 + int(round((v - lo) / (hi - lo) * (px1 - px0)))

    def sy(count):
        if count <= 0:
            return py1
        return py1 - int(round(math.log10(1 + count) / ymax_exp * (py1 - py0)))

    cv.text((x0 + x1) // 2, y0 + 8, panel["title"], BLACK, 2, "center")
    # grid and y ticks (log scale: 1, 10, 100, ...)
    for e in range(0, ymax_exp + 1):
        y = sy(10 ** e - 1) if e > 0 else py1
        if e > 0:
            cv.hline(px0, px1, y, LIGHT)
        cv.text(px0 - 8, y - 7, fmt_num(10 ** e) if e > 0 else "0", BLACK, 2, "right")
    # bars
    counts = panel["bars"][2]
    for i, cnt in enumerate(counts):
        if cnt > 0:
            cv.rect(sx(edges[i]) + 1, sy(cnt), max(sx(edges[i + 1]), sx(edges[i]) + 2), py1, panel["bars"][1])
    # outline (step line)
    if panel.get("outline"):
        color, oc = panel["outline"][1], panel["outline"][2]
        prev_y = py1
        for i, cnt in enumerate(oc):
            y = sy(cnt)
            xa, xb = sx(edges[i]), sx(edges[i + 1])
            for t in (0, 1):
                cv.vline(xa + t, prev_y, y, color)
                cv.hline(xa, xb, y + t - 1, color)
            prev_y = y
        cv.vline(sx(edges[-1]), prev_y, py1, color)
    # markers, each label on a white box
    for k, (label, value, color) in enumerate(panel.get("markers", [])):
        if lo <= value <= hi:
            x = sx(value)
            cv.vline(x, py0, py1, color, dash=4)
            cv.vline(x + 1, py0, py1, color, dash=4)
            ty = py0 + 4 + 20 * k
            cv.rect(x + 3, ty - 2, x + 7 + text_width(label, 2), ty + 16, WHITE)
            cv.text(x + 5, ty, label, color, 2, "left")
    # axes
    cv.rect(px0 - 2, py0, px0, py1 + 2, BLACK)
    cv.rect(px0 - 2, py1, px1, py1 + 2, BLACK)
    step = nice_step(hi - lo, 10)
    v = math.ceil(lo / step) * step
    while v <= hi + 1e-9:
        x = sx(v)
        cv.vline(x, py1, py1 + 5, BLACK)
        label = fmt_num(v) + ("+" if abs(v - hi) < 1e-9 else "")
        cv.text(x, py1 + 10, label, BLACK, 2, "center")
        v += step
    cv.text((px0 + px1) // 2, y1 - 20, panel["xlabel"], BLACK, 2, "center")
    cv.text(x0 + 4, y0 + 34, panel["ylabel"], BLACK, 2, "left")
    # legend: one row above the plot, right-aligned
    lx = px1
    for label, color, _ in reversed(series):
        w = text_width(label, 2)
        cv.text(lx, y0 + 34, label, BLACK, 2, "right")
        cv.rect(lx - w - 24, y0 + 36, lx - w - 8, y0 + 46, color)
        lx -= w + 40


def histogram_chart(path, panels, width=1000, panel_height=380):
    cv = Canvas(width, panel_height * len(panels))
    for i, panel in enumerate(panels):
        histogram_panel(cv, (0, i * panel_height, width, (i + 1) * panel_height), panel)
        if i:
            cv.hline(0, width - 1, i * panel_height, GREY)
    cv.save(path)
