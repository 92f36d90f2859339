// Characters view: list with counts and time; pick one → its clips with waveform, play, frame preview,
// draggable trim edges (snap to words), keep/reject, export.
import { $, api, el, fmt, play, registerView } from "./app.js";

let current = null;

async function renderList() {
  const id = $("#ch-item").value;
  if (!id) return;
  const chars = await api(`/api/media/${id}/characters`);
  $("#character-list").replaceChildren(...chars.map((c) => el("li", { "data-character": c.name, class: current === c.name ? "selected" : "", onclick: () => pick(c.name) },
    el("strong", {}, c.name), el("br"), el("span", { class: "muted" }, `${c.lines} lines · ${fmt(c.seconds)}`))));
  if (!chars.length) $("#character-list").replaceChildren(el("li", { class: "muted" }, "No characters yet (the analysis job names them)."));
  if (current && !chars.some((c) => c.name === current)) { current = null; $("#clips-panel").hidden = true; }
}

async function pick(name) {
  current = name;
  document.querySelectorAll("#character-list li").forEach((li) => li.classList.toggle("selected", li.dataset.character === name));
  const id = $("#ch-item").value;
  const segs = await api(`/api/media/${id}/segments?character=${encodeURIComponent(name)}`);
  $("#clips-title").textContent = `${name}: ${segs.length} clips`;
  $("#clips-panel").hidden = false;
  $("#clips").replaceChildren(...segs.map((s) => clipCard(s)));
}

function clipCard(s) {
  const card = el("div", { class: `clip ${s.status}`, "data-clip": s.clip_id });
  const img = el("img", { alt: "frame", loading: "lazy", src: `/api/clips/${s.clip_id}/frame`, onerror: (e) => (e.target.style.visibility = "hidden") });
  const wave = el("div", { class: "wave" });
  const times = el("span", { class: "times" }, `${fmt(s.start + s.trim_start)}–${fmt(s.end + s.trim_end)}`);
  const snap = el("input", { type: "checkbox", class: "snap", checked: true });
  const status = (v) => async () => { const c = await api(`/api/clips/${s.clip_id}`, { method: "PATCH", body: { status: v } }); card.className = `clip ${c.status}`; };
  card.append(img, el("div", {},
    el("div", {}, el("strong", {}, s.text), el("span", { class: "muted" }, ` · ${s.attribution_source || ""} ${s.confidence != null ? s.confidence.toFixed(2) : ""}${s.overlap ? " · overlapping speech" : ""}`)),
    wave,
    el("div", { class: "row" },
      el("button", { class: "play", onclick: () => play(`/api/clips/${s.clip_id}/audio`) }, "▶ Play"), times,
      el("label", {}, snap, " snap to words"),
      el("button", { class: "keep", onclick: status("kept") }, "Keep"), el("button", { class: "reject", onclick: status("rejected") }, "Reject"))));
  drawWave(wave, s.clip_id, times, snap);
  return card;
}

async function drawWave(box, clipId, times, snap) {
  const w = await api(`/api/clips/${clipId}/waveform?points=300&pad=1`);
  const canvas = el("canvas", { width: 600, height: 64 });
  const sel = el("div", { class: "sel" });
  const left = el("div", { class: "edge", "data-edge": "start", title: "drag to trim the start" });
  const right = el("div", { class: "edge", "data-edge": "end", title: "drag to trim the end" });
  box.replaceChildren(canvas, sel, left, right);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#6aa9ff";
  const step = canvas.width / w.peaks.length;
  w.peaks.forEach((p, i) => { const h = Math.max(1, p * 60); ctx.fillRect(i * step, 32 - h / 2, Math.max(1, step - 0.5), h); });
  ctx.fillStyle = "rgba(255,255,255,.25)";
  for (const word of w.words) ctx.fillRect(((word.start - w.start) / (w.end - w.start)) * canvas.width, 0, 1, 6);
  let edges = { start: w.clip_start, end: w.clip_end };
  const toX = (t) => ((t - w.start) / (w.end - w.start)) * 100;
  const layout = () => {
    left.style.left = `${toX(edges.start)}%`; right.style.left = `${toX(edges.end)}%`;
    sel.style.left = `${toX(edges.start)}%`; sel.style.width = `${toX(edges.end) - toX(edges.start)}%`;
    times.textContent = `${fmt(edges.start)}–${fmt(edges.end)}`;
  };
  layout();
  for (const handle of [left, right]) {
    handle.addEventListener("pointerdown", (e) => {
      e.preventDefault();
      handle.setPointerCapture(e.pointerId);
      const rect = box.getBoundingClientRect();
      const move = (ev) => {
        const t = w.start + ((ev.clientX - rect.left) / rect.width) * (w.end - w.start);
        if (handle.dataset.edge === "start") edges.start = Math.min(Math.max(w.start, t), edges.end - 0.05);
        else edges.end = Math.max(Math.min(w.end, t), edges.start + 0.05);
        layout();
      };
      const up = async () => {
        handle.removeEventListener("pointermove", move);
        handle.removeEventListener("pointerup", up);
        const body = handle.dataset.edge === "start" ? { start: edges.start } : { end: edges.end };
        const c = await api(`/api/clips/${clipId}`, { method: "PATCH", body: { ...body, relative: false, snap: snap.checked } });
        edges = { start: c.start, end: c.end };
        layout();
        box.dispatchEvent(new CustomEvent("trimmed", { bubbles: true, detail: c }));
      };
      handle.addEventListener("pointermove", move);
      handle.addEventListener("pointerup", up);
    });
  }
}

$("#ch-item").addEventListener("change", () => { current = null; $("#clips-panel").hidden = true; renderList(); });
$("#export").addEventListener("click", async () => {
  const id = $("#ch-item").value;
  const r = await api(`/api/media/${id}/export`, { method: "POST", body: { character: current, video: $("#exp-video").checked, isolate: $("#exp-isolate").checked } });
  $("#export-result").textContent = `${r.files.length} files → ${r.path}`;
});
registerView("characters", { enter: renderList });
