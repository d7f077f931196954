"""Render an HTML report in headless Chromium and check that it really shows something.

    python -m tests.browser_check report.html out.png

A browser is the only honest judge of a self-contained page: the file is copied alone
into an empty folder (so it cannot lean on files beside it), its embedded images must
decode in the browser, the page must grow by their height compared with the same page
with the images stripped, and the screenshot must not be blank (many distinct colours,
a fair share of non-white pixels). Exit status 0: passed; 1: a check failed; 2: no
browser or no such file.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import UserError

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WIDTH = 1280
MAX_HEIGHT = 8000  # a screenshot taller than this is cut; the checks need no more
TIMEOUT_S = 120
MIN_COLOURS = 256
MIN_INK = 0.03  # share of pixels that are not (near) white
MIN_GAIN_PER_IMAGE_PX = 100

IMG_TAG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
# Appended to a copy of the page: once everything has loaded, the body records how many
# images decoded and how tall the page is, for --dump-dom to report back.
PROBE = ("<script>window.addEventListener('load', () => {"
         "const b = document.body;"
         "b.setAttribute('data-probe-widths',"
         " Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0).join(','));"
         "b.setAttribute('data-probe-height',"
         " Math.ceil(document.documentElement.getBoundingClientRect().height));"
         "});</script>")
PROBE_ATTR = re.compile(r'data-probe-(widths|height)="([^"]*)"')


class CheckFailed(Exception):
    """The page rendered, but not as a report should."""


@dataclass(frozen=True)
class RenderCheck:
    """What was measured, to print and to assert on."""

    browser: str
    images_in_page: int
    image_widths_px: tuple[int, ...]  # natural widths as decoded; 0 = failed to decode
    height_px: int
    height_without_images_px: int
    screenshot_px: tuple[int, int]  # width, height
    distinct_colours: int
    ink_fraction: float

    def problems(self) -> list[str]:
        """Every failed check, in words; empty when the page passes."""
        out = []
        broken = sum(1 for w in self.image_widths_px if w <= 0)
        if len(self.image_widths_px) != self.images_in_page or broken:
            out.append(f"{broken or self.images_in_page - len(self.image_widths_px)} of "
                       f"{self.images_in_page} images did not decode in the browser")
        gain = self.height_px - self.height_without_images_px
        if gain < MIN_GAIN_PER_IMAGE_PX * self.images_in_page:
            out.append(f"the images add only {gain} px to the page height")
        if self.distinct_colours < MIN_COLOURS:
            out.append(f"only {self.distinct_colours} distinct colours in the screenshot")
        if self.ink_fraction < MIN_INK:
            out.append(f"only {100 * self.ink_fraction:.1f} % of the screenshot is not white")
        return out


def find_browser() -> str | None:
    """$CHROMIUM if set, else the first Chromium-like browser on PATH."""
    if os.environ.get("CHROMIUM"):
        return shutil.which(os.environ["CHROMIUM"])
    for name in BROWSERS:
        if found := shutil.which(name):
            return found
    return None


def _browser(browser: str, profile: Path, *args: str) -> str:
    # --no-sandbox: Chromium refuses to run as root with its sandbox, as in CI containers.
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={profile}", *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"{browser} did not finish within {TIMEOUT_S} s") from None
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no message"]
        raise CheckFailed(f"{browser} exited with {done.returncode}: {tail[0]}")
    return done.stdout


def _probe(browser: str, profile: Path, page: Path) -> tuple[tuple[int, ...], int]:
    """Decoded image widths and page height, measured in the browser after load."""
    dom = _browser(browser, profile, f"--window-size={WIDTH},1000", "--dump-dom",
                   page.as_uri())
    found = dict(PROBE_ATTR.findall(dom))
    if "height" not in found:
        raise CheckFailed("the page never finished loading in the browser")
    widths = tuple(int(w) for w in found.get("widths", "").split(",") if w)
    return widths, int(found["height"])


def pixel_figures(png: Path) -> tuple[tuple[int, int], int, float]:
    """(width, height), distinct colours and the share of non-white pixels of a PNG."""
    from matplotlib.image import imread

    rgb = np.round(imread(png)[..., :3] * 255).astype(np.uint32)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    ink = float(np.mean(rgb.min(axis=-1) < 245))
    return (rgb.shape[1], rgb.shape[0]), len(np.unique(packed)), ink


def render_and_check(html_path: Path, png_path: Path, browser: str | None = None) -> RenderCheck:
    """Screenshot `html_path` to `png_path` and measure it; raises nothing for a poor page
    (see RenderCheck.problems), only when it cannot render at all."""
    html_path, png_path = Path(html_path), Path(png_path)
    browser = browser or find_browser()
    if browser is None:
        raise UserError(None, f"no headless browser found (tried {', '.join(BROWSERS)}; "
                              f"install Debian's chromium package or set $CHROMIUM)")
    if not html_path.is_file():
        raise UserError(html_path, "no such HTML file")
    text = html_path.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="render-html-") as tmp:
        work = Path(tmp)
        alone, stripped = work / "page.html", work / "stripped.html"
        alone.write_text(_with_probe(text), encoding="utf-8")
        stripped.write_text(_with_probe(IMG_TAG.sub("", text)), encoding="utf-8")
        widths, height = _probe(browser, work / "profile", alone)
        _, bare_height = _probe(browser, work / "profile", stripped)
        shot = work / "shot.png"
        _browser(browser, work / "profile", f"--window-size={WIDTH},{min(height, MAX_HEIGHT)}",
                 f"--screenshot={shot}", alone.as_uri())
        if not shot.is_file():
            raise CheckFailed(f"{browser} wrote no screenshot")
        size, colours, ink = pixel_figures(shot)
        from pipeline.runtime.files import atomic_path

        png_path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(png_path) as dest:
            shutil.copyfile(shot, dest)
    return RenderCheck(browser, len(IMG_TAG.findall(text)), widths, height, bare_height,
                       size, colours, ink)


def _with_probe(text: str) -> str:
    at = text.lower().rfind("</body>")
    return text + PROBE if at < 0 else text[:at] + PROBE + text[at:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.browser_check",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("html", type=Path, help="the page to render (e.g. report.html)")
    parser.add_argument("png", type=Path, help="where to write the screenshot")
    args = parser.parse_args(argv)
    try:
        check = render_and_check(args.html, args.png)
    except UserError as err:
        print(f"render_html: error: {err}", file=sys.stderr)
        return 2
    except CheckFailed as err:
        print(f"render_html: check failed: {err}", file=sys.stderr)
        return 1
    for key, value in asdict(check).items():
        print(f"{key}: {value}")
    problems = check.problems()
    for problem in problems:
        print(f"render_html: check failed: {problem}", file=sys.stderr)
    if not problems:
        print(f"passed: {args.png} shows the page with all {check.images_in_page} images")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
