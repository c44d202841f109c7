"""The README's picture of a comparison report: its "Curves" and "Final metrics" sections.

    python benchmarks/report_shot.py report.html benchmarks/figures/report.png

Opens the report in headless Chromium (gankit.viz.browser, as the report's tests do) at
900 px and crops the page from the "Curves" heading to the "Samples over training" one.
"""
from __future__ import annotations

import argparse
import io
from pathlib import Path

from PIL import Image

from gankit.viz.browser import open_page

TOP = "Curves"  # the crop starts at this heading and ends at the next one after FINAL
FINAL = "Final metrics"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html")
    parser.add_argument("png")
    parser.add_argument("--width", type=int, default=900)
    args = parser.parse_args()
    with open_page(Path(args.html).resolve().as_uri(), width=args.width, height=800) as page:
        spans = page.evaluate(
            "(() => { const h = [...document.querySelectorAll('h2')];"
            f" const top = h.find(e => e.textContent === {TOP!r});"
            f" const i = h.findIndex(e => e.textContent === {FINAL!r});"
            " const y = e => e.getBoundingClientRect().top + window.scrollY;"
            " return [y(top), i + 1 < h.length ? y(h[i + 1]) : document.body.scrollHeight]; })()")
        shot = Image.open(io.BytesIO(page.screenshot()))
    top, bottom = (int(v) for v in spans)
    shot.crop((0, max(top - 8, 0), shot.width, bottom - 8)).convert("RGB").save(args.png, optimize=True)
    print(f"{args.png}: {shot.width} x {bottom - top} px")


if __name__ == "__main__":
    main()
