// Chat view (also the tray's Quick chat window: #chat?quick=1): persona, streamed reply, voice, push-to-talk,
// Stop (cancels the generation on the server) and Regenerate; conversations resume where they were left.
import { $, api, el, registerView } from "./app.js";
import { exportLinks, fillEditor, importCardControl, loadDefaults, personaEditor, renderGallery } from "./chat_persona.js";
import { HandsFree, holdToTalk } from "./chat_voice.js";

const state = { persona: null, conversation: null, audioQueue: [], playing: false, recorder: null, current: null, busy: false, lastUser: null };
const quick = location.hash.includes("quick=1");
const handsFreeAtStart = location.hash.includes("handsfree=1"); // the tray's Quick chat opens hands-free

function playNext() {
  if (state.playing || !state.audioQueue.length) return;
  state.playing = true;
  const audio = new Audio(`data:audio/wav;base64,${state.audioQueue.shift()}`);
  state.current = audio;
  window.__chatAudioPlayed = (window.__chatAudioPlayed || 0) + 1;
  audio.onended = audio.onerror = () => { state.playing = false; state.current = null; playNext(); };
  audio.play().catch(() => { state.playing = false; });
}

function stopAudio() {
  state.audioQueue = [];
  if (state.current) { state.current.pause(); state.current = null; }
  state.playing = false;
}

function setBusy(busy) {
  state.busy = busy;
  const stop = $("#chat-stop"), regen = $("#chat-regenerate");
  if (stop) stop.disabled = !busy;
  if (regen) regen.disabled = busy || !state.lastUser;
}

async function stopReply() {
  stopAudio();
  if (state.busy && state.conversation) await api(`/api/chat/conversations/${state.conversation}/stop`, { method: "POST" });
}

