// Chat: the persona gallery (avatars = the character's best frame), card import, the persona editor
// (prompt, greeting, example lines, model, voice, generation controls) and conversation export links.
import { $, api, el } from "./app.js";

const token = () => encodeURIComponent(sessionStorage.getItem("weaver_token") || "");
const CONTROLS = [  // [key, label, step, min, max]
  ["max_tokens", "max tokens", 1, 1, 8192], ["max_chars", "length (chars)", 10, 0, 100000],
  ["temperature", "temperature", 0.05, 0, 2], ["top_p", "top-p", 0.05, 0, 1], ["repeat_penalty", "repetition penalty", 0.05, 0.5, 2],
];

export async function renderGallery(onOpen) {
  const box = $("#chat-gallery");
  if (!box) return;
  const rows = await api("/api/chat/gallery");
  box.replaceChildren(...rows.map((p) => el("li", { class: "persona-card", "data-id": p.id, title: p.source_title || "", onclick: () => onOpen(p) },
    p.has_avatar ? el("img", { src: `/api/chat/personas/${p.id}/avatar?token=${token()}&v=${p.updated_at || ""}`, alt: p.name })
      : el("div", { class: "avatar-none" }, (p.name || "?").slice(0, 1)),
    el("div", {}, el("strong", {}, p.name)), el("div", { class: "muted" }, `${p.conversations} conversation${p.conversations === 1 ? "" : "s"}`))));
}

export function importCardControl(onImported) {
  const input = el("input", { type: "file", id: "card-file", accept: ".png,.json,image/png,application/json", hidden: true });
  input.onchange = async () => {
    const f = input.files[0];
    if (!f) return;
    const p = await api("/api/chat/personas/import", { method: "POST", body: f });
    $("#card-note").textContent = ` ${p.updated ? "updated" : "imported"} ${p.name}`;
    input.value = "";
    onImported(p);
  };
  return el("span", {}, input, el("button", { id: "card-import", onclick: () => input.click() }, "Import card…"), el("span", { id: "card-note", class: "muted" }));
}

export function personaEditor(voices, getPersona, setPersona) {
  const num = ([key, label, step, min, max]) => el("label", {}, `${label} `, el("input", { id: `persona-${key}`, type: "number", step, min, max, style: "width:6em" }));
  const save = async () => {
    const p = getPersona();
    if (!p) return;
    const body = {
      system_prompt: $("#persona-prompt").value, greeting: $("#persona-greeting").value,
      example_lines: $("#persona-examples").value.split("\n").map((s) => s.trim()).filter(Boolean),
      model: $("#persona-model").value || null, voice: $("#persona-voice").value, stop: $("#persona-stop").value,
    };
    for (const [key] of CONTROLS) { const v = $(`#persona-${key}`).value; if (v !== "") body[key] = parseFloat(v); }
    setPersona(await api(`/api/chat/personas/${p.id}`, { method: "PUT", body }));
    $("#persona-note").textContent = " saved";
  };
  return el("details", { id: "persona-editor" }, el("summary", {}, "Persona (prompt, greeting, example lines, model, voice, generation)"),
    el("label", { class: "block" }, "System prompt", el("textarea", { id: "persona-prompt", rows: 6, cols: 90 })),
    el("label", { class: "block" }, "Greeting (first message of a new conversation)", el("textarea", { id: "persona-greeting", rows: 2, cols: 90 })),
    el("label", { class: "block" }, "Example lines (the character's own lines, one per line)", el("textarea", { id: "persona-examples", rows: 5, cols: 90 })),
    el("div", { class: "row" },
      el("label", {}, "model ", el("input", { id: "persona-model", size: 20, placeholder: "default" })), " ",
      el("label", {}, "voice ", el("select", { id: "persona-voice" }, ...voices.map((v) => el("option", { value: v.name }, v.name))))),
    el("div", { class: "row" }, ...CONTROLS.map(num).flatMap((n) => [n, " "]),
      el("label", {}, "stop strings ", el("input", { id: "persona-stop", size: 16, placeholder: "a|b" }))),
    el("button", { id: "persona-save", onclick: save }, "Save persona"), el("span", { id: "persona-note", class: "muted" }), " ",
    el("a", { href: "#", onclick: (e) => { e.preventDefault(); const p = getPersona(); if (p) window.open(`/api/chat/personas/${p.id}/card?format=png&token=${token()}`); } }, "export card (PNG)"), " ",
    el("a", { href: "#", onclick: (e) => { e.preventDefault(); const p = getPersona(); if (p) window.open(`/api/chat/personas/${p.id}/card?format=json&token=${token()}`); } }, "(JSON)"));
}

let defaults = {};
export async function loadDefaults() { defaults = await api("/api/chat/generation-defaults"); }

export function fillEditor(p) {
  if (!$("#persona-prompt")) return;
  const o = p.options || {};
  $("#persona-prompt").value = p.system_prompt || "";
  $("#persona-greeting").value = p.greeting || "";
  $("#persona-examples").value = (p.example_lines || []).join("\n");
  $("#persona-model").value = p.model || "";
  $("#persona-voice").value = p.voice || "default";
  $("#persona-stop").value = (o.stop || []).join("|");
  const eff = { ...defaults, ...o, temperature: o.temperature ?? p.temperature };
  for (const [key] of CONTROLS) $(`#persona-${key}`).value = eff[key] ?? "";
  $("#persona-note").textContent = "";
}

export function exportLinks(getConversation) {
  const link = (fmt, label) => el("a", { href: "#", class: `export-${fmt}`, onclick: (e) => { e.preventDefault(); const c = getConversation(); if (c) window.open(`/api/chat/conversations/${c}/export?format=${fmt}&token=${token()}`); } }, label);
  return el("span", { id: "chat-export", class: "muted" }, "export: ", link("txt", "text"), " · ", link("json", "JSON"), " · ", link("wav", "audio"));
}
