// Transcript view: lines with speaker colours and character names; label speakers (rename, merge, split, reassign),
// edit a line's text and join two lines, with undo; pick a subtitle file's encoding when its detection was unsure;
// say what the subtitle sync found.
import { $, api, colorFor, el, fmt, play, registerView } from "./app.js";

let speakersNote = "";  // what the last naming or merge left as it was, shown once under the speakers

function keptNote(res) {
  speakersNote = res && res.kept ? `${res.kept} line${res.kept === 1 ? "" : "s"} kept the name an SDH label or the screenplay gives ${res.kept === 1 ? "it" : "them"} (Reassign to change)` : "";
}

async function render() {
  const id = $("#tr-item").value;
  if (!id) return;
  const [segments, speakers] = await Promise.all([api(`/api/media/${id}/segments`), api(`/api/media/${id}/speakers`)]);
  const labels = speakers.map((s) => s.speaker);
  $("#speakers").replaceChildren(...speakers.map((s) => {
    const input = el("input", { value: s.name || s.character || "", placeholder: "name", size: 10, "data-speaker": s.speaker });
    const merge = el("select", {}, el("option", { value: "" }, "merge into…"), ...labels.filter((l) => l !== s.speaker).map((l) => el("option", { value: l }, l)));
    merge.onchange = async () => { if (merge.value) { keptNote(await api(`/api/media/${id}/speakers/merge`, { method: "POST", body: { source: s.speaker, target: merge.value } })); render(); } };
    return el("div", { class: "speaker", style: `border-color:${colorFor(s.speaker)}`, "data-speaker": s.speaker },
      el("strong", {}, s.speaker), " ", input, " ",
      el("button", { class: "name-speaker", onclick: async () => { keptNote(await api(`/api/media/${id}/speakers/${encodeURIComponent(s.speaker)}/label`, { method: "POST", body: { name: input.value } })); render(); } }, "Name"),
      " ", merge, el("span", { class: "muted" }, ` ${s.segments.length} lines${s.match_score != null ? ` · voiceprint ${s.match_score.toFixed(2)}` : ""}`));
  }), ...(speakersNote ? [el("p", { class: "muted speakers-note" }, speakersNote)] : []));
  speakersNote = "";
  encodingBanner(id);
  sourcesPanel(id);
  $("#transcript tbody").replaceChildren(...segments.map((s, i) => {
    const next = segments[i + 1];
    const row = el("tr", { class: "playable", "data-segment": s.id, "data-clip": s.clip_id, onclick: (e) => { if (!e.target.closest("button,input")) play(`/api/clips/${s.clip_id}/audio`); } },
      el("td", {}, `${fmt(s.start)}–${fmt(s.end)}`),
      el("td", {}, el("span", { class: "speaker", style: `border-color:${colorFor(s.speaker)}` }, s.speaker || "-")),
      el("td", { class: "character" }, s.character || "?", el("span", { class: "muted" }, s.attribution_source ? ` (${s.attribution_source})` : "")),
      el("td", { class: "text" }, el("span", { class: "line-text" }, s.text), s.user_text ? el("span", { class: "muted edited" }, " [edited]") : "",
        s.overlap ? el("span", { class: "muted" }, " [overlap]") : "",
        s.check_text ? el("span", { class: "check-text", title: "no written text matched the audio well: check the words (Edit)" }, " [check text]") : "",
        s.text_source && !s.user_text ? el("span", { class: "muted text-source", title: s.text_score != null ? `match with the audio ${s.text_score.toFixed(2)}` : "not scored" }, ` · ${s.text_source}`) : ""),
      el("td", { class: "actions" },
        el("button", { class: "reassign", onclick: (e) => reassignEditor(e.target.closest("td"), s) }, "Reassign"), " ",
        el("button", { class: "split", onclick: (e) => splitEditor(e.target.closest("td"), s) }, "Split"), " ",
        el("button", { class: "edit-text", onclick: (e) => textEditor(e.target.closest("td"), s) }, "Edit"), " ",
        next ? el("button", { class: "join", title: "join with the next line", onclick: (e) => joinEditor(e.target.closest("td"), s, next) }, "Join ↓") : ""));
    return row;
  }));
  const names = await api(`/api/media/${id}/characters`);
  $("#tr-characters").replaceChildren(...names.map((c) => el("option", { value: c.name })));
}