async function streamSend(text, speak, onEvent, regenerate = false) {
  const res = await fetch(`/api/chat/conversations/${state.conversation}/send`, {
    method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${sessionStorage.getItem("weaver_token") || ""}` },
    body: JSON.stringify(regenerate ? { regenerate: true, text, speak } : { text, speak }), signal: state.abort?.signal,
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

// open a persona: its newest conversation (a new one when it has none, or with fresh=true)
async function openPersona(p, fresh = false) {
  stopAudio();
  state.persona = p;
  const convs = fresh ? [] : await api(`/api/chat/personas/${p.id}/conversations`);
  state.conversation = convs.length ? convs[0].id : (await api(`/api/chat/personas/${p.id}/conversations`, { method: "POST" })).id;
  $("#chat-log").replaceChildren();
  state.lastUser = null;
  for (const m of await api(`/api/chat/conversations/${state.conversation}`)) {
    addMessage(m.role, m.content, m.partial ? "partial" : "");
    if (m.role === "user") state.lastUser = m.content;
  }
  document.querySelectorAll("#chat-gallery li").forEach((li) => li.classList.toggle("selected", li.dataset.id === String(p.id)));
  if ($("#persona-select")) $("#persona-select").value = p.id;
  fillEditor(p);
  setBusy(false);
}

// Barge-in: silence the voice now and drop the reply being generated (closing the stream cancels it on the server).
export function stopReplyAudio() {
  stopAudio();
  state.abort?.abort();
}

async function send(text, regenerate = false) {
  if (!state.conversation || (!regenerate && !(text || "").trim())) return;
  if (state.busy && regenerate) return;  // a new message (typed, or spoken over the reply) replaces the reply instead
  if (regenerate) {  // the last reply and its message leave the log; the message is answered again
    const log = $("#chat-log"), msgs = [...log.querySelectorAll(".msg")];
    if (msgs.length && msgs[msgs.length - 1].classList.contains("assistant")) msgs.pop().remove();
    if (msgs.length && msgs[msgs.length - 1].classList.contains("user")) msgs.pop().remove();
    text = state.lastUser;
  }
  stopAudio();
  state.lastUser = text;
  state.abort?.abort();
  const abort = state.abort = new AbortController();
  addMessage("user", text);
  const reply = addMessage("assistant", "");
  const span = reply.querySelector(".text");
  setBusy(true);
  try {
    await streamSend(text, $("#chat-speak").checked, (ev, data) => {
      if (ev === "delta") span.textContent += data.text;
      else if (ev === "audio") { if (state.busy) { state.audioQueue.push(data.wav); playNext(); } }
      else if (ev === "done") {
        reply.dataset.stopped = data.cancelled ? "cancelled" : (data.stopped || "finished");
        if (data.cancelled) reply.classList.add("partial", "stopped");
        if (data.error) { reply.classList.add("partial"); span.after(el("div", { class: "error" }, data.error)); }
      } else if (ev === "error") span.after(el("div", { class: "error" }, data.error));
    }, regenerate);
  } catch (e) { if (e.name !== "AbortError") span.after(el("div", { class: "error" }, e.message)); else reply.classList.add("partial"); }
  reply.classList.add("done");
  if (state.abort === abort) { state.abort = null; setBusy(false); }  // else a newer message is being answered
}

function voiceControls() {
  const ptt = el("button", { id: "chat-ptt", title: "hold to talk, release to send" }, "● Hold to talk");
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
  const [personas, media, voices] = await Promise.all([api("/api/chat/personas"), api("/api/media"), api("/api/voices"), loadDefaults()]);
  const pSel = el("select", { id: "persona-select" }, el("option", { value: "" }, "choose a character…"), ...personas.map((p) => el("option", { value: p.id }, p.name)));
  const itemSel = el("select", { id: "chat-item" }, ...media.map((m) => el("option", { value: m.id }, `${m.id}: ${m.title}`)));
  const charSel = el("select", { id: "chat-character" });
  const loadChars = async () => { if (itemSel.value) { const cs = await api(`/api/media/${itemSel.value}/characters`); const keep = charSel.value; /* read after the fetch: a pick made meanwhile stays */ charSel.replaceChildren(...cs.map((c) => el("option", { value: c.name }, c.name))); if (keep && cs.some((c) => c.name === keep)) charSel.value = keep; } };
  itemSel.onchange = loadChars;
  const byId = async (id) => (await api("/api/chat/personas")).find((x) => String(x.id) === String(id));
  pSel.onchange = async () => { const p = await byId(pSel.value); if (p) openPersona(p); };
  const addPersonaOption = (p) => { if (![...pSel.options].some((o) => o.value === String(p.id))) pSel.append(el("option", { value: p.id }, p.name)); pSel.value = p.id; };
  const talk = async () => {  // the item and character chosen stay chosen (no re-render)
    const p = await api("/api/chat/personas", { method: "POST", body: { media_id: itemSel.value, character: charSel.value } });
    addPersonaOption(p);
    await openPersona(p);
    renderGallery(openPersona);
  };
  const input = el("input", { id: "chat-input", placeholder: "Say something…", size: 50, onkeydown: (e) => { if (e.key === "Enter") { send(input.value); input.value = ""; } } });
  root.replaceChildren(
    quick ? "" : el("ul", { id: "chat-gallery", class: "cards persona-gallery" }),
    quick ? "" : el("div", { class: "row" }, "Character: ", pSel, " or new from ", itemSel, charSel,
      el("button", { id: "chat-new", onclick: talk }, "Talk"), " ",
      importCardControl(async (p) => { addPersonaOption(p); await openPersona(p); renderGallery(openPersona); }), " ",
      el("button", { id: "chat-fresh", onclick: () => { if (state.persona) openPersona(state.persona, true); } }, "New conversation")),
    quick ? "" : personaEditor(voices, () => state.persona, (p) => { state.persona = p; fillEditor(p); }),
    el("div", { id: "chat-log", class: "chat-log" }),
    el("div", { class: "row" }, input, el("button", { id: "chat-send", onclick: () => { send(input.value); input.value = ""; } }, "Send"),
      el("button", { id: "chat-stop", disabled: true, onclick: stopReply }, "■ Stop"),
      el("button", { id: "chat-regenerate", disabled: true, onclick: () => send(null, true) }, "↻ Regenerate"),
      el("label", {}, el("input", { type: "checkbox", id: "chat-speak", checked: true }), " voice"),
      ...voiceControls(), " ",
      quick ? "" : exportLinks(() => state.conversation)),
  );
  await loadChars();
  if (!quick) renderGallery(openPersona);
  const settings = await api("/api/settings");
  const last = personas.find((p) => p.id === settings.last_persona_id) || (quick ? personas[0] : null);
  if (last) { if (!quick) pSel.value = last.id; await openPersona(last); }
  if (handsFreeAtStart && !$("#chat-handsfree").checked) { $("#chat-handsfree").click(); }
}

registerView("chat", { enter: render });
if (quick) { document.querySelector("header nav")?.setAttribute("hidden", ""); }
