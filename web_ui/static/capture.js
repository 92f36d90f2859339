// Capture view: source picker; one Listen and one Record state (the same as `weaver capture` and the tray);
// "save last N min" with what was saved and a link to the item; live lines as they are heard (click to keep).
import { $, api, colorFor, el, fmt, openItem, refreshMedia, registerView } from "./app.js";

let timer = null;
let events = null;
const TOKEN = sessionStorage.getItem("weaver_token") || "";

async function devices() {
  try {
    const list = await api("/api/capture/devices");
    $("#cap-device").replaceChildren(el("option", { value: "" }, "default"), ...list.map((d) => el("option", { value: d.id }, `${d.kind}: ${d.name}`)));
  } catch (_) {}
}

async function poll() {
  let s;
  try { s = await api("/api/capture/status"); } catch (_) { return; }
  const state = s.state || (s.recording ? "recording" : s.running ? "listening" : "off");
  $("#cap-state").textContent = state;
  $("#cap-state").dataset.state = state;
  $("#cap-record").disabled = state === "recording";
  $("#cap-start").disabled = state !== "off";
  $("#cap-stop").disabled = state === "off";
  $("#cap-save").disabled = state === "off";
  $("#cap-status").textContent = s.running
    ? `${s.source} · ${s.device || ""} · ${state} ${Math.round(s.elapsed || 0)} s · buffer ${Math.round((s.buffer_fill || 0) * 100)}% of ${Math.round((s.buffer_seconds || 0) / 60)} min · dropped ${s.dropped_frames || 0} · ${((s.bytes_written || 0) / 1e6).toFixed(1)} MB${s.silent ? " · silent" : ""}${s.error ? " · " + s.error : ""}`
    : (s.error ? `stopped: ${s.error}` : "not running");
  const peak = Math.max(...(s.peak_db || s.level_peak_db || [-90]));
  $("#cap-level").style.width = `${Math.max(0, Math.min(100, (peak + 60) * (100 / 60)))}%`;
  $("#cap-fill").style.width = `${Math.round((s.buffer_fill || 0) * 100)}%`;
}

function options(extra = {}) {
  return { source: $("#cap-source").value, device_id: $("#cap-device").value || null, frames: $("#cap-frames").checked, buffer_minutes: parseFloat($("#cap-buffer").value), ...extra };
}

function showSaved(saved, jobId) {
  if (!saved) return;
  const box = $("#cap-saved");
  const what = `${saved.seconds ? `Saved ${saved.seconds} s` : "Kept a line"}${saved.lines ? ` with ${saved.lines} live line${saved.lines === 1 ? "" : "s"}` : ""}${saved.kept ? ` (${saved.kept} kept as a clip)` : ""}${saved.note ? ` — ${saved.note}` : ""} as `;
  box.replaceChildren(what, el("a", { href: "#transcript", class: "saved-link", onclick: async (e) => { e.preventDefault(); await refreshMedia(); openItem("transcript", saved.media_id); } }, `item ${saved.media_id}`),
    jobId ? ` · analysis queued (job ${jobId}), it refines the lines` : "");
  box.hidden = false;
}

// ---- live lines -------------------------------------------------------------------------------
function lineRow(line) {
  const who = line.name || line.speaker || "…";
  const li = el("li", { id: `live-${line.id}`, class: line.final ? "" : "partial", title: line.final ? "keep this line as a clip" : "still listening…",
    onclick: async () => {
      if (!line.final) return;
      const res = await api("/api/live/keep", { method: "POST", body: { line_id: line.id } });
      li.classList.add("kept");
      showSaved({ seconds: null, media_id: res.media_id, lines: 1, kept: 1 });
    } },
    el("span", { class: "muted" }, `${fmt(line.start)} `),
    el("span", { class: "who", style: line.speaker ? `color:${colorFor(line.name || line.speaker)}` : "" }, `${who}:`),
    line.text);
  return li;
}

function putLine(line) {
  const list = $("#live-lines");
  const row = lineRow(line);
  const old = document.getElementById(`live-${line.id}`);
  if (old) { if (old.classList.contains("kept")) row.classList.add("kept"); old.replaceWith(row); }
  else { list.append(row); list.scrollTop = list.scrollHeight; }
}

function connectLive() {
  if (events) return;
  events = new EventSource(`/api/live/events?token=${encodeURIComponent(TOKEN)}`);
  events.addEventListener("snapshot", (e) => { const d = JSON.parse(e.data); $("#live-lines").replaceChildren(...d.lines.map(lineRow)); });
  events.addEventListener("line", (e) => putLine(JSON.parse(e.data)));
  events.addEventListener("notice", (e) => { const d = JSON.parse(e.data); $("#live-notice").textContent = d.text || ""; $("#live-notice").hidden = !d.text; });
  events.onerror = () => { events.close(); events = null; setTimeout(() => { if ($("#view-capture").classList.contains("active")) connectLive(); }, 2000); };
}

$("#cap-start").addEventListener("click", async () => { await api("/api/capture/start", { method: "POST", body: options() }); poll(); });
$("#cap-record").addEventListener("click", async () => { await api("/api/capture/record", { method: "POST", body: options() }); poll(); });
$("#cap-stop").addEventListener("click", async () => {
  const res = await api("/api/capture/stop", { method: "POST" });
  if (res.media_id) showSaved(res.last_saved, res.last_job_id);
  poll();
});
$("#cap-save").addEventListener("click", async () => {
  const res = await api("/api/capture/save", { method: "POST", body: { minutes: parseFloat($("#cap-last").value) } });
  showSaved(res.saved, res.job_id);
  poll();
});

registerView("capture", {
  enter() {
    devices(); poll(); connectLive();
    clearInterval(timer);
    timer = setInterval(() => { if ($("#view-capture").classList.contains("active")) poll(); else { clearInterval(timer); if (events) { events.close(); events = null; } } }, 500);
  },
});
