// Voice Weaver panel: plain ES module, no build step. Talks to the local API with the launch token.
const params = new URLSearchParams(location.search);
const TOKEN = params.get("token") || sessionStorage.getItem("weaver_token") || "";
if (TOKEN) sessionStorage.setItem("weaver_token", TOKEN);
if (params.has("token")) {  // the page's response set the token cookie: take the token out of the address bar
  params.delete("token");
  const rest = params.toString();
  history.replaceState(history.state, "", location.pathname + (rest ? `?${rest}` : "") + location.hash);
}

export async function api(path, { method = "GET", body, raw } = {}) {
  const headers = { Authorization: `Bearer ${TOKEN}` };
  let payload = body;
  if (body !== undefined && !(body instanceof Blob) && !(body instanceof File)) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const res = await fetch(path, { method, headers, body: payload });
  if (!res.ok) {
    let msg = `${res.status}`;
    try { msg = (await res.json()).error || msg; } catch (_) {}
    showError(msg);
    throw new Error(msg);
  }
  if (raw) return res;
  const type = res.headers.get("content-type") || "";
  return type.includes("json") ? res.json() : res.text();
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const el = (tag, attrs = {}, ...kids) => {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
    else if (k === "class") n.className = v;
    else if (v !== undefined && v !== null && v !== false) n.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) n.append(kid instanceof Node ? kid : document.createTextNode(kid ?? ""));
  return n;
};
export function showError(msg) {
  const box = $("#error");
  box.textContent = msg;
  box.hidden = false;
  clearTimeout(showError.t);
  showError.t = setTimeout(() => (box.hidden = true), 8000);
}
export const fmt = (t) => {
  if (t === null || t === undefined) return "-";
  const m = Math.floor(t / 60), s = (t - m * 60).toFixed(2).padStart(5, "0");
  return `${String(m).padStart(2, "0")}:${s}`;
};
const COLORS = ["#6aa9ff", "#ffb86a", "#6adf8a", "#ff6ac1", "#c08aff", "#ffe36a", "#6ae0e0", "#ff8a6a"];
export const colorFor = (label) => COLORS[Math.abs([...String(label || "")].reduce((a, c) => a * 31 + c.charCodeAt(0), 7)) % COLORS.length];

// ---- views -------------------------------------------------------------------------------
const views = {};
let currentView = null;
// View modules load after this one (they import it), so a view may register after show() picked it
// (e.g. a reload on #transcript): enter it then.
export function registerView(name, hooks) { views[name] = hooks; if (currentView === name) hooks.enter?.(); }
export function show(name) {
  if (currentView !== name) { $("#error").hidden = true; clearTimeout(showError.t); }  // a view's banner goes with it
  currentView = name;
  document.querySelectorAll(".view").forEach((v) => v.classList.toggle("active", v.id === `view-${name}`));
  document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.view === name));
  location.hash = name;
  views[name]?.enter?.();
}
document.querySelectorAll("#tabs button").forEach((b) => b.addEventListener("click", () => show(b.dataset.view)));
document.addEventListener("click", (e) => { const g = e.target.closest("[data-goto]"); if (g) { e.preventDefault(); show(g.dataset.goto); } });

// ---- audio ----------------------------------------------------------------------------------
export function play(url) {
  const p = $("#player");
  p.src = url + (url.includes("?") ? "&" : "?") + `token=${encodeURIComponent(TOKEN)}`;
  p.play().catch(() => {});
  window.__lastPlayed = url;
}

// ---- library ------------------------------------------------------------------------------
let mediaCache = [];
export async function refreshMedia() {
  mediaCache = await api("/api/media");
  const body = $("#media tbody");
  body.replaceChildren(...mediaCache.map((m) => el("tr", { "data-id": m.id },
    el("td", {}, m.id), el("td", {}, m.title), el("td", {}, m.kind), el("td", {}, fmt(m.duration)), el("td", {}, m.segments),
    el("td", {},
      el("button", { onclick: () => openItem("characters", m.id) }, "Characters"), " ",
      el("button", { onclick: () => openItem("transcript", m.id) }, "Transcript"), " ",
      el("button", { onclick: async () => { if (confirm(`Remove "${m.title}" and its files?`)) { await api(`/api/media/${m.id}`, { method: "DELETE" }); refreshMedia(); } } }, "Remove")))));
  for (const sel of ["#tr-item", "#ch-item"]) {
    const s = $(sel), cur = s.value;
    s.replaceChildren(...mediaCache.map((m) => el("option", { value: m.id }, `${m.id}: ${m.title}`)));
    if (cur) s.value = cur;
  }
  return mediaCache;
}
export function openItem(view, id) {
  $(view === "characters" ? "#ch-item" : "#tr-item").value = id;
  show(view);
}
registerView("library", { enter: refreshMedia });

