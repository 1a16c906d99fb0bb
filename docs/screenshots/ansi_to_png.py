#!/usr/bin/python3
"""Renders a terminal capture with ANSI colours (tmux capture-pane -e -p) to a PNG, for the screenshots in docs/.

    /usr/bin/python3 docs/screenshots/ansi_to_png.py capture.ans out.png      (Debian python3-pil)
"""
import re
import sys

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf"
BASE16 = [(0, 0, 0), (205, 49, 49), (13, 188, 121), (229, 229, 16), (36, 114, 200), (188, 63, 188), (17, 168, 205), (229, 229, 229),
          (102, 102, 102), (241, 76, 76), (35, 209, 139), (245, 245, 67), (59, 142, 234), (214, 112, 214), (41, 184, 219), (255, 255, 255)]
FG, BG = (220, 220, 220), (24, 24, 24)


def color256(n):
    if n < 16:
        return BASE16[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return steps[n // 36], steps[(n // 6) % 6], steps[n % 6]
    v = 8 + 10 * (n - 232)
    return v, v, v


def cells(text):
    """Yields lines of (char, fg, bg, bold)."""
    fg, bg, bold = FG, None, False
    for line in text.split("\n"):
        out, i = [], 0
        for m in re.finditer(r"\x1b\[([0-9;]*)m|([^\x1b])", line):
            if m.group(2) is not None:
                out.append((m.group(2), fg, bg, bold))
                continue
            codes = [int(c) if c else 0 for c in m.group(1).split(";")]
            while codes:
                c = codes.pop(0)
                if c == 0:
                    fg, bg, bold = FG, None, False
                elif c == 1:
                    bold = True
                elif c == 22:
                    bold = False
                elif 30 <= c <= 37:
                    fg = BASE16[c - 30]
                elif 90 <= c <= 97:
                    fg = BASE16[c - 82]
                elif c == 39:
                    fg = FG
                elif 40 <= c <= 47:
                    bg = BASE16[c - 40]
                elif c == 49:
                    bg = None
                elif c in (38, 48) and codes:
                    kind = codes.pop(0)
                    rgb = color256(codes.pop(0)) if kind == 5 else tuple(codes.pop(0) for _ in range(3))
                    if c == 38:
                        fg = rgb
                    else:
                        bg = rgb
        yield out


def main(src, dst):
    with open(src, encoding="utf-8") as f:
        lines = list(cells(f.read().rstrip("\n")))
    while lines and not lines[-1]:
        lines.pop()
    font, bold = ImageFont.truetype(FONT, 15), ImageFont.truetype(BOLD, 15)
    w, h = 9, 19
    cols = max((len(l) for l in lines), default=1)
    img = Image.new("RGB", (cols * w + 24, len(lines) * h + 24), BG)
    draw = ImageDraw.Draw(img)
    for y, line in enumerate(lines):
        for x, (ch, fg, bg, is_bold) in enumerate(line):
            px, py = 12 + x * w, 12 + y * h
            if bg is not None:
                draw.rectangle([px, py, px + w - 1, py + h - 1], fill=bg)
            draw.text((px, py), ch, fill=fg, font=bold if is_bold else font)
    img.save(dst)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
