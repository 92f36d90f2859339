// Known voices (voiceprints) under the Characters view: each with its kind (auto from a screenplay/SDH, named by
// you, or enrolled from a file) and the recordings it came from; rename, merge into another, delete.
import { $, api, el } from "./app.js";

function came(r) {
  if (r.media_id != null) return `item ${r.media_id}${r.title ? ` ${r.title}` : ""}${r.speaker ? ` (${r.speaker})` : ""}`;
  return r.path || "a deleted item";
}

export async function renderVoiceprints() {
  const root = $("#voiceprints");
  if (!root) return;
  const rows = await api("/api/voiceprints");
  const body = rows.map((v) => {
    const name = el("input", { value: v.name, size: 14, "data-vp-name": v.id });
    const into = el("select", { "data-vp-into": v.id }, el("option", { value: "" }, "merge into…"),
      ...rows.filter((o) => o.id !== v.id).map((o) => el("option", { value: o.id }, `${o.id}: ${o.name}`)));
    into.onchange = async () => { if (into.value) { await api(`/api/voiceprints/${v.id}/merge`, { method: "POST", body: { into: Number(into.value) } }); renderVoiceprints(); } };
    return el("tr", { "data-voiceprint": v.id },
      el("td", {}, String(v.id)),
      el("td", {}, name, el("button", { "data-vp-rename": v.id, onclick: async () => { await api(`/api/voiceprints/${v.id}`, { method: "PATCH", body: { name: name.value } }); renderVoiceprints(); } }, "Rename")),
      el("td", { class: `vp-${v.source}` }, v.source || ""),
      el("td", { class: "vp-from" }, v.recordings.map(came).join(", ")),
      el("td", {}, into, el("button", { "data-vp-delete": v.id, onclick: async () => { await api(`/api/voiceprints/${v.id}`, { method: "DELETE" }); renderVoiceprints(); } }, "Delete")));
  });
  root.replaceChildren(
    el("h3", {}, "Known voices"),
    rows.length ? el("table", { id: "voiceprint-table" },
      el("thead", {}, el("tr", {}, el("th", {}, "#"), el("th", {}, "name"), el("th", { title: "auto: from a screenplay/SDH; named: you named a speaker; file: enrolled from audio" }, "kind"), el("th", {}, "from"), el("th", {}, ""))),
      el("tbody", {}, ...body))
      : el("p", { class: "muted" }, "No known voices yet: import a movie with a screenplay or SDH subtitles, or name a speaker."));
}

document.querySelector('#tabs button[data-view="characters"]')?.addEventListener("click", () => renderVoiceprints());
if ((location.hash || "").slice(1) === "characters") renderVoiceprints();