// An inline editor in a row's action cell: Enter or OK applies, Escape or Cancel puts the buttons back.
function inlineEditor(cell, input, apply) {
  const error = el("span", { class: "inline-error" });
  const ok = async () => {
    try { error.textContent = ""; await apply(input.value); render(); }
    catch (e) { error.textContent = e.message; input.focus(); }
  };
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") ok(); else if (e.key === "Escape") render(); });
  cell.replaceChildren(input, " ", el("button", { class: "ok", onclick: ok }, "OK"), " ",
    el("button", { class: "cancel", onclick: () => render() }, "Cancel"), " ", error);
  input.focus();
  input.select();
}

function reassignEditor(cell, s) {
  const input = el("input", { class: "reassign-name", list: "tr-characters", value: s.character || "", placeholder: "character", size: 12 });
  inlineEditor(cell, input, async (name) => {
    if (!name.trim()) throw new Error("type a character name");
    await api(`/api/segments/${s.id}/reassign`, { method: "POST", body: { character: name.trim() } });
  });
}

function splitEditor(cell, s) {
  const input = el("input", { class: "split-at", type: "number", step: "0.01", min: s.start.toFixed(2), max: s.end.toFixed(2),
    value: ((s.start + s.end) / 2).toFixed(2), title: `seconds, inside ${s.start.toFixed(2)}–${s.end.toFixed(2)}` });
  inlineEditor(cell, input, async (value) => {
    const at = parseFloat(value);
    if (!(at > s.start && at < s.end)) throw new Error(`pick a time inside ${s.start.toFixed(2)}–${s.end.toFixed(2)} s`);
    await api(`/api/segments/${s.id}/split`, { method: "POST", body: { at } });
  });
}

function textEditor(cell, s) {
  const input = el("input", { class: "line-text-input", value: s.text, size: 40, title: "the words actually spoken" });
  inlineEditor(cell, input, async (text) => {
    if (!text.trim()) throw new Error("a line needs some text (reject its clip to leave it out)");
    await api(`/api/segments/${s.id}/text`, { method: "POST", body: { text: text.trim() } });
  });
}

function joinEditor(cell, s, next) {
  const other = (s.character || "") !== (next.character || "");
  const force = el("input", { type: "checkbox", class: "join-force" });
  const error = el("span", { class: "inline-error" });
  const ok = async () => {
    try {
      error.textContent = "";
      if (other && !force.checked) throw new Error(`the next line is ${next.character || "unattributed"}'s: tick “join anyway” to join lines of two characters`);
      await api(`/api/segments/${s.id}/join`, { method: "POST", body: { next: next.id, force: other && force.checked } });
      render();
    } catch (e) { error.textContent = e.message; }
  };
  cell.replaceChildren(el("span", { class: "muted" }, `join with “${next.text.slice(0, 40)}”`), " ",
    other ? el("label", {}, force, " join anyway (other character)") : "", " ",
    el("button", { class: "ok", onclick: ok }, "OK"), " ", el("button", { class: "cancel", onclick: () => render() }, "Cancel"), " ", error);
}

let sourcesMessage = { id: null, text: "" };  // what the last change of an item did (kept across the re-render)

// Call back once a job has finished (done, failed or cancelled), checking every second.
function whenDone(jobId, then) {
  const check = async () => {
    const job = await api(`/api/jobs/${jobId}`).catch(() => null);
    if (job && ["done", "failed", "cancelled"].includes(job.state)) then(job); else setTimeout(check, 1000);
  };
  setTimeout(check, 1000);
}