async function importPath(path) {
  const body = { path, subtitles: $("#import-subs").value || null, script: $("#import-script").value || null };
  const r = await api("/api/media", { method: "POST", body });
  return r.job_id;
}
$("#import-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const path = $("#import-path").value.trim();
  if (path) { await importPath(path); e.target.reset(); }  // the job row now shows the import
});
async function uploadAndImport(file) {
  const r = await api(`/api/upload?name=${encodeURIComponent(file.name)}`, { method: "POST", body: file });
  return importPath(r.path);
}
$("#file-input").addEventListener("change", (e) => { const f = e.target.files[0]; if (f) uploadAndImport(f); });
const dz = $("#dropzone");
dz.addEventListener("dragover", (e) => { e.preventDefault(); dz.classList.add("over"); });
dz.addEventListener("dragleave", () => dz.classList.remove("over"));
dz.addEventListener("drop", (e) => { e.preventDefault(); dz.classList.remove("over"); const f = e.dataTransfer.files[0]; if (f) uploadAndImport(f); });

// ---- jobs (server-sent events) ------------------------------------------------------------
let lastDone = new Set();
function renderJobs(jobs) {
  $("#jobs tbody").replaceChildren(...jobs.map((j) => el("tr", { "data-job": j.id, "data-state": j.state },
    el("td", {}, j.id), el("td", {}, j.kind), el("td", { class: "state" }, j.state), el("td", {}, `${j.stage || ""} ${j.message ? "· " + j.message : ""}`),
    el("td", {}, el("div", { class: "progress" }, el("div", { style: `width:${Math.round((j.progress || 0) * 100)}%` })), ` ${Math.round((j.progress || 0) * 100)}%`),
    el("td", {}, j.eta && j.state === "running" ? `${Math.round(j.eta)} s` : ""),
    el("td", {}, ["queued", "running"].includes(j.state) ? el("button", { onclick: () => api(`/api/jobs/${j.id}/cancel`, { method: "POST" }) }, "Cancel") : (j.error ? el("span", { class: "muted" }, j.error) : "")))));
  const running = jobs.filter((j) => ["queued", "running", "cancelling"].includes(j.state));
  $("#jobs-indicator").textContent = running.length ? `⏳ ${running[0].stage || running[0].kind} ${Math.round(running[0].progress * 100)}%` : "";
  const done = new Set(jobs.filter((j) => j.state === "done").map((j) => j.id));
  if ([...done].some((id) => !lastDone.has(id))) refreshMedia();
  lastDone = done;
}
function connectEvents() {
  const es = new EventSource(`/api/events?token=${encodeURIComponent(TOKEN)}`);
  es.addEventListener("jobs", (e) => renderJobs(JSON.parse(e.data)));
  es.onerror = () => { es.close(); setTimeout(connectEvents, 2000); };
}

