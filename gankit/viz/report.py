"""``gankit report``: one self-contained HTML page for a run or a comparison of runs.

Everything is inside the file: pictures as base64 ``data:`` URLs, curves as inline SVG, CSS
in a ``<style>`` block. No script and no network, so it opens the same from a mail
attachment, a CI artefact or a phone. Runs that differ only in ``train.seed`` form one
setting: they share a colour and the metrics table gives their mean +- std.
"""
from __future__ import annotations

import base64
import io
import json
import math
import statistics
from html import escape
from pathlib import Path
from typing import Any

import yaml

from gankit.errors import GankitError
from gankit.metrics.describe import format_mean_std
from gankit.viz.runs import Run, describe, differing_keys, flatten, group_by_setting, read_run
from gankit.viz.svg import PALETTE, line_chart

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:10px;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;border-bottom:1px solid #ddd;margin-top:1.6em}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}td:first-child{white-space:nowrap}b.best{color:#006400}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(280px,1fr));gap:10px}
svg.chart{width:100%;height:auto;font-size:13px;background:#fff;border:1px solid #eee}
svg .grid{stroke:#e5e5e5}svg .ct{font-size:15px;font-weight:600}
.legend span{display:inline-block;margin-right:12px;font-size:.9em}
.legend i{display:inline-block;width:14px;height:4px;margin-right:4px;vertical-align:middle}
.strip{display:flex;flex-wrap:wrap;gap:8px;padding-bottom:6px}
figure{margin:0;flex:0 0 auto;text-align:center;font-size:.85em}
figure img{width:220px;max-width:80vw;height:auto;image-rendering:pixelated;border:1px solid #eee}
pre{overflow-x:auto;background:#f7f7f7;padding:6px;font-size:.85em}
"""


def _embed(path: Path, thumb: int = 0) -> str | None:
    """A ``data:`` URL for a PNG file (at most ``thumb`` pixels wide when ``thumb`` > 0, to keep
    a report of many runs small); None for a missing or non-PNG file (left out)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data.startswith(PNG_MAGIC):
        return None
    if thumb > 0:
        try:
            data = _shrink(data, thumb)
        except OSError:  # a PNG header over broken data
            return None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _shrink(data: bytes, width: int) -> bytes:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        if im.width <= width:
            return data
        small = im.convert("RGB").resize((width, max(1, round(im.height * width / im.width))), Image.LANCZOS)
    buffer = io.BytesIO()
    small.quantize(colors=128).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def _figure(path: Path, caption: str, thumb: int = 0) -> str:
    url = _embed(path, thumb)
    if url is None:
        return f"<figure><em>{escape(path.name)}: not a readable PNG</em></figure>"
    return (f'<figure><img src="{url}" alt="{escape(caption)}" loading="eager">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def _table(header: list[str], rows: list[list[str]]) -> str:
    """An HTML table; cells are already-escaped HTML."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(rows_cell for rows_cell in r) + "</tr>" for r in rows)
    return f'<div class="scroll"><table><tr>{head}</tr>{body}</table></div>'


def _td(text: Any, num: bool = False) -> str:
    return f'<td class="num">{text}</td>' if num else f"<td>{text}</td>"


def _fmt(v: float | None, std: float | None = None) -> str:
    return "-" if v is None else format_mean_std(v, std)


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value; NaN beside an infinite one)."""
    mean = statistics.fmean(values)
    if not all(math.isfinite(v) for v in values):
        return mean, float("nan")
    return mean, (statistics.stdev(values) if len(values) > 1 else 0.0)


def higher_is_better(metric: str) -> bool:
    from gankit.metrics.compute import HIGHER

    return metric in HIGHER or metric.split("/")[-1] in HIGHER


def metric_summary(groups: dict[str, list[Run]]) -> dict[str, dict[str, tuple[float, float, int]]]:
    """metric -> setting -> (mean, std, number of runs with that metric), final values."""
    out: dict[str, dict[str, tuple[float, float, int]]] = {}
    for label, runs in groups.items():
        finals = [r.final_metrics() for r in runs]
        for metric in sorted(set().union(*finals)):
            values = [f[metric] for f in finals if metric in f]
            out.setdefault(metric, {})[label] = (*mean_std(values), len(values))
    return out


def _labels(runs: list[Run]) -> list[str]:
    """The shortest path endings that tell the runs apart (``hinge/seed0`` in a sweep)."""
    parts = [r.path.resolve().parts for r in runs]
    for depth in range(1, max(len(p) for p in parts) + 1):
        labels = ["/".join(p[-depth:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
    return [str(r.path) for r in runs]  # the same folder given twice


class Report:
    """The sections of one report, each a method returning HTML."""

    def __init__(self, runs: list[Run], title: str = "", thumb: int = 0):
        if not runs:
            raise GankitError("give at least one run folder to report on")
        self.runs, self.labels, self.thumb = runs, _labels(runs), thumb
        self.groups = group_by_setting(runs)
        self.setting = {id(r): label for label, rs in self.groups.items() for r in rs}
        by_group = len(self.groups) < len(runs)  # seeds of one setting share a colour
        keys = list(self.groups) if by_group else self.labels
        self.colour_of = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(keys)}
        self.by_group = by_group
        self.title = title or ("Run " + self.labels[0] if len(runs) == 1 else f"{len(runs)} runs compared")

    def colour(self, i: int) -> str:
        run = self.runs[i]
        return self.colour_of[self.setting[id(run)] if self.by_group else self.labels[i]]

    def summary(self) -> str:
        rows = []
        for i, run in enumerate(self.runs):
            timing = run.timing()
            rows.append([
                _td(f'<i style="background:{self.colour(i)}">&nbsp;&nbsp;</i> {escape(self.labels[i])}'),
                _td(escape(describe(run.config))), _td(escape(self.setting[id(run)])),
                _td(f"{run.steps_done}/{run.total_steps}", True), _td(run.state),
                _td(f"{timing[0]:.1f} s" if timing else "-", True),
                _td(f"{timing[1]:.1f}" if timing else "-", True)])
        head = ["run", "what", "setting", "steps", "state", "logged time", "steps/s"]
        return "<h2>Runs</h2>" + _table(head, rows) + (
            "<p>Logged time runs from the first to the last log record; steps/s is over that span.</p>")

    def config(self) -> str:
        if len(self.runs) == 1:
            text = yaml.safe_dump(self.runs[0].config, sort_keys=False)
            return f"<h2>Config</h2><pre>{escape(text)}</pre>"
        keys = differing_keys([r.config for r in self.runs])
        flat = [flatten(r.config) for r in self.runs]
        rows = [[_td(escape(k))] + [_td(escape(json.dumps(f.get(k)))) for f in flat] for k in keys]
        first = escape(yaml.safe_dump(self.runs[0].config, sort_keys=False))
        table = _table(["key"] + [escape(lab) for lab in self.labels], rows) if rows else "<p>identical</p>"
        return (f"<h2>Config: keys that differ</h2>{table}<details><summary>full config of "
                f"{escape(self.labels[0])}</summary><pre>{first}</pre></details>")

    def curves(self) -> str:
        per_run = [r.curves() for r in self.runs]
        keys = sorted(set().union(*per_run), key=lambda k: (not k.startswith("loss/"),
                                                            not k.startswith("metrics/"), k))
        charts = []
        for key in keys:
            series = [(self.labels[i], self.colour(i), c[key]) for i, c in enumerate(per_run) if key in c]
            charts.append(line_chart(key, series))
        if not charts:
            if any(r.steps_done for r in self.runs):  # trained, but never reached a log step
                return ("<h2>Curves</h2><p>no log records: train.log_every is longer than the "
                        "steps trained</p>")
            return "<h2>Curves</h2><p>nothing logged yet</p>"
        names = list(self.colour_of)
        legend = "".join(f'<span><i style="background:{self.colour_of[n]}"></i>{escape(n)}</span>'
                         for n in names)
        return f'<h2>Curves</h2><p class="legend">{legend}</p><div class="charts">{"".join(charts)}</div>'

    def metrics(self) -> str:
        """One row per setting (or run), one column per metric, the best value in bold."""
        rows_of = self.groups if self.by_group else {lab: [r] for lab, r in zip(self.labels, self.runs)}
        summary = metric_summary(rows_of)
        if not summary:
            return "<h2>Final metrics</h2><p>no metrics recorded (set eval.metrics or run gankit eval)</p>"
        best = {}
        for metric, by in summary.items():
            finite = [v[0] for v in by.values() if math.isfinite(v[0])]
            # nothing to single out when every value is the same
            best[metric] = ((max if higher_is_better(metric) else min)(finite)
                            if len(set(finite)) > 1 else None)
        rows = []
        for name in rows_of:
            cells = [_td(f'<i style="background:{self.colour_of[name]}">&nbsp;&nbsp;</i> {escape(name)}')]
            for metric, by in summary.items():
                if name not in by:
                    cells.append(_td("-", True))
                    continue
                mean, std, n = by[name]
                text = _fmt(mean, std if n > 1 else None)
                cells.append(_td(f'<b class="best">{text}</b>' if mean == best[metric] else text, True))
            rows.append(cells)
        head = ["setting" if self.by_group else "run"] + [
            f"{escape(m)} {'&uarr;' if higher_is_better(m) else '&darr;'}" for m in summary]
        return "<h2>Final metrics</h2>" + _table(head, rows) + self._metric_notes(list(summary))

    def _metric_notes(self, metrics: list[str]) -> str:
        """Which way is better, seeds, where each value comes from and under which protocol."""
        seeds = " Mean &plusmn; sample std over seeds." if self.by_group else ""
        sources = "; ".join(f"{escape(m)}: {escape(', '.join(sorted({r.measured_by(m) for r in self.runs} - {'-'})))}"
                            for m in metrics)
        note = (f"<p>&uarr; higher is better, &darr; lower is better; the best in bold.{seeds} "
                f"Measured by: {sources}.</p>")
        # each distinct protocol once, with the runs measured under it (they may differ)
        protocols: dict[tuple[str, str], list[str]] = {}
        for label, run in zip(self.labels, self.runs):
            for group, p in run.protocols().items():
                protocols.setdefault((group, json.dumps(p, sort_keys=True)), []).append(label)
        listed = "".join(f"<li>{escape(group)} ({escape(', '.join(labels))}): <code>{escape(p)}</code></li>"
                         for (group, p), labels in sorted(protocols.items()))
        return note + (f"<p>Protocols (from gankit eval):</p><ul>{listed}</ul>" if listed else "")

    def samples(self, max_pictures: int) -> str:
        parts = []
        for label, run in zip(self.labels, self.runs):
            final, pics = run.final_sample(), run.sample_pictures()
            if final is not None:  # the final grid first; a step grid of the same step repeats it
                pics = [(s, p) for s, p in pics if s != run.steps_done]
            keep = max_pictures - (final is not None)
            if len(pics) > keep:  # evenly spaced, always ending with the last
                idx = sorted({round(i * (len(pics) - 1) / (keep - 1)) for i in range(keep)}) if keep > 1 else [-1]
                pics = [pics[i] for i in idx]
            figures = "".join(([_figure(final, f"final (step {run.steps_done})", self.thumb)] if final else [])
                              + [_figure(p, f"step {s}", self.thumb) for s, p in pics])
            texts = run.sample_pictures(".txt")
            final_text = run.final_sample(".txt")
            if not figures and (texts or final_text):  # a sequence model: its last sentences
                step, path = (run.steps_done, final_text) if final_text else texts[-1]
                lines = path.read_text(errors="replace").splitlines()[:12]
                figures = f"<figure><pre>{escape(chr(10).join(lines))}</pre><figcaption>step {step}</figcaption></figure>"
            parts.append(f"<h3>{escape(label)}</h3><div class=\"strip\">{figures or 'no samples'}</div>")
        return ("<h2>Samples (fixed noise): the final grid, then over training</h2>"
                + "".join(parts))

    def eval_pictures(self) -> str:
        parts = []
        for label, run in zip(self.labels, self.runs):
            pics = run.eval_pictures()
            if pics:
                figures = "".join(_figure(p, p.stem.replace("_", " "), self.thumb) for p in pics)
                parts.append(f'<h3>{escape(label)}</h3><div class="strip">{figures}</div>')
        return ("<h2>Evaluation pictures</h2>" + "".join(parts)) if parts else ""

    def html(self, max_pictures: int = 6) -> str:
        body = "".join([self.summary(), self.curves(), self.metrics(), self.samples(max_pictures),
                        self.eval_pictures(), self.config()])
        return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
                '<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{escape(self.title)}</title><style>{CSS}</style></head>"
                f"<body><h1>{escape(self.title)}</h1>{body}</body></html>\n")


def write_report(run_dirs: list[str | Path], out: str | Path, title: str = "",
                 max_pictures: int = 6, thumb: int = 0) -> Path:
    """Read the runs and write the report to ``out`` (atomically: a failed read writes nothing)."""
    if max_pictures < 2:
        raise GankitError(f"--max-pictures must be at least 2, got {max_pictures}")
    runs = [read_run(p) for p in run_dirs]
    if thumb < 0:
        raise GankitError(f"--thumb must be 0 (full size) or a width in pixels, got {thumb}")
    html = Report(runs, title, thumb).html(max_pictures)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)
    return out
