"""gankit studio latency: from a request (or a control moved on the page) to the new image,
for a single 64-px image and a 64-image grid, DCGAN-64 (the anime64 net) and the
StyleGAN2-style 64-px net (anime64_stylegan2), served on one CPU thread.

    OMP_NUM_THREADS=1 python benchmarks/studio.py --out /tmp/studio_bench [--steps 20]
    python benchmarks/studio.py --out /tmp/x --shot RUN [--directions FILE] --screenshot benchmarks/figures/studio.png

Trains (or reuses) the two runs on the built-in drawn faces (``--steps`` for DCGAN; two
small steps for StyleGAN2: latency does not depend on training), starts ``gankit studio`` on them as a
person would, then measures

* ``http``: a GET of ``/api/samples.png`` until its last byte, by the standard library's
  HTTP client (``draw`` is the server's own Server-Timing: drawing and PNG encoding);
* ``page``: in headless Chromium, a seed typed into the page until every picture it shows
  (grid and walk) is decoded, the 40 ms debounce included (skipped without Chromium).

Medians over ``--repeat`` new seeds each, after two warm-up requests. One JSON line per row.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["eval.metrics=[]", "eval.best=", "train.threads=1", "data.workers=0", "train.progress=false",
         "train.log_every=50"]
RUNS = {  # name -> preset and overrides
    "dcgan64": ("anime64", ["data.source=faces", "train.sample_every=0", "train.ckpt_every=0"]),
    # latency depends on G alone: two small steps on 48 drawn faces give the same 64-px net
    "stylegan2_64": ("anime64_stylegan2", ["data.source=faces48", "data.batch_size=8", "train.augment=none",
                                           "train.steps=2", "train.sample_every=0", "train.ckpt_every=0"]),
}


def train(out: Path, steps: int) -> dict[str, Path]:
    runs = {}
    for name, (preset, items) in RUNS.items():
        run = out / name
        if not (run / "checkpoints" / "last.pt").exists():
            extra = [f"train.steps={steps}"] if name == "dcgan64" else []
            subprocess.run([sys.executable, "-m", "gankit", "train", preset, *QUIET, *items, *extra,
                            "--out", str(run)], check=True, env=_env())
        runs[name] = run
    return runs


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def start_studio(runs: dict[str, Path]) -> tuple[subprocess.Popen, str, int]:
    proc = subprocess.Popen([sys.executable, "-m", "gankit", "studio", *map(str, runs.values()),
                             "--port", "0", "--threads", "1"], stdout=subprocess.PIPE, text=True, env=_env())
    found = re.search(r"http://([\d.]+):(\d+)/", proc.stdout.readline())
    if not found:
        proc.kill()
        raise SystemExit("gankit studio did not start")
    return proc, found.group(1), int(found.group(2))


def http_latency(host: str, port: int, run: str, n: int, repeat: int) -> dict[str, float]:
    conn = http.client.HTTPConnection(host, port)
    walls, draws = [], []
    for k in range(repeat + 2):
        started = time.perf_counter()
        conn.request("GET", f"/api/samples.png?run={run}&n={n}&seed={1000 + k}")
        response = conn.getresponse()
        body = response.read()
        wall = time.perf_counter() - started
        assert response.status == 200 and body[:4] == b"\x89PNG", body[:200]
        if k >= 2:  # the first two warm up (the run is loaded on first use)
            walls.append(1000 * wall)
            draws.append(float(response.getheader("Server-Timing").split("dur=")[1]))
    conn.close()
    return {"http_ms": round(statistics.median(walls), 1), "http_p90_ms": round(sorted(walls)[int(0.9 * len(walls))], 1),
            "draw_ms": round(statistics.median(draws), 1)}


MOVE = """(async (n) => {
  const seen = () => new Promise(r => { const tick = () => studio.pending === 0 && studio.shown > before
      ? r() : requestAnimationFrame(tick); tick(); });
  var before = studio.shown;
  document.getElementById('n').value = String(n); document.getElementById('n').dispatchEvent(new Event('input'));
  await seen();
  const times = [];
  for (let k = 0; k < %d; k++) {
    before = studio.shown;
    const t0 = performance.now();
    const seed = document.getElementById('seed');
    seed.value = String(2000 + 100 * n + k); seed.dispatchEvent(new Event('input'));
    await seen();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
})"""


def screenshot(runs: list[str], directions: list[str], out: Path) -> None:
    """The README's picture: the studio on ``runs``, 16 samples, the first edit slider at 1.5,
    a built-in drawn face projected (100 steps) and edited."""
    import io

    from PIL import Image

    from gankit.data.builtin import load_builtin
    from gankit.data.folders import to_uint8
    from gankit.viz.browser import open_page

    extra = [a for d in directions for a in ("--directions", d)]
    proc = subprocess.Popen([sys.executable, "-m", "gankit", "studio", *runs, *extra, "--port", "0", "--threads", "1"],
                            stdout=subprocess.PIPE, text=True, env=_env())
    url = re.search(r"http://\S+/", proc.stdout.readline()).group(0)
    face = io.BytesIO()
    Image.fromarray(to_uint8(load_builtin("faces48")[0][7:8])[0]).save(face, "PNG")
    try:
        with open_page(url, width=1200, height=900) as page:
            page.wait_until("window.studio && studio.ready !== null && studio.pending === 0")
            page.evaluate("(() => { const s = document.querySelector('#edits input'); if (s) { s.value = '1.5';"
                          " s.dispatchEvent(new Event('input')); } })()")
            page.wait_until("studio.pending === 0")
            data = json.dumps(list(face.getvalue()))
            page.evaluate(f"(() => {{ const t = new DataTransfer(); t.items.add(new File([new Uint8Array({data})], 'face.png'));"
                          " const i = document.getElementById('project-upload'); i.files = t.files;"
                          " i.dispatchEvent(new Event('change')); })()")
            time.sleep(0.5)
            page.wait_until("studio.pending === 0", timeout=300)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(page.screenshot())
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def page_latency(url: str, run: str, ns: list[int], repeat: int, screenshot: Path | None) -> dict[int, float]:
    from gankit.viz.browser import find_chromium, open_page

    if find_chromium() is None:
        return {}
    out = {}
    with open_page(url, width=1200, height=900, timeout=600) as page:  # a StyleGAN2 64-grid takes seconds
        page.wait_until("window.studio && studio.ready !== null && studio.pending === 0")
        if page.evaluate("studio.run") != run:
            page.evaluate(f"(() => {{ const s = document.getElementById('run'); s.value = '{run}';"
                          " s.dispatchEvent(new Event('change')); })()")
            page.wait_until(f"studio.ready === '{run}' && studio.pending === 0")
        for n in ns:
            out[n] = round(page.evaluate(MOVE % repeat + f"({n})"), 1)
        if screenshot is not None:
            page.evaluate("(() => { const n = document.getElementById('n'); n.value = '16';"
                          " n.dispatchEvent(new Event('input')); })()")
            page.wait_until("studio.pending === 0")
            page.wait_until("!!document.querySelector('#compare input')")
            page.evaluate("(() => { const c = document.querySelector('#compare input'); c.checked = true;"
                          " c.dispatchEvent(new Event('change', {bubbles: true})); })()")
            time.sleep(0.3)
            page.wait_until("studio.pending === 0")
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            screenshot.write_bytes(page.screenshot())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="folder for the two runs (reused if there)")
    ap.add_argument("--steps", type=int, default=300, help="DCGAN-64 training steps")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--screenshot", type=Path, help="write a screenshot of the page here")
    ap.add_argument("--shot", nargs="+", metavar="RUN", help="only take the screenshot, of these runs")
    ap.add_argument("--directions", nargs="*", default=[], help="--shot: gankit directions files")
    args = ap.parse_args()
    if args.shot:
        return screenshot(args.shot, args.directions, args.screenshot or Path("studio.png"))
    if args.out is None:
        ap.error("--out is required (the folder for the two runs)")
    runs = train(args.out, args.steps)
    proc, host, port = start_studio(runs)
    try:
        for name in runs:
            page = page_latency(f"http://{host}:{port}/", name, [1, 64], max(5, args.repeat // 2),
                                args.screenshot if name == "dcgan64" else None)
            for n in (1, 64):
                row = {"net": name, "images": n, "threads": 1, **http_latency(host, port, name, n, args.repeat)}
                if n in page:
                    row["page_ms"] = page[n]
                print(json.dumps(row), flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
