// Voices view: datasets (from a character's clips), training jobs with loss curve and progress, test synthesis.
import { $, api, el, play, registerView } from "./app.js";
import { manageSection } from "./voicemgmt.js";

let timer = null;

function lossCurve(losses) {
  const c = el("canvas", { width: 320, height: 80, class: "loss" });
  const ctx = c.getContext("2d");
  ctx.fillStyle = "#101217"; ctx.fillRect(0, 0, c.width, c.height);
  if (losses.length > 1) {
    const lo = Math.min(...losses), hi = Math.max(...losses), span = hi - lo || 1;
    ctx.strokeStyle = "#6adf8a"; ctx.beginPath();
    losses.forEach((l, i) => { const x = (i / (losses.length - 1)) * c.width, y = c.height - 4 - ((l - lo) / span) * (c.height - 8); i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
    ctx.stroke();
  }
  return c;
}

// similarity / WER / DNSMOS of a voice, each with the default voice's number on the same clips beside it
function checkCells(c) {
  const fmt = { similarity: (x) => x.toFixed(2), wer: (x) => `${Math.round(x * 100)}%`, dnsmos: (x) => x.toFixed(2) };
  return ["similarity", "wer", "dnsmos"].map((k) => {
    const v = c?.[k], d = c?.default?.[k];
    const text = v == null ? "" : fmt[k](v) + (d == null ? "" : ` (default ${fmt[k](d)})`);
    return el("td", { class: `check-${k}` }, text);
  });
}

// "Instant voice": POST /api/voices/instant starts the clone job; its progress is polled into one line
let instantLine = "";
async function instantVoice(mediaId, character) {
  if (!mediaId || !character) return;
  const show = (t) => { instantLine = t; const s = $("#instant-progress"); if (s) s.textContent = t; };
  let job;
  try { job = (await api("/api/voices/instant", { method: "POST", body: { media_id: Number(mediaId), character } })).job_id; }
  catch (e) { show(String(e.message || e)); return; }
  show(`cloning ${character}…`);
  for (;;) {
    await new Promise((r) => setTimeout(r, 700));
    const j = await api(`/api/jobs/${job}`);
    show(`${j.stage || "cloning"} ${Math.round((j.progress || 0) * 100)}% ${j.message || ""}`);
    if (!["queued", "running", "cancelling"].includes(j.state)) {
      show(j.state === "done" ? `voice '${j.params?.voice || ""}' made (${j.result?.ok === false ? "failed its voice check" : "checked"})` : `${j.state}: ${j.error || ""}`);
      render();
      return;
    }
  }
}

async function render() {
  const root = $("#voices");
  const [voices, datasets, runs, media, manage] = await Promise.all([api("/api/voices"), api("/api/voices/datasets"), api("/api/voices/training"), api("/api/media"), manageSection(render)]);
  const itemSel = el("select", { id: "ds-item" }, ...media.map((m) => el("option", { value: m.id }, `${m.id}: ${m.title}`)));
  const charSel = el("select", { id: "ds-character" });
  const loadChars = async () => { if (!itemSel.value) return; const cs = await api(`/api/media/${itemSel.value}/characters`); charSel.replaceChildren(...cs.map((c) => el("option", { value: c.name }, `${c.name} (${c.lines})`))); };
  itemSel.onchange = loadChars;
  const say = el("input", { id: "say-text", value: "Hello! This is my voice now.", size: 40 });
  const voiceSel = el("select", { id: "say-voice" }, ...voices.filter((v) => v.status === "ready").map((v) => el("option", { value: v.name }, v.name)));
  root.replaceChildren(
    el("h3", {}, "Voices"),
    el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "name"), el("th", {}, "status"), el("th", {}, "character"), el("th", {}, "size on disk"),
      el("th", { title: "speaker similarity to the character's held-out clips (Resemblyzer cosine)" }, "similarity"),
      el("th", { title: "word error rate of Whisper tiny.en on held-out sentences" }, "WER"), el("th", { title: "DNSMOS overall, 1-5" }, "DNSMOS"))),
      el("tbody", {}, ...voices.map((v) => el("tr", { "data-voice": v.name, class: v.status === "failed" ? "failed" : "" }, el("td", {}, v.name),
        el("td", { title: (v.check?.reasons || []).join("; ") }, v.status || ""), el("td", {}, v.character || ""),
        el("td", {}, v.builtin ? `built-in (${v.base_model || "espeak-ng"})` : v.engine === "pocket" ? `voice state ${v.adapter_mb ?? 0} MB on the shared Pocket TTS model of ${v.base_mb ?? "?"} MB`
          : `adapter ${v.adapter_mb ?? 0} MB on a shared base model of ${v.base_mb ?? "?"} MB`),
        ...checkCells(v.check))))),
    ...voices.filter((v) => v.status === "failed" && v.check?.reasons?.length).map((v) =>
      el("div", { class: "row muted", "data-failed": v.name }, `${v.name} failed its voice check: ${v.check.reasons.join("; ")}`)),
    el("div", { class: "row" }, "Test: ", voiceSel, say, el("button", { id: "say-play", onclick: async () => {
      const res = await api("/v1/audio/speech", { method: "POST", body: { model: "weaver", voice: voiceSel.value, input: say.value, response_format: "wav" }, raw: true });
      const url = URL.createObjectURL(await res.blob()); const p = $("#player"); p.src = url; p.play().catch(() => {});
    } }, "▶ Say")),
    ...manage,
    el("h3", {}, "Datasets"),
    el("div", { class: "row" }, "From ", itemSel, charSel, el("button", { id: "ds-build", onclick: async () => { await api("/api/voices/datasets", { method: "POST", body: { media_id: itemSel.value, character: charSel.value } }); render(); } }, "Build dataset"),
      el("button", { id: "instant-voice", title: "clone the character's voice now with Pocket TTS (reference picked from their clips)", onclick: () => instantVoice(itemSel.value, charSel.value) }, "Instant voice"),
      el("span", { id: "instant-progress", class: "muted" }, instantLine)),
    el("table", {}, el("tbody", {}, ...datasets.map((d) => el("tr", { "data-dataset": d.id },
      el("td", {}, `#${d.id}`), el("td", {}, d.character || ""), el("td", {}, `${d.summary.kept} clips, ${(d.summary.minutes_kept || 0).toFixed(2)} min; rejected ${Object.entries(d.summary.rejected || {}).map(([k, v]) => `${k} ${v}`).join(", ") || "none"}`,
        el("div", { class: "muted ds-quality" }, datasetQuality(d.summary)), rejectedList(d.summary.rejected_clips || [])),
      el("td", { class: "muted" }, d.summary.warning || ""),
      el("td", {}, el("input", { placeholder: "voice name", size: 12, class: "voice-name" }),
        el("select", { class: "train-backend", title: "pocket-lora: a small LoRA on Pocket TTS, trains on a CPU; auto: Orpheus on an NVIDIA GPU" },
          el("option", { value: "pocket-lora" }, "Pocket fine-tune (CPU)"), el("option", { value: "auto" }, "Orpheus (GPU)")),
        el("button", { onclick: async (e) => {
          const row = e.target.parentElement, name = row.querySelector(".voice-name").value.trim(); if (!name) return;
          await api("/api/voices/train", { method: "POST", body: { name, dataset_id: d.id, backend: row.querySelector(".train-backend").value } }); render();
        } }, "Train")))))),
    el("h3", {}, "Training"),
    ...runs.map((r) => el("div", { class: "row", "data-run": r.id }, el("strong", {}, r.voice), ` ${r.state} ${Math.round((r.progress || 0) * 100)}% ${r.message || ""}`, lossCurve(r.losses),
      r.state === "running" ? el("button", { onclick: () => api(`/api/jobs/${r.job_id}/cancel`, { method: "POST" }) }, "Cancel") : "")),
  );
  loadChars();
}

function datasetQuality(s) {
  const mos = s.dnsmos_mean != null ? `DNSMOS ${s.dnsmos_mean.toFixed(2)}` : `DNSMOS ${s.dnsmos || "not scored"}`;
  return `${s.rate ? `${s.rate / 1000} kHz · ` : ""}isolated: ${s.isolation ? `${s.isolation} (kept on ${s.isolated ?? 0} of ${s.kept} clips)` : "no"} · ${mos} · speaker check: ${s.speaker_check || "not run"}`;
}

function rejectedList(clips) {
  if (!clips.length) return "";
  return el("details", { class: "ds-rejected" }, el("summary", {}, `why ${clips.length} clip(s) were left out`),
    el("ul", {}, ...clips.map((c) => el("li", {}, `${c.clip_id != null ? `clip ${c.clip_id}` : `${c.start}s`}: ${c.reason}${c.detail ? ` (${c.detail})` : ""} — ${(c.text || "").slice(0, 60)}`))));
}

registerView("voices", {
  enter() { render(); clearInterval(timer); timer = setInterval(() => { if ($("#view-voices").classList.contains("active") && document.querySelector("[data-run]")) render(); }, 3000); },
});
