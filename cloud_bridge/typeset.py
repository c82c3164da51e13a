"""Vietnamese text on a copy's pages, with one font subset made per process.

reportlab subsets and embeds its TrueType fonts again for every document,
which was a third of a copy's rendering time. The text on a copy only ever
uses the Vietnamese alphabet, digits and punctuation, so each font is
subset once to that repertoire (fontTools) and the same program is embedded
in every copy as a CID-keyed TrueType font (Identity-H, with the widths and
a ToUnicode map, as PDF/A-2 asks). Text is written as glyph ids; a
character outside the repertoire is drawn as "?" and logged.

:class:`PageDrawing` writes the few PDF operators the copy needs: text
(left, right or centred), grey and RGB fills, lines, rectangles, and a
rotated, semi-transparent watermark.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pikepdf
from fontTools import subset
from fontTools.ttLib import TTFont

logger = logging.getLogger(__name__)

_VIETNAMESE = (
    "ĂăÂâĐđÊêÔôƠơƯư"
    + "".join(chr(code) for code in range(0x1EA0, 0x1EFA))
    + "ÀÁÃÈÉÌÍÒÓÕÙÚÝàáãèéìíòóõùúýĨĩŨũ"
)
REPERTOIRE = (
    "".join(chr(code) for code in range(0x20, 0x7F)) + _VIETNAMESE + "…–—‘’“”•·°§№"
)
FALLBACK = "?"


@dataclass(frozen=True, eq=False)
class FontProgram:
    """A font subset to the repertoire, with what drawing text needs.

    Compared and hashed by identity: there is one per font file and process.
    """

    base_name: str
    program: bytes
    glyphs: dict[str, int]
    widths: list[int]
    bbox: tuple[int, int, int, int]
    ascent: int
    descent: int
    cap_height: int

    def encode(self, text: str) -> bytes:
        """Return ``text`` as a PDF hex string of two-byte glyph ids."""
        ids = []
        for char in text:
            glyph = self.glyphs.get(char)
            if glyph is None:
                logger.warning("U+%04X is not in the copy's font subset", ord(char))
                glyph = self.glyphs[FALLBACK]
            ids.append(glyph)
        return b"<" + b"".join(b"%04X" % glyph for glyph in ids) + b">"

    def width(self, text: str, size: float) -> float:
        """Return the advance width of ``text`` at ``size`` points."""
        fallback = self.glyphs[FALLBACK]
        units = sum(self.widths[self.glyphs.get(char, fallback)] for char in text)
        return units * size / 1000


@cache
def font_program(path: Path) -> FontProgram:
    """Subset the TrueType font at ``path`` to the repertoire (once)."""
    options = subset.Options()
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.hinting = False
    options.layout_features = []
    options.drop_tables += ["FFTM"]  # FontForge's timestamps: nothing to subset
    font = TTFont(str(path))
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=REPERTOIRE)
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    scale = 1000 / font["head"].unitsPerEm
    order = font.getGlyphOrder()
    ids = {name: index for index, name in enumerate(order)}
    cmap = font.getBestCmap()
    glyphs = {chr(code): ids[name] for code, name in cmap.items()}
    metrics = font["hmtx"].metrics
    head, os2 = font["head"], font["OS/2"]
    tag = "".join(
        chr(65 + byte % 26) for byte in hashlib.sha256(out.getvalue()).digest()[:6]
    )
    family = str(font["name"].getDebugName(6) or path.stem).replace(" ", "")
    return FontProgram(
        base_name=f"{tag}+{family}",
        program=out.getvalue(),
        glyphs=glyphs,
        widths=[round(metrics[name][0] * scale) for name in order],
        bbox=tuple(
            round(value * scale)
            for value in (head.xMin, head.yMin, head.xMax, head.yMax)
        ),
        ascent=round(font["hhea"].ascent * scale),
        descent=round(font["hhea"].descent * scale),
        cap_height=round(getattr(os2, "sCapHeight", 700) * scale),
    )


def embed_font(pdf: pikepdf.Pdf, font: FontProgram) -> pikepdf.Object:
    """Add ``font`` to ``pdf`` as a Type0 font and return it (indirect)."""
    program = pikepdf.Stream(pdf, font.program)
    program.Length1 = len(font.program)
    descriptor = pikepdf.Dictionary(
        Type=pikepdf.Name.FontDescriptor,
        FontName=pikepdf.Name("/" + font.base_name),
        Flags=4,
        FontBBox=pikepdf.Array(list(font.bbox)),
        ItalicAngle=0,
        Ascent=font.ascent,
        Descent=font.descent,
        CapHeight=font.cap_height,
        StemV=80,
        FontFile2=program,
    )
    descendant = pikepdf.Dictionary(
        Type=pikepdf.Name.Font,
        Subtype=pikepdf.Name.CIDFontType2,
        BaseFont=pikepdf.Name("/" + font.base_name),
        CIDSystemInfo=pikepdf.Dictionary(
            Registry=pikepdf.String("Adobe"),
            Ordering=pikepdf.String("Identity"),
            Supplement=0,
        ),
        FontDescriptor=pdf.make_indirect(descriptor),
        W=pikepdf.Array([0, pikepdf.Array(font.widths)]),
        CIDToGIDMap=pikepdf.Name.Identity,
    )
    return pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font,
            Subtype=pikepdf.Name.Type0,
            BaseFont=pikepdf.Name("/" + font.base_name),
            Encoding=pikepdf.Name("/Identity-H"),
            DescendantFonts=pikepdf.Array([pdf.make_indirect(descendant)]),
            ToUnicode=pikepdf.Stream(pdf, _to_unicode(font)),
        )
    )


@cache
def _to_unicode(font: FontProgram) -> bytes:
    pairs = sorted((glyph, char) for char, glyph in font.glyphs.items())
    lines = [
        b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap",
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
        b"/CMapName /Adobe-Identity-UCS def /CMapType 2 def",
        b"1 begincodespacerange <0000> <FFFF> endcodespacerange",
    ]
    for start in range(0, len(pairs), 100):
        chunk = pairs[start : start + 100]
        lines.append(b"%d beginbfchar" % len(chunk))
        for glyph, char in chunk:
            lines.append(
                b"<%04X> <%s>" % (glyph, char.encode("utf-16-be").hex().encode())
            )
        lines.append(b"endbfchar")
    lines.append(b"endcmap CMapName currentdict /CMap defineresource pop end end")
    return b"\n".join(lines)


@dataclass
class PageDrawing:
    """PDF content operators for one page, with the fonts they use."""

    fonts: dict[str, FontProgram]
    operators: list[bytes] = field(default_factory=list)

    def text(
        self,
        font: str,
        size: float,
        x: float,
        y: float,
        text: str,
        align: str = "left",
    ) -> None:
        """Draw ``text`` on the baseline ``y``, starting, ending or centred at x."""
        program = self.fonts[font]
        if align != "left":
            width = program.width(text, size)
            x -= width if align == "right" else width / 2
        self.operators.append(
            b"BT /%s %s Tf %s %s Td %s Tj ET"
            % (font.encode(), _n(size), _n(x), _n(y), program.encode(text))
        )

    def fill_gray(self, level: float) -> None:
        """Set the fill colour to a grey level (0 black, 1 white)."""
        self.operators.append(b"%s g" % _n(level))

    def stroke_gray(self, level: float) -> None:
        """Set the stroke colour to a grey level."""
        self.operators.append(b"%s G" % _n(level))

    def line_width(self, width: float) -> None:
        """Set the width of lines."""
        self.operators.append(b"%s w" % _n(width))

    def line(self, x1: float, y1: float, x2: float, y2: float) -> None:
        """Stroke a straight line."""
        self.operators.append(b"%s %s m %s %s l S" % (_n(x1), _n(y1), _n(x2), _n(y2)))

    def rect(self, x: float, y: float, width: float, height: float) -> None:
        """Stroke a rectangle."""
        self.operators.append(
            b"%s %s %s %s re S" % (_n(x), _n(y), _n(width), _n(height))
        )

    def watermark(
        self,
        font: str,
        size: float,
        centre: tuple[float, float],
        degrees: float,
        text: str,
        colour: tuple[float, float, float],
        state: str,
    ) -> None:
        """Draw ``text`` centred and rotated, with the graphics state ``state``."""
        angle = math.radians(degrees)
        cos, sin = math.cos(angle), math.sin(angle)
        self.operators.append(
            b"q /%s gs %s %s %s rg %s %s %s %s %s %s cm"
            % (
                state.encode(),
                *(_n(part) for part in colour),
                _n(cos),
                _n(sin),
                _n(-sin),
                _n(cos),
                _n(centre[0]),
                _n(centre[1]),
            )
        )
        self.text(font, size, 0, -size / 3, text, align="centre")
        self.operators.append(b"Q")

    def content(self) -> bytes:
        """Return the page's content stream."""
        return b"\n".join(self.operators) + b"\n"


def _n(value: float) -> bytes:
    """Format a number as PDF wants it: no exponent, trailing zeros dropped."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return (text if text not in ("-0", "") else "0").encode("ascii")
