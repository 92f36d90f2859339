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
      el("td", {},
        el("button", { class: "reassign", onclick: async () => { const name = window.prompt("Character for this line:", s.character || ""); if (name) { await api(`/api/segments/${s.id}/reassign`, { method: "POST", body: { character: name } }); render(); } } }, "Reassign"), " ",
        el("button", { class: "split", onclick: async () => { const at = window.prompt(`Split at (seconds, ${s.start.toFixed(2)}–${s.end.toFixed(2)}):`, ((s.start + s.end) / 2).toFixed(2)); if (at) { await api(`/api/segments/${s.id}/split`, { method: "POST", body: { at: parseFloat(at) } }); render(); } } }, "Split")));
    return row;
  }));
}

$("#tr-item").addEventListener("change", render);
$("#tr-undo").addEventListener("click", async () => { const id = $("#tr-item").value; if (id) { await api(`/api/media/${id}/undo`, { method: "POST" }); render(); } });
registerView("transcript", { enter: render });
