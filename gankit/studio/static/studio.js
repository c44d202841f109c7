// gankit studio: the page only gathers the controls' values, asks the server for a
// picture and shows it (or the server's message). Every picture is drawn by
// gankit/studio/core.py, the same functions the command line uses.
"use strict";
const $ = id => document.getElementById(id);
const state = {runs: [], run: null, caps: {}, pending: 0, shown: 0, ready: null, described: {}, projection: null};
window.studio = state;  // what the browser tests wait on: pending requests, pictures shown, run set up

function showMessage(text) {
  $("message").textContent = text || "";
  $("message").hidden = !text;
}

async function errorText(response) {
  try { return (await response.json()).error; }
  catch (e) { return `the studio failed (HTTP ${response.status}); see the terminal it runs in`; }
}

// Load url into img (its response when shown); a newer request for the same img wins.
async function loadInto(img, url, options) {
  const ticket = (img.dataset.ticket = String(Number(img.dataset.ticket || 0) + 1));
  state.pending++;
  try {
    const response = await fetch(url, options);
    if (img.dataset.ticket !== ticket) return;
    if (!response.ok) { showMessage(await errorText(response)); return false; }
    const timing = response.headers.get("Server-Timing");
    const blob = await response.blob();
    if (img.dataset.ticket !== ticket) return;
    const old = img.src;
    img.src = URL.createObjectURL(blob);
    await img.decode().catch(() => {});
    if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    img.hidden = false;
    if (timing) $("timing").textContent = "drawn in " + timing.split("dur=")[1] + " ms";
    showMessage("");
    state.shown++;
    return response;
  } catch (e) {
    showMessage("the studio did not answer: " + e);
  } finally {
    state.pending--;
  }
}

function query(extra) {
  const p = new URLSearchParams({run: state.run, seed: $("seed").value || "0"});
  if (state.caps.truncation) p.set("truncation", $("trunc").value);
  if (state.caps.condition && $("cond").value.trim()) p.set("cond", $("cond").value.trim());
  for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
  for (const slider of document.querySelectorAll("#edits input")) {
    if (Number(slider.value) !== 0) p.append("edit", `${slider.dataset.set}:${slider.dataset.name}:${slider.value}`);
  }
  return p;
}

function compared() {
  return [...document.querySelectorAll("#compare input:checked")].map(c => c.value);
}

function drawSamples() {
  const keys = [state.run, ...compared()];
  const grids = $("grids");
  // one figure per run, kept across redraws so the pictures do not flicker
  for (const fig of [...grids.children]) if (!keys.includes(fig.dataset.run)) fig.remove();
  for (const key of keys) {
    let fig = grids.querySelector(`figure[data-run="${CSS.escape(key)}"]`);
    if (!fig) {
      fig = document.createElement("figure");
      fig.dataset.run = key;
      fig.innerHTML = "<figcaption></figcaption><img alt='samples'>";
      fig.querySelector("figcaption").textContent = key;
      grids.appendChild(fig);
    }
    const p = query({n: $("n").value});
    p.set("run", key);
    if (key !== state.run) p.delete("edit");  // direction sets fit the run they were found for
    loadInto(fig.querySelector("img"), "/api/samples.png?" + p);
  }
}

function drawInterpolation() {
  $("seed-a").textContent = $("seed").value;
  $("t-out").textContent = $("t").value;
  loadInto($("interp"), "/api/interpolation.png?" + query({seed2: $("seed2").value, t: $("t").value}));
  $("gif").href = "/api/interpolation.gif?" + query({seed2: $("seed2").value, frames: 16});
}

let timer = null;
function redraw() {  // coalesce a slider's bursts of events into one request
  if (timer === null) state.pending++;  // a redraw is due: the page is not settled yet
  else clearTimeout(timer);
  timer = setTimeout(() => {
    timer = null;
    if (state.caps.samples) drawSamples();
    if (state.caps.scatter) loadInto($("scatter"), "/api/scatter.png?" + query({n: $("points").value}));
    if (state.caps.interpolate) drawInterpolation();
    if (state.caps.edit && state.projection) {
      $("projected-edit-box").hidden = false;
      loadInto($("projected-edit"), "/api/projection.png?" + query({id: state.projection}));
    }
    state.pending--;
  }, 40);
}

function showTruncation() {
  const t = state.caps.truncation;
  const v = Number($("trunc").value);
  $("trunc-out").textContent = v >= t.none_at ? "none" : (t.kind === "psi" ? "psi " : "|z| < ") + v.toFixed(2);
}

