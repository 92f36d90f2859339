// Voice input for the chat view: real hold-to-talk and a hands-free mode.
// Hold-to-talk: pointerdown starts recording, pointerup (or leaving the button) stops and sends it.
// Hands-free: the browser's microphone (its echo cancellation on) → a frame energy VAD here with separate start and
// end thresholds and a hangover (silence and short noises are never sent) → each utterance as 16 kHz WAV to
// /api/chat/listen (server ASR) → onText. Speech starting while the reply plays calls onBargeIn at once.
import { api } from "./app.js";

export const VAD = { startDb: 12, endDb: 6, startFrames: 3, hangoverMs: 600, minSpeechMs: 300, preRollMs: 300 };

async function transcribe(blob) {
  const r = await api("/api/chat/listen", { method: "POST", body: blob });
  return (r.text || "").trim();
}

// Hold-to-talk on a button; onText(text) gets the transcript of each hold.
export function holdToTalk(btn, onText, onError = () => {}) {
  let rec = null, stream = null, chunks = [];
  const label = btn.textContent;
  const start = async (e) => {
    e.preventDefault();
    if (rec) return;
    btn.setPointerCapture?.(e.pointerId);
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (err) { onError(`microphone: ${err.message}`); return; }
    chunks = [];
    rec = new MediaRecorder(stream);
    rec.ondataavailable = (ev) => { if (ev.data.size) chunks.push(ev.data); };
    rec.onstop = async () => {
      stream.getTracks().forEach((t) => t.stop());
      rec = null; btn.textContent = label; btn.classList.remove("recording");
      try { const text = await transcribe(new Blob(chunks)); if (text) onText(text); } catch (err) { onError(err.message); }
    };
    rec.start(100);
    btn.textContent = "● Recording… release to send"; btn.classList.add("recording");
  };
  const stop = () => { if (rec && rec.state !== "inactive") rec.stop(); };
  btn.addEventListener("pointerdown", start);
  for (const ev of ["pointerup", "pointercancel", "lostpointercapture"]) btn.addEventListener(ev, stop);
  btn.addEventListener("contextmenu", (e) => e.preventDefault());
}

function wav16k(samples, rate) {
  const ratio = rate / 16000, n = Math.floor(samples.length / ratio);
  const buf = new ArrayBuffer(44 + n * 2), v = new DataView(buf);
  const str = (o, s) => { for (let i = 0; i < s.length; i++) v.setUint8(o + i, s.charCodeAt(i)); };
  str(0, "RIFF"); v.setUint32(4, 36 + n * 2, true); str(8, "WAVEfmt "); v.setUint32(16, 16, true);
  v.setUint16(20, 1, true); v.setUint16(22, 1, true); v.setUint32(24, 16000, true); v.setUint32(28, 32000, true);
  v.setUint16(32, 2, true); v.setUint16(34, 16, true); str(36, "data"); v.setUint32(40, n * 2, true);
  for (let i = 0; i < n; i++) {
    const s = Math.max(-1, Math.min(1, samples[Math.floor(i * ratio)]));
    v.setInt16(44 + i * 2, s * 32767, true);
  }
  return new Blob([buf], { type: "audio/wav" });
}

// The energy VAD as a pure step function (exported for tests): feed(frameDb) → "start" | "end" | "drop" | null.
export function makeTurnDetector(cfg = VAD, frameMs = 20) {
  let floor = -70, speaking = false, run = 0, quiet = 0, voiced = 0;
  return {
    get speaking() { return speaking; },
    feed(db) {
      if (!speaking) floor = db < floor ? db : floor + 0.02 * (db - floor); // the noise floor follows the quiet
      const over = db - floor;
      if (!speaking) {
        run = over >= cfg.startDb && db > -55 ? run + 1 : 0;
        if (run >= cfg.startFrames) { speaking = true; voiced = run; quiet = 0; run = 0; return "start"; }
        return null;
      }
      if (over >= cfg.endDb) { quiet = 0; voiced++; } else quiet++;
      if (quiet * frameMs < cfg.hangoverMs) return null;
      speaking = false;
      return voiced * frameMs >= cfg.minSpeechMs ? "end" : "drop";
    },
  };
}

// Hands-free listening. isPlaying() tells whether the reply is audible; onBargeIn() must silence it at once.
export class HandsFree {
  constructor({ onText, onBargeIn, isPlaying, onState = () => {}, onError = () => {} }) {
    Object.assign(this, { onText, onBargeIn, isPlaying, onState, onError });
    this.active = false;
  }

  async start() {
    if (this.active) return;
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true } });
    this.ctx = new AudioContext();
    const src = this.ctx.createMediaStreamSource(this.stream);
    const rate = this.ctx.sampleRate, frame = Math.round(rate * 0.02);
    this.node = this.ctx.createScriptProcessor(1024, 1, 1);
    const det = makeTurnDetector(VAD, 20);
    const pre = [], utter = [], preFrames = VAD.preRollMs / 20;
    let pending = new Float32Array(0);
    this.node.onaudioprocess = (ev) => {
      const input = ev.inputBuffer.getChannelData(0);
      const all = new Float32Array(pending.length + input.length);
      all.set(pending); all.set(input, pending.length);
      let i = 0;
      for (; i + frame <= all.length; i += frame) {
        const f = all.slice(i, i + frame);
        let ms = 0; for (const s of f) ms += s * s;
        const db = 10 * Math.log10(ms / f.length + 1e-12);
        const wasSpeaking = det.speaking;
        const ev2 = det.feed(db);
        if (!wasSpeaking && !det.speaking) { pre.push(f); if (pre.length > preFrames) pre.shift(); continue; }
        if (ev2 === "start") {
          utter.length = 0; utter.push(...pre, f); pre.length = 0;
          this.onState("hearing");
          if (this.isPlaying()) this.onBargeIn();
        } else utter.push(f);
        if (ev2 === "end" || ev2 === "drop") {
          this.onState("listening");
          if (ev2 === "end") {
            const n = utter.reduce((a, x) => a + x.length, 0), out = new Float32Array(n);
            let o = 0; for (const x of utter) { out.set(x, o); o += x.length; }
            transcribe(wav16k(out, rate)).then((t) => { if (t) this.onText(t); }).catch((e) => this.onError(e.message));
          }
          utter.length = 0;
        }
      }
      pending = all.slice(i);
    };
    src.connect(this.node); this.node.connect(this.ctx.destination);
    this.active = true; this.onState("listening");
  }

  stop() {
    if (!this.active) return;
    this.node.disconnect(); this.stream.getTracks().forEach((t) => t.stop()); this.ctx.close();
    this.active = false; this.onState("off");
  }
}
