// Voice management (part of the voices view): storage per voice and per shared base model, which personas use
// which voice, rename, delete into the trash (undo = restore), purge the trash.
import { api, el } from "./app.js";

const mb = (n) => (n == null ? "?" : `${(n / 1e6).toFixed(1)} MB`);

export async function manageSection(rerender) {
  const st = await api("/api/voices/manage/storage");
  const undo = el("div", { class: "row", id: "voice-undo" });
  const rename = async (v) => {
    const to = (prompt(`New name for voice "${v.name}"`, v.name) || "").trim();
    if (!to || to === v.name) return;
    await api("/api/voices/manage/rename", { method: "POST", body: { old: v.name, new: to } });
    rerender();
  };
  const remove = async (v) => {
    let reassign = false;
    if (v.personas.length) {
      if (!confirm(`Voice "${v.name}" is used by ${v.personas.join(", ")}. Switch them to the default voice and delete it?`)) return;
      reassign = true;
    } else if (!confirm(`Delete voice "${v.name}"? It goes to the trash; you can restore it.`)) return;
    await api("/api/voices/manage/delete", { method: "POST", body: { name: v.name, reassign } });
    await rerender();
    const u = document.getElementById("voice-undo");
    if (u) u.replaceChildren(`Voice "${v.name}" deleted. `, el("button", { id: "voice-undo-btn", onclick: async () => {
      await api("/api/voices/manage/restore", { method: "POST", body: { name: v.name } }); rerender();
    } }, "Undo"));
  };
  return [
    el("h3", {}, "Manage voices"),
    undo,
    el("table", { id: "voice-manage" }, el("thead", {}, el("tr", {}, el("th", {}, "voice"), el("th", {}, "own files"),
      el("th", {}, "base model (shared)"), el("th", {}, "personas"), el("th", {}, ""))),
      el("tbody", {}, ...st.voices.map((v) => el("tr", { "data-manage": v.name }, el("td", {}, v.name),
        el("td", { title: `voice ${mb(v.voice_bytes)}, training files ${mb(v.training_bytes)}` }, mb(v.bytes)),
        el("td", {}, `${v.base_model || ""} ${mb((st.bases.find((b) => b.base_model === v.base_model) || {}).bytes)}`),
        el("td", { class: "personas" }, v.personas.join(", ") || "-"),
        el("td", {}, el("button", { class: "voice-rename", onclick: () => rename(v) }, "Rename"),
          el("button", { class: "voice-delete", onclick: () => remove(v) }, "Delete")))))),
    el("div", { class: "row muted", id: "voice-bases" }, st.bases.map((b) => `base ${b.base_model}: ${mb(b.bytes)}, shared by ${b.voices.join(", ")}`).join("; ")
      + (st.default_personas.length ? ` · default voice: ${st.default_personas.join(", ")}` : "")),
    el("div", { class: "row", id: "voice-trash" }, `Trash: ${st.trash.length} voice(s), ${mb(st.trash_bytes)} `,
      ...st.trash.map((t) => el("button", { class: "voice-restore", "data-trash": t.name, onclick: async () => {
        await api("/api/voices/manage/restore", { method: "POST", body: { name: t.name } }); rerender();
      } }, `Restore ${t.name}`)),
      st.trash.length ? el("button", { id: "voice-purge", onclick: async () => {
        if (confirm(`Delete ${st.trash.length} voice(s) in the trash for good?`)) { await api("/api/voices/manage/purge", { method: "POST", body: {} }); rerender(); }
      } }, "Empty trash") : ""),
  ];
}
