"""The studio in a real browser: ``gankit studio`` started as a process (as a person would),
its page driven in headless Chromium: load, change the seed, move the truncation slider,
type tags, walk between seeds, compare runs, pick another run, upload a good and a corrupt
image. Screenshots are kept in the test's temporary folder (printed on failure).

Skipped where no Chromium is installed, unless GANKIT_REQUIRE_BROWSER=1 (CI)."""
from __future__ import annotations

import base64
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gankit.viz.browser import find_chromium, open_page

pytest.importorskip("starlette")
if find_chromium() is None:
    if os.environ.get("GANKIT_REQUIRE_BROWSER") == "1":
        raise RuntimeError("GANKIT_REQUIRE_BROWSER=1 but no chromium is installed (apt-get install chromium)")
    pytest.skip("no chromium installed", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
# a picture's pixels as the page holds them (an <img> drawn into a canvas), to compare states
PIXELS = """((selector) => { const i = document.querySelector(selector); const c = document.createElement('canvas');
  c.width = i.naturalWidth; c.height = i.naturalHeight; c.getContext('2d').drawImage(i, 0, 0);
  return c.toDataURL(); })"""


@pytest.fixture(scope="module")
def studio_url(runs, sefa_file):
    """``gankit studio`` on a free port, serving the tag run first; stopped afterwards."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    order = [str(runs[k]) for k in ("tags", "style", "p2p", "toy")]
    proc = subprocess.Popen([sys.executable, "-m", "gankit", "studio", *order, "--port", "0", "--threads", "1",
                             "--directions", str(sefa_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()  # the address, printed once the socket listens
    found = re.search(r"http://127\.0\.0\.1:\d+/", line)
    if not found:
        proc.kill()
        raise AssertionError(f"gankit studio printed {line!r}; stderr: {proc.stderr.read()}")
    yield found.group(0)
    proc.terminate()
    proc.wait(timeout=10)


def _set(page, element: str, value: str, event: str = "input") -> None:
    page.evaluate(f"(() => {{ const e = document.getElementById('{element}'); e.value = {value!r}; "
                  f"e.dispatchEvent(new Event('{event}')); }})()")


def _settle_after(page, action) -> None:
    """Do ``action`` and wait until every picture it asked for is shown."""
    shown = page.evaluate("studio.shown")
    action()
    page.wait_until("studio.pending === 0 && studio.shown > " + str(shown))


def _pick(page, key: str) -> None:
    _set(page, "run", key, "change")
    page.wait_until(f"studio.pending === 0 && studio.ready === '{key}'")


def _visible(page, *ids: str) -> list[bool]:
    return [page.evaluate(f"!document.getElementById('{i}').hidden") for i in ids]


def _message(page) -> str:
    return page.evaluate("document.getElementById('message').hidden ? '' : document.getElementById('message').textContent")


def _upload(page, data: bytes, name: str, input_id: str = "upload") -> None:
    page.evaluate(f"""(() => {{ const bytes = Uint8Array.from(atob('{base64.b64encode(data).decode()}'), c => c.charCodeAt(0));
      const t = new DataTransfer(); t.items.add(new File([bytes], '{name}'));
      const input = document.getElementById('{input_id}'); input.files = t.files;
      input.dispatchEvent(new Event('change')); }})()""")


def _save(page, folder: Path, name: str) -> Path:
    path = folder / name
    path.write_bytes(page.screenshot())
    return path


def test_explore_runs_in_the_browser(studio_url, tmp_path):
    with open_page(studio_url, width=1200, height=900) as page:
        page.wait_until("studio.pending === 0 && studio.ready === 'tags' && studio.shown >= 2")  # grid and walk
        assert page.evaluate("document.getElementById('run').value") == "tags"
        # the tag run: grid, walk, truncation and a tag box; nothing to translate or scatter
        assert _visible(page, "samples-box", "interp-box", "trunc-box", "cond-box") == [True] * 4
        assert _visible(page, "translate-box", "scatter-box") == [False, False]
        grid = lambda: page.evaluate(PIXELS + "('#grids img')")  # the first run's grid
        first = grid()
        _settle_after(page, lambda: _set(page, "seed", "7"))
        seeded = grid()
        assert seeded != first
        _settle_after(page, lambda: _set(page, "trunc", "0.5"))
        assert page.evaluate("document.getElementById('trunc-out').textContent") == "|z| < 0.50"
        truncated = grid()
        assert truncated not in (first, seeded)
        _settle_after(page, lambda: _set(page, "cond", "red_hair long_hair"))
        assert grid() not in (first, seeded, truncated) and _message(page) == ""
        # an unknown tag: the server's one line on the page, the last picture kept
        _set(page, "cond", "smile")
        page.wait_until("!document.getElementById('message').hidden")
        assert "unknown word(s) 'smile'" in _message(page)
        _settle_after(page, lambda: _set(page, "cond", ""))
        assert _message(page) == ""
        # the walk: its picture moves with the slider, and the GIF link answers with a GIF
        walk = page.evaluate(PIXELS + "('#interp')")
        _settle_after(page, lambda: _set(page, "t", "1"))
        assert page.evaluate(PIXELS + "('#interp')") != walk
        gif = page.evaluate("fetch(document.getElementById('gif').href).then(r => r.headers.get('content-type'))")
        assert gif == "image/gif"
        # the same seeds drawn by the StyleGAN2-style run beside it
        page.wait_until("!!document.querySelector('#compare input[value=style]')")
        page.wait_until("!!studio.described.toy")  # every other run asked
        assert page.evaluate("[...document.querySelectorAll('#compare input')].map(c => c.value)") == ["style"]
        _settle_after(page, lambda: page.evaluate(
            "(() => { const c = document.querySelector('#compare input[value=style]'); c.checked = true;"
            " c.dispatchEvent(new Event('change', {bubbles: true})); })()"))
        sizes = page.evaluate("[...document.querySelectorAll('#grids img')].map(i => i.naturalWidth)")
        assert len(sizes) == 2 and min(sizes) > 30
        _save(page, tmp_path, "studio_tags_compare.png")

        # pick the StyleGAN2-style run and project an upload into it
        _pick(page, "style")
        assert _visible(page, "project-box", "trunc-box", "edit-box") == [True, True, True]
        assert _visible(page, "cond-box", "translate-box") == [False, False]
        assert page.evaluate("document.querySelectorAll('#edits input').length") == 3  # the set's directions
        before = grid()
        _settle_after(page, lambda: page.evaluate(
            "(() => { const s = document.querySelector('#edits input'); s.value = '3'; s.dispatchEvent(new Event('input')); })()"))
        assert grid() != before
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(buf, "PNG")
        _settle_after(page, lambda: _upload(page, buf.getvalue(), "face.png", "project-upload"))
        assert page.evaluate("document.getElementById('project-status').textContent").startswith("PSNR ")
        assert page.evaluate("document.getElementById('projected').naturalWidth") == 32
        # the projection, moved by the edit slider still at 3
        page.wait_until("studio.pending === 0 && document.getElementById('projected-edit').naturalWidth === 16")
        assert _visible(page, "projected-edit-box") == [True]
        _save(page, tmp_path, "studio_style_project_edit.png")

        # pick the pix2pix run: only the upload is shown
        _pick(page, "p2p")
        assert _visible(page, "translate-box") == [True]
        assert _visible(page, "samples-box", "interp-box", "trunc-box", "cond-box", "seed-box", "project-box") == [False] * 6
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)).save(buf, "PNG")
        _settle_after(page, lambda: _upload(page, buf.getvalue(), "photo.png"))
        size = page.evaluate("[document.getElementById('translated').naturalWidth, document.getElementById('translated').naturalHeight]")
        assert size == [32, 16] and _message(page) == ""  # [input | output] at the run's 16 px
        _upload(page, b"GIF89a this is not really a picture", "broken.gif")
        page.wait_until("studio.pending === 0 && !document.getElementById('message').hidden")
        assert "not an image" in _message(page)
        _save(page, tmp_path, "studio_p2p_upload.png")

        # the toy run: the scatter against the real mixture
        _pick(page, "toy")
        assert _visible(page, "scatter-box", "trunc-box") == [True, True]
        assert _visible(page, "samples-box", "translate-box") == [False, False]
        assert page.evaluate("document.getElementById('scatter').naturalWidth") > 200
        _save(page, tmp_path, "studio_toy.png")
        # no script error anywhere; the only logged failures are the refused requests above
        errors = page.errors
        assert not [e for e in errors if e.startswith("exception")], errors
        assert all("400" in e for e in errors if e.startswith("log:")), errors
    print(f"screenshots in {tmp_path}")
