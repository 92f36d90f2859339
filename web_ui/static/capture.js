// Capture view: source picker, start/stop, "save last N min", live level meter and buffer fill.
import { $, api, el, registerView } from "./app.js";

let timer = null;

async function devices() {
  try {
    const list = await api("/api/capture/devices");
    $("#cap-device").replaceChildren(el("option", { value: "" }, "default"), ...list.map((d) => el("option", { value: d.id }, `${d.kind}: ${d.name}`)));
  } catch (_) {}
}

async function poll() {
  let s;
  try { s = await api("/api/capture/status"); } catch (_) { return; }
  $("#cap-status").textContent = s.running
    ? `${s.source} · ${s.device || ""} · ${s.recording ? "RECORDING " : ""}elapsed ${Math.round(s.elapsed || 0)} s · buffer ${Math.round((s.buffer_fill || 0) * 100)}% of ${Math.round((s.buffer_seconds || 0) / 60)} min · dropped ${s.dropped_frames || 0} · ${((s.bytes_written || 0) / 1e6).toFixed(1)} MB${s.silent ? " · silent" : ""}${s.error ? " · ERROR: " + s.error : ""}`
    : (s.error ? `stopped: ${s.error}` : "not running");
  const peak = Math.max(...(s.peak_db || s.level_peak_db || [-90]));
  $("#cap-level").style.width = `${Math.max(0, Math.min(100, (peak + 60) * (100 / 60)))}%`;
  $("#cap-fill").style.width = `${Math.round((s.buffer_fill || 0) * 100)}%`;
}

$("#cap-start").addEventListener("click", async () => {
  await api("/api/capture/start", { method: "POST", body: { source: $("#cap-source").value, device_id: $("#cap-device").value || null, frames: $("#cap-frames").checked, buffer_minutes: parseFloat($("#cap-buffer").value) } });
  poll();
});
$("#cap-record").addEventListener("click", async () => { await api("/api/capture/record", { method: "POST" }); poll(); });
$("#cap-stop").addEventListener("click", async () => { await api("/api/capture/stop", { method: "POST" }); poll(); });
$("#cap-save").addEventListener("click", async () => { await api("/api/capture/save", { method: "POST", body: { minutes: parseFloat($("#cap-last").value) } }); poll(); });

registerView("capture", {
  enter() { devices(); poll(); clearInterval(timer); timer = setInterval(() => { if ($("#view-capture").classList.contains("active")) poll(); }, 500); },
});
