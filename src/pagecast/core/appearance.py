"""How a page is shown on a TV, beyond its size: its motion, its colour scheme, and (for Home
Assistant) a kiosk view. Pure: what to tell Chromium, as data and script text; the renderer
carries it out before the page loads.

Motion is what a dashboard pays for. Home Assistant's frontend moves on every change (gauge
needles, toggles and sliders glide, cards fade): with a frame captured for every drawn
change, one change a second cost about 20 captured frames a second. ``reduce`` tells the page
the viewer prefers reduced motion and runs its CSS transitions and animations (and Web
Animations) so fast that each ends in the frame it starts: the change is shown at once, in
one frame. Video, canvas and script-timed drawing (a camera picture, a chart library's own
animation loop) keep their pace. docs/benchmark.md has the figures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

MOTIONS = ("reduce", "full")
THEMES = ("dark", "light")

#: Playback rate of the page's document animations with ``motion="reduce"``: a 1 s transition
#: then lasts 1 ms, less than a frame at any rate we capture.
REDUCED_ANIMATION_RATE = 1000.0

#: Hides Home Assistant's top bar inside its shadow roots (where a page-wide style cannot
#: reach), as the community "kiosk-mode" plugin does, without installing anything in HA.
#: The view (``hui-root``) is re-created on navigation, so the check repeats.
_HA_KIOSK_CSS = ".header{display:none!important}#view{padding-top:0!important;margin-top:0!important;min-height:100vh!important}"
KIOSK_SCRIPT = (
    "(() => {\n"
    f"  const css = {json.dumps(_HA_KIOSK_CSS)};\n"
    "  const inner = (el, sel) => el && el.shadowRoot && el.shadowRoot.querySelector(sel);\n"
    "  const apply = () => {\n"
    "    const main = inner(document.querySelector('home-assistant'), 'home-assistant-main');\n"
    "    const root = inner(inner(main, 'ha-panel-lovelace'), 'hui-root');\n"
    "    const shadow = root && root.shadowRoot;\n"
    "    if (shadow && !shadow.querySelector('style[data-pagecast-kiosk]')) {\n"
    "      const style = document.createElement('style');\n"
    "      style.dataset.pagecastKiosk = '';\n"
    "      style.textContent = css;\n"
    "      shadow.appendChild(style);\n"
    "    }\n"
    "  };\n"
    "  setInterval(apply, 250);\n"
    "})();"
)


#: Where the page sits, in turn, with burn-in protection: within 2 px of its place, so a
#: viewer never notices, while a static dashboard's edges stop burning into an OLED or plasma.
BURN_IN_OFFSETS = ((0, 0), (2, 0), (2, 2), (0, 2), (-2, 2), (-2, 0), (-2, -2), (0, -2), (2, -2))


def burn_in_move(n: int) -> str:
    """The expression the renderer evaluates in the page for its ``n``-th burn-in move: the
    whole page to the next of BURN_IN_OFFSETS. Moved from the renderer, not by a timer in the
    page: a timer made by a script added before the page's own does not run in a
    begin-frame-controlled page (seen on Chromium 156), and the page's CSP cannot refuse it."""
    x, y = BURN_IN_OFFSETS[n % len(BURN_IN_OFFSETS)]
    return f"document.body && (document.body.style.transform = 'translate({x}px, {y}px)')"


@dataclass(frozen=True)
class Appearance:
    """``motion``: ``reduce`` or ``full`` (see the module). ``theme``: ``dark``, ``light`` or
    None (the page's own choice). ``kiosk``: Home Assistant without its sidebar and top bar.
    ``burn_in``: seconds between the page's moves of burn-in protection (0: none)."""

    motion: str = "reduce"
    theme: str | None = None
    kiosk: bool = False
    #: Seconds between burn-in moves of the page; 0: it stays put.
    burn_in: float = 0.0


def media_features(look: Appearance) -> list[dict[str, str]]:
    """``Emulation.setEmulatedMedia``'s features: what CSS media queries see."""
    features = []
    if look.motion == "reduce":
        features.append({"name": "prefers-reduced-motion", "value": "reduce"})
    if look.theme is not None:
        features.append({"name": "prefers-color-scheme", "value": look.theme})
    return features


def animation_rate(look: Appearance) -> float | None:
    """``Animation.setPlaybackRate`` for the page, or None to leave its animations alone."""
    return REDUCED_ANIMATION_RATE if look.motion == "reduce" else None


def local_storage(look: Appearance) -> list[tuple[str, str]]:
    """Home Assistant's own settings for the look, kept in its localStorage (values are JSON):
    ``dockedSidebar`` hides the sidebar, ``selectedTheme`` picks dark or light (its default
    theme otherwise follows ``prefers-color-scheme``). Harmless on any other page."""
    items = []
    if look.kiosk:
        items.append(("dockedSidebar", json.dumps("always_hidden")))
    if look.theme is not None:
        items.append(("selectedTheme", json.dumps({"theme": "default", "dark": look.theme == "dark"})))
    return items


def scripts(look: Appearance) -> list[str]:
    """Scripts to run in the page before its own."""
    return [KIOSK_SCRIPT] if look.kiosk else []
