// Transcript view: lines with speaker colours and character names; label speakers (rename, merge, split, reassign) with undo.
import { $, api, colorFor, el, fmt, play, registerView } from "./app.js";

async function render() {
  const id = $("#tr-item").value;
  if (!id) return;
  const [segments, speakers] = await Promise.all([api(`/api/media/${id}/segments`), api(`/api/media/${id}/speakers`)]);
  const labels = speakers.map((s) => s.speaker);
  $("#speakers").replaceChildren(...speakers.map((s) => {
    const input = el("input", { value: s.name || s.character || "", placeholder: "name", size: 10, "data-speaker": s.speaker });
    const merge = el("select", {}, el("option", { value: "" }, "merge into…"), ...labels.filter((l) => l !== s.speaker).map((l) => el("option", { value: l }, l)));
    merge.onchange = async () => { if (merge.value) { await api(`/api/media/${id}/speakers/merge`, { method: "POST", body: { source: s.speaker, target: merge.value } }); render(); } };
    return el("div", { class: "speaker", style: `border-color:${colorFor(s.speaker)}`, "data-speaker": s.speaker },
      el("strong", {}, s.speaker), " ", input, " ",
      el("button", { class: "name-speaker", onclick: async () => { await api(`/api/media/${id}/speakers/${encodeURIComponent(s.speaker)}/label`, { method: "POST", body: { name: input.value } }); render(); } }, "Name"),
      " ", merge, el("span", { class: "muted" }, ` ${s.segments.length} lines${s.match_score != null ? ` · voiceprint ${s.match_score.toFixed(2)}` : ""}`));
  }));
  $("#transcript tbody").replaceChildren(...segments.map((s) => {
    const row = el("tr", { class: "playable", "data-segment": s.id, "data-clip": s.clip_id, onclick: (e) => { if (!e.target.closest("button,input")) play(`/api/clips/${s.clip_id}/audio`); } },
      el("td", {}, `${fmt(s.start)}–${fmt(s.end)}`),
      el("td", {}, el("span", { class: "speaker", style: `border-color:${colorFor(s.speaker)}` }, s.speaker || "-")),
      el("td", { class: "character" }, s.character || "?", el("span", { class: "muted" }, s.attribution_source ? ` (${s.attribution_source})` : "")),
      el("td", {}, s.text, s.overlap ? el("span", { class: "muted" }, " [overlap]") : ""),
      el("td", { class: "actions" },
        el("button", { class: "reassign", onclick: (e) => reassignEditor(e.target.closest("td"), s) }, "Reassign"), " ",
        el("button", { class: "split", onclick: (e) => splitEditor(e.target.closest("td"), s) }, "Split")));
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

$("#tr-item").addEventListener("change", render);
$("#tr-undo").addEventListener("click", async () => { const id = $("#tr-item").value; if (id) { await api(`/api/media/${id}/undo`, { method: "POST" }); render(); } });
registerView("transcript", { enter: render });
