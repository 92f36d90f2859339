// Chat view (also the tray's Quick chat window: #chat?quick=1): persona, streamed reply, voice, push-to-talk.
import { $, api, el, registerView } from "./app.js";
import { HandsFree, holdToTalk } from "./chat_voice.js";

const state = { persona: null, conversation: null, audioQueue: [], playing: false, recorder: null };
const quick = location.hash.includes("quick=1");
const handsFreeAtStart = location.hash.includes("handsfree=1"); // the tray's Quick chat opens hands-free

function playNext() {
  if (state.playing || !state.audioQueue.length) return;
  state.playing = true;
  const audio = new Audio(`data:audio/wav;base64,${state.audioQueue.shift()}`);
  state.audio = audio;
  audio.onended = audio.onerror = () => { state.playing = false; state.audio = null; playNext(); };
  audio.play().catch(() => { state.playing = false; });
}

async function streamSend(text, speak, onEvent) {
  const res = await fetch(`/api/chat/conversations/${state.conversation}/send`, {
    method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${sessionStorage.getItem("weaver_token") || ""}` },
    body: JSON.stringify({ text, speak }), signal: state.abort?.signal,
  });
  if (!res.ok) { let m = `${res.status}`; try { m = (await res.json()).error; } catch (_) {} throw new Error(m); }
  const reader = res.body.getReader(), dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i); buf = buf.slice(i + 2);
      const ev = /event: (\w+)/.exec(block)?.[1], data = /data: (.*)/s.exec(block)?.[1];
      if (ev && data) onEvent(ev, JSON.parse(data));
    }
  }
}

function addMessage(role, text, cls = "") {
  const m = el("div", { class: `msg ${role} ${cls}` }, el("strong", {}, role === "user" ? "You: " : `${state.persona?.name || "?"}: `), el("span", { class: "text" }, text));
  $("#chat-log").append(m);
  $("#chat-log").scrollTop = 1e9;
  return m;
}

async function openPersona(p) {
  state.persona = p;
  state.conversation = (await api(`/api/chat/personas/${p.id}/conversations`, { method: "POST" })).id;
  $("#chat-log").replaceChildren();
  for (const m of await api(`/api/chat/conversations/${state.conversation}`)) addMessage(m.role, m.content, m.partial ? "partial" : "");
  $("#persona-prompt").value = p.system_prompt;
  $("#persona-model").value = p.model || "";
  $("#persona-temp").value = p.temperature;
  $("#persona-voice").value = p.voice || "default";
}

// Barge-in: silence the voice now and drop the reply being generated (closing the stream cancels it on the server).
export function stopReplyAudio() {
  state.audioQueue.length = 0;
  if (state.audio) { state.audio.pause(); state.audio = null; }
  state.playing = false;
  state.abort?.abort();
}

async function send(text) {
  if (!text.trim() || !state.conversation) return;
  state.abort?.abort();
  const abort = state.abort = new AbortController();
  addMessage("user", text);
  const reply = addMessage("assistant", "");
  const span = reply.querySelector(".text");
  try {
    await streamSend(text, $("#chat-speak").checked, (ev, data) => {
      if (ev === "delta") span.textContent += data.text;
      else if (ev === "audio") { state.audioQueue.push(data.wav); playNext(); }
      else if (ev === "done" && data.error) { reply.classList.add("partial"); span.after(el("div", { class: "error" }, data.error)); }
      else if (ev === "error") span.after(el("div", { class: "error" }, data.error));
    });
  } catch (e) { if (e.name !== "AbortError") span.after(el("div", { class: "error" }, e.message)); else reply.classList.add("partial"); }
  finally { if (state.abort === abort) state.abort = null; }
}

function voiceControls() {
  const ptt = el("button", { id: "chat-ptt", title: "hold to talk, release to send" }, "🎤 Hold to talk");
  const showError = (m) => $("#chat-log").append(el("div", { class: "error" }, m));
  holdToTalk(ptt, (text) => send(text), showError);
  const status = el("span", { id: "chat-handsfree-state", class: "muted" }, "");
  const hf = new HandsFree({
    onText: (text) => send(text), onBargeIn: stopReplyAudio, isPlaying: () => state.playing || !!state.abort,
    onState: (s) => { status.textContent = { listening: "listening…", hearing: "hearing you…", off: "" }[s] || s; },
    onError: showError,
  });
  state.handsFree = hf;
  const box = el("input", { type: "checkbox", id: "chat-handsfree", onchange: async () => {
    try { box.checked ? await hf.start() : hf.stop(); } catch (e) { box.checked = false; showError(`microphone: ${e.message}`); }
  } });
  return [ptt, el("label", { title: "listen all the time; talk over the reply to interrupt it" }, box, " hands-free"), " ", status];
}

async function render() {
  const root = $("#chat");
  const [personas, media, voices] = await Promise.all([api("/api/chat/personas"), api("/api/media"), api("/api/voices")]);
  const pSel = el("select", { id: "persona-select" }, el("option", { value: "" }, "choose a character…"), ...personas.map((p) => el("option", { value: p.id }, p.name)));
  const itemSel = el("select", { id: "chat-item" }, ...media.map((m) => el("option", { value: m.id }, `${m.id}: ${m.title}`)));
  const charSel = el("select", { id: "chat-character" });
  const loadChars = async () => { if (itemSel.value) { const cs = await api(`/api/media/${itemSel.value}/characters`); charSel.replaceChildren(...cs.map((c) => el("option", { value: c.name }, c.name))); } };
  itemSel.onchange = loadChars;
  pSel.onchange = () => { const p = personas.find((x) => String(x.id) === pSel.value); if (p) openPersona(p); };
  const input = el("input", { id: "chat-input", placeholder: "Say something…", size: 50, onkeydown: (e) => { if (e.key === "Enter") { send(input.value); input.value = ""; } } });
  root.replaceChildren(
    quick ? "" : el("div", { class: "row" }, "Character: ", pSel, " or new from ", itemSel, charSel,
      el("button", { id: "chat-new", onclick: async () => { const p = await api("/api/chat/personas", { method: "POST", body: { media_id: itemSel.value, character: charSel.value } }); await render(); $("#persona-select").value = p.id; openPersona(p); } }, "Talk")),
    quick ? "" : el("details", {}, el("summary", {}, "Persona (system prompt, model, voice)"),
      el("textarea", { id: "persona-prompt", rows: 6, cols: 90 }), el("br"),
      el("label", {}, "model ", el("input", { id: "persona-model", size: 20 })), " ",
      el("label", {}, "temperature ", el("input", { id: "persona-temp", type: "number", step: "0.1", min: 0, max: 2, style: "width:5em" })), " ",
      el("label", {}, "voice ", el("select", { id: "persona-voice" }, ...voices.map((v) => el("option", { value: v.name }, v.name)))), " ",
      el("button", { onclick: async () => { if (!state.persona) return; state.persona = await api(`/api/chat/personas/${state.persona.id}`, { method: "PUT", body: { system_prompt: $("#persona-prompt").value, model: $("#persona-model").value || null, temperature: parseFloat($("#persona-temp").value), voice: $("#persona-voice").value } }); } }, "Save persona"), " ",
      el("a", { href: "#", onclick: (e) => { e.preventDefault(); if (state.persona) window.open(`/api/chat/personas/${state.persona.id}/card?format=json&token=${sessionStorage.getItem("weaver_token")}`); } }, "export card")),
    el("div", { id: "chat-log", class: "chat-log" }),
    el("div", { class: "row" }, input, el("button", { id: "chat-send", onclick: () => { send(input.value); input.value = ""; } }, "Send"),
      el("label", {}, el("input", { type: "checkbox", id: "chat-speak", checked: true }), " voice"),
      ...voiceControls()),
  );
  await loadChars();
  const settings = await api("/api/settings");
  const last = personas.find((p) => p.id === settings.last_persona_id) || (quick ? personas[0] : null);
  if (last) { if (!quick) pSel.value = last.id; await openPersona(last); }
  if (handsFreeAtStart && !$("#chat-handsfree").checked) { $("#chat-handsfree").click(); }
}

registerView("chat", { enter: render });
if (quick) { document.querySelector("header nav")?.setAttribute("hidden", ""); }