// Subtitles & screenplay of the item: the tracks (which one the lines come from), add or swap in a subtitle file,
// attach or detach a screenplay. A change is applied by analysing the item again (edits are carried over).
async function sourcesPanel(id) {
  let box = $("#tr-sources");
  if (!box) { box = el("details", { id: "tr-sources", class: "row" }); $("#transcript").before(box); }
  const open = box.open;
  const [tracks, item] = await Promise.all([api(`/api/media/${id}/subtitle-tracks`), api(`/api/media/${id}`)]);
  const note = el("span", { class: "muted sources-note" }, sourcesMessage.id === id ? sourcesMessage.text : "");
  const error = el("span", { class: "inline-error" });
  const act = async (fn, what) => {
    error.textContent = ""; sourcesMessage = { id: null, text: "" };
    try {
      const r = await fn();
      note.textContent = r.job_id ? `${what}: analysing again (job ${r.job_id}); your edits are kept` : what;
      if (r.job_id) whenDone(r.job_id, (job) => {
        sourcesMessage = { id, text: job.state === "done" ? `${what}: analysed again (job ${r.job_id})` : `job ${r.job_id} ${job.state}: ${job.error || ""}` };
        render();
      });
      else sourcesPanel(id);
    } catch (e) { error.textContent = e.message; }
  };
  const rows = tracks.map((t) => el("li", { "data-track": t.id },
    t.is_primary ? el("strong", {}, "● ") : "", `${t.path ? t.path.split("/").pop() : `embedded stream ${t.stream_index}`} · ${t.format || ""} ${t.encoding || ""} · ${t.lines} lines `,
    t.is_primary ? el("span", { class: "muted" }, "(the lines come from this track)") : el("span", {},
      el("button", { class: "track-primary", onclick: () => act(() => api(`/api/subtitle-tracks/${t.id}/primary`, { method: "POST" }), "primary track changed") }, "Use"), " ",
      el("button", { class: "track-rm", onclick: () => act(async () => { const r = await api(`/api/subtitle-tracks/${t.id}`, { method: "DELETE" }); sourcesPanel(id); return r; }, "track removed") }, "Remove"))));
  const subPath = el("input", { class: "subs-path", placeholder: "subtitle file (.srt, .ass, .vtt…)", size: 40 });
  const asExtra = el("input", { type: "checkbox", class: "subs-extra" });
  const scriptPath = el("input", { class: "script-path", placeholder: "screenplay file, or a script id", size: 40, value: item.script_id || "" });
  box.replaceChildren(el("summary", {}, `Subtitles & screenplay (${tracks.length} track${tracks.length === 1 ? "" : "s"}${item.script_id ? ", screenplay attached" : ""})`),
    el("ul", { class: "tracks" }, ...rows),
    el("div", { class: "row" }, subPath, " ", el("label", {}, asExtra, " keep the current track primary"), " ",
      el("button", { class: "subs-add", onclick: () => act(() => api(`/api/media/${id}/subtitle-tracks`, { method: "POST", body: { path: subPath.value.trim(), primary: !asExtra.checked } }), "subtitles added") }, "Add subtitles")),
    el("div", { class: "row" }, scriptPath, " ",
      el("button", { class: "script-attach", onclick: () => act(() => api(`/api/media/${id}/script`, { method: "POST", body: { script: scriptPath.value.trim() } }), "screenplay attached") }, "Attach screenplay"), " ",
      item.script_id ? el("button", { class: "script-detach", onclick: () => act(() => api(`/api/media/${id}/script`, { method: "POST", body: { script: null } }), "screenplay detached") }, "Detach") : ""),
    note, " ", error);
  box.open = open;
}

// Where the subtitle file's encoding was a close call, show how it reads and let the user pick another reading.
async function encodingBanner(id) {
  let box = $("#tr-encoding");
  if (!box) { box = el("div", { id: "tr-encoding", class: "row" }); $("#transcript").before(box); }
  const item = await api(`/api/media/${id}`);
  syncNote(item);
  const track = (item.subtitle_tracks || []).find((t) => t.is_primary && t.encoding_unsure);
  if (!track) { box.hidden = true; box.replaceChildren(); return; }
  const cands = track.encoding_info.candidates || [];
  const sample = el("pre", { class: "encoding-sample" }, cands[0] ? cands[0].sample : "");
  const pick = el("select", { class: "encoding-pick" }, ...cands.map((c) => el("option", { value: c.encoding }, `${c.encoding}: ${c.sample.split("\n")[0].slice(0, 60)}`)));
  pick.onchange = () => { sample.textContent = (cands.find((c) => c.encoding === pick.value) || {}).sample || ""; };
  const error = el("span", { class: "inline-error" });
  const use = el("button", { class: "encoding-use", onclick: async () => {
    try { await api(`/api/subtitle-tracks/${track.id}/encoding`, { method: "POST", body: { encoding: pick.value } }); render(); }
    catch (e) { error.textContent = e.message; }
  } }, "Use this encoding");
  box.hidden = false;
  box.replaceChildren(el("strong", {}, `Subtitle encoding unsure (read as ${track.encoding}).`), " Which reading is right? ", pick, " ", use, " ", error, sample);
}

// What the subtitle sync found for the primary track: "Subtitle sync: shifted −2.3 s, 25→23.976 fps, 2 sections".
function syncNote(item) {
  let box = $("#tr-sync");
  if (!box) { box = el("div", { id: "tr-sync", class: "row muted" }); $("#transcript").before(box); }
  const track = (item.subtitle_tracks || []).find((t) => t.is_primary && t.sync && t.sync.summary);
  box.hidden = !track;
  box.replaceChildren(...(track ? [el("strong", {}, "Subtitle sync: "), track.sync.summary] : []));
  box.title = track ? track.sync.description || "" : "";
}

$("#tr-item").addEventListener("change", render);
$("#tr-undo").addEventListener("click", async () => { const id = $("#tr-item").value; if (id) { await api(`/api/media/${id}/undo`, { method: "POST" }); render(); } });
registerView("transcript", { enter: render });
