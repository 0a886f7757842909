"""Screenshots of an HTML report for the docs (headless Chromium, no network).

    python scripts/report_screenshot.py REPORT.html OUT.png [--width 1280] [--height 1400]

Saves the full page as OUT.png and, with --height, also OUT's top part cropped to
that height (``OUT-top.png``, needs Pillow) for a README-sized picture. Prints what the
browser saw: sections, images loaded, console errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from graphcollapse.reproduction.browser import find_chromium, inspect_page


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("report", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=None)
    a = p.parse_args(argv)
    if find_chromium() is None:
        print("error: no chromium on PATH (apt-get install chromium)", file=sys.stderr)
        return 2
    seen = inspect_page(a.report, screenshot=a.out, width=a.width)
    if a.height:
        from PIL import Image

        with Image.open(a.out) as im:
            top = im.crop((0, 0, im.width, min(a.height, im.height)))
            top.save(a.out.with_name(a.out.stem + "-top.png"))
    loaded = sum(i["naturalWidth"] > 0 for i in seen["images"])
    seen_now = {
        "sections": seen["sections"],
        "images_loaded": loaded,
        "images": len(seen["images"]),
        "console_errors": seen["console_errors"],
    }
    print(json.dumps(seen_now))
    return 0 if loaded == len(seen["images"]) and not seen["console_errors"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
