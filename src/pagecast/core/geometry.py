"""The window for an exact output size: Chromium's surface is the ceiling of CSS size × scale
(as 32-bit floats), so a device scale factor that does not divide the size needs a CSS size and
a scale nudged a hair (see ``session/render.py``)."""

from __future__ import annotations

import math
import struct

from .errors import RenderError


def _f32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


def _surface(css: int, scale: float) -> int:
    # Chromium keeps the scale as a float and sizes the surface with a ceiling.
    return math.ceil(_f32(css * _f32(scale)))


def window_geometry(width: int, height: int, dsf: float) -> tuple[int, int, float]:
    """CSS window size and scale factor for which Chromium's surface is exactly width×height."""
    if width <= 0 or height <= 0 or not dsf > 0:
        raise RenderError(f"invalid output size {width}×{height} at device scale factor {dsf}")
    if dsf == 1:
        return width, height, 1.0
    best: tuple[float, int, int, float] | None = None
    for cw in range(max(1, math.floor(width / dsf) - 1), math.ceil(width / dsf) + 2):
        for ch in range(max(1, math.floor(height / dsf) - 1), math.ceil(height / dsf) + 2):
            lo = max((width - 1) / cw, (height - 1) / ch)
            hi = min(width / cw, height / ch)
            if lo >= hi:
                continue
            candidates = [dsf] if lo < dsf <= hi else []
            candidates += [hi, hi - (hi - lo) * 0.25, (lo + hi) / 2]
            for scale in candidates:
                scale = float(f"{scale:.6g}") if scale != dsf else scale
                if _surface(cw, scale) == width and _surface(ch, scale) == height:
                    score = abs(scale - dsf)
                    if best is None or score < best[0]:
                        best = (score, cw, ch, scale)
                    break
    if best is None or best[0] > 0.02 * dsf:
        raise RenderError(
            f"cannot render exactly {width}×{height} pixels at device scale factor {dsf:g}; "
            f"pick a scale factor that divides the size (e.g. 1 or 2)"
        )
    return best[1], best[2], best[3]