function setUp(info) {
  const caps = (state.caps = info.caps);
  $("runmeta").textContent = `${info.kind} · step ${info.step} of ${info.total_steps} · ${info.describe}`;
  $("n-box").hidden = $("samples-box").hidden = !caps.samples;
  $("points-box").hidden = $("scatter-box").hidden = !caps.scatter;
  $("interp-box").hidden = !caps.interpolate;
  $("translate-box").hidden = !caps.translate;
  $("project-box").hidden = !caps.project;
  $("edit-box").hidden = !caps.edit;
  editSliders(caps.edit);
  state.projection = null;
  $("projected-edit-box").hidden = true;
  $("projected").hidden = true;
  $("project-status").textContent = "";
  if (caps.project) {
    $("project-steps").replaceChildren(...caps.project.steps.map(n => Object.assign(document.createElement("option"), {value: n, textContent: n})));
  }
  $("trunc-box").hidden = !caps.truncation;
  if (caps.truncation) {
    Object.assign($("trunc"), {min: caps.truncation.min, max: caps.truncation.max, step: caps.truncation.step});
    $("trunc").value = caps.truncation.none_at;
    showTruncation();
  }
  $("cond-box").hidden = !caps.condition;
  $("cond").value = "";
  if (caps.condition) {
    $("cond-label").textContent = caps.condition.kind === "labels" ? "class" : "tags";
    $("cond-list").replaceChildren(...caps.condition.choices.map(c => Object.assign(document.createElement("option"), {value: c})));
  }
  $("seed-box").hidden = !(caps.samples || caps.scatter || caps.interpolate);
  $("compare-box").hidden = true;
  $("compare").replaceChildren();
  $("grids").replaceChildren();
  $("translated").hidden = true;
  $("metrics").replaceChildren(...Object.entries(info.metrics).map(([k, v]) => {
    const tr = document.createElement("tr");
    tr.innerHTML = "<td></td><td></td>";
    tr.children[0].textContent = k;
    tr.children[1].textContent = Number(v).toPrecision(4);
    return tr;
  }));
  if (!Object.keys(info.metrics).length) $("metrics").innerHTML = "<tr><td>none logged</td></tr>";
  $("config").textContent = info.config;
}

// Offer the other runs that draw image grids from seeds too (asked one by one, after the
// run's own pictures, so the page shows something first).
const MAX_COMPARED = 24;
async function offerComparisons(key) {
  if (!(state.caps.compare && state.caps.samples)) return;
  for (const other of state.runs.filter(r => r.key !== key).slice(0, MAX_COMPARED)) {
    if (!state.described[other.key]) {
      const response = await fetch("/api/run?" + new URLSearchParams({run: other.key}));
      state.described[other.key] = response.ok ? (await response.json()).caps : {};
    }
    const caps = state.described[other.key];
    if (state.run !== key || !(caps.compare && caps.samples)) continue;
    const label = document.createElement("label");
    label.innerHTML = "<input type='checkbox'> <span></span><br>";
    label.querySelector("input").value = other.key;
    label.querySelector("span").textContent = other.key;
    $("compare").appendChild(label);
    $("compare-box").hidden = false;
  }
}

async function pickRun(key) {
  state.run = key;
  state.pending++;
  try {
    const response = await fetch("/api/run?" + new URLSearchParams({run: key}));
    if (!response.ok) { showMessage(await errorText(response)); return; }
    setUp(await response.json());
    showMessage("");
    redraw();
    state.ready = key;
    offerComparisons(key);
  } finally {
    state.pending--;
  }
}

async function upload(file) {
  if (!file) return;
  const p = new URLSearchParams({run: state.run});
  await loadInto($("translated"), "/api/translate?" + p,
                 {method: "POST", body: file, headers: {"Content-Type": "application/octet-stream"}});
}

async function projectUpload(file) {
  if (!file) return;
  $("project-status").textContent = `projecting (${$("project-steps").value} steps)...`;
  const p = query({steps: $("project-steps").value});
  const response = await loadInto($("projected"), "/api/project?" + p,
                              {method: "POST", body: file, headers: {"Content-Type": "application/octet-stream"}});
  $("project-status").textContent = response ? `PSNR ${response.headers.get("X-PSNR")} dB` : "";
  if (response) { state.projection = response.headers.get("X-Projection"); redraw(); }
}

function editSliders(edit) {
  const rows = [];
  for (const set of (edit ? edit.sets : [])) {
    for (const name of set.names) {
      const label = document.createElement("label");
      label.innerHTML = "<span></span> <input type='range' step='0.25' value='0'> <output>0</output>";
      label.querySelector("span").textContent = name;
      label.title = `${set.set} (${set.method}, ${set.space})`;
      const input = label.querySelector("input");
      Object.assign(input, {min: -edit.range, max: edit.range});
      input.value = 0;
      Object.assign(input.dataset, {set: set.set, name: name});
      input.addEventListener("input", () => { label.querySelector("output").textContent = input.value; redraw(); });
      rows.push(label);
    }
  }
  $("edits").replaceChildren(...rows);
}

async function start() {
  const response = await fetch("/api/runs");
  if (!response.ok) { showMessage(await errorText(response)); return; }
  state.runs = await response.json();
  $("run").replaceChildren(...state.runs.map(r => Object.assign(document.createElement("option"),
      {value: r.key, textContent: `${r.key} (${r.kind}, ${r.state})`})));
  $("run").addEventListener("change", () => pickRun($("run").value));
  for (const id of ["seed", "n", "points", "seed2", "t", "cond"]) $(id).addEventListener("input", redraw);
  $("trunc").addEventListener("input", () => { showTruncation(); redraw(); });
  $("compare").addEventListener("change", redraw);
  $("edit-reset").addEventListener("click", () => {
    for (const slider of document.querySelectorAll("#edits input")) {
      slider.value = 0;
      slider.parentElement.querySelector("output").textContent = "0";
    }
    redraw();
  });
  $("prev").addEventListener("click", () => { $("seed").value = Math.max(0, Number($("seed").value) - 1); redraw(); });
  $("next").addEventListener("click", () => { $("seed").value = Number($("seed").value) + 1; redraw(); });
  $("upload").addEventListener("change", () => upload($("upload").files[0]));
  $("project-upload").addEventListener("change", () => projectUpload($("project-upload").files[0]));
  if (state.runs.length) await pickRun(state.runs[0].key);
}

start();