// ---- settings -----------------------------------------------------------------------------
// The chat-model select: every model the providers found (the packaged SmolLM2 first), the current one selected.
// An option's value is the settings it writes: chat_provider + chat_model (servers) or chat_model_path (GGUF files).
async function fillChatModels(s) {
  const select = $("#set-chat-model");
  let rows = [];
  try { rows = await api("/api/chat/models"); } catch (e) { $("#set-chat-note").textContent = ` ${e.message || e}`; }
  const choices = [];
  const add = (group, label, value) => choices.push({ group, label, value: JSON.stringify(value) });
  const notes = [];
  for (const p of rows) {
    if (!p.reachable) { notes.push(`${p.label}: ${p.message}`); continue; }
    for (const m of p.models) {
      if (p.provider === "embedded") add(p.label, `${m.name} (local GGUF)`, { chat_provider: "embedded", chat_model: null, chat_model_path: m.path });
      else add(p.label, m.name, { chat_provider: p.provider, chat_model: m.name });
    }
  }
  const current = choices.find((c) => {
    const v = JSON.parse(c.value);
    return v.chat_provider === s.chat_provider && (v.chat_provider === "embedded" ? (!s.chat_model_path || v.chat_model_path === s.chat_model_path) : v.chat_model === s.chat_model);
  });
  const groups = {};
  for (const c of choices) (groups[c.group] ||= []).push(el("option", { value: c.value, selected: c === current }, c.label));
  select.replaceChildren(...(current ? [] : [el("option", { value: "", selected: true }, s.chat_model || s.chat_model_path || "(unchanged)")]),
    ...Object.entries(groups).map(([label, opts]) => el("optgroup", { label }, ...opts)));
  select.title = notes.join("\n");
  if (!choices.length) $("#set-chat-note").textContent = " no chat model found: " + notes.join("; ");
}

registerView("settings", {
  async enter() {
    const s = await api("/api/settings");
    const form = $("#settings-form");
    form.replaceChildren(
      el("label", {}, el("input", { type: "checkbox", id: "set-cloud", checked: s.cloud_enabled }), " allow cloud adapters (off keeps everything on this machine)"), el("br"),
      el("label", {}, "ASR model ", el("input", { id: "set-asr", value: s.asr_model })), el("br"),
      el("label", {}, "Dialogue channel ", el("select", { id: "set-channel" }, ...["auto", "centre", "mix"].map((v) => el("option", { value: v, selected: v === s.channel_mode }, v)))), el("br"),
      el("label", {}, "Ollama host ", el("input", { id: "set-ollama", value: s.ollama_host, size: 30 })), el("br"),
      el("label", {}, "Chat model ", el("select", { id: "set-chat-model" }, el("option", { value: "" }, "looking for models…"))),
      el("span", { id: "set-chat-note", class: "muted" }), el("br"),
      el("button", { type: "button", id: "set-save", onclick: async () => {
        const body = { cloud_enabled: $("#set-cloud").checked, asr_model: $("#set-asr").value, channel_mode: $("#set-channel").value, ollama_host: $("#set-ollama").value };
        const choice = $("#set-chat-model").value;
        if (choice) Object.assign(body, JSON.parse(choice));
        await api("/api/settings", { method: "PUT", body });
        $("#set-chat-note").textContent = " saved";
      } }, "Save"));
    fillChatModels(s);
    const models = await api("/api/models");
    $("#models tbody").replaceChildren(...models.map((m) => el("tr", {}, el("td", {}, m.stage), el("td", {}, m.backend + (m.offline ? " (offline)" : "")),
      el("td", {}, m.available ? "ready" : "missing"), el("td", { class: "muted" }, m.available ? "" : ((x) => x ? x.fetch_command + (x.size_mb ? ` (≈${x.size_mb} MB)` : "") : m.fix || m.reason)(m.models.find((x) => !x.present))))));
  },
});

// ---- first-run notice ---------------------------------------------------------------------
async function notice() {
  const s = await api("/api/settings");
  if (!s.notice_accepted) {
    $("#notice").hidden = false;
    $("#notice-ok").onclick = async () => { await api("/api/settings", { method: "PUT", body: { notice_accepted: true } }); $("#notice").hidden = true; };
  }
}

// ---- start ----------------------------------------------------------------------------------
// (not awaited here: they import this module, whose evaluation would then wait for itself)
const viewModules = ["./transcript.js", "./characters.js", "./capture.js", "./voices.js", "./chat.js", "./voiceprints.js"].map((m) =>
  import(m).catch((e) => { if (!["./voices.js", "./chat.js"].includes(m)) console.error(`${m}: ${e}`); }));
connectEvents();
notice();
await refreshMedia();
show((location.hash || "#library").slice(1) || "library");
Promise.all(viewModules).then(() => { window.weaverReady = true; });
