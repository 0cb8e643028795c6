// Voice input: the learner speaks instead of typing. The browser's own speech recognition is
// used where it works; otherwise (or when it fails, as it does in browsers without Google's
// speech service) the recording goes to the TTS service's transcription, which needs a Gemini
// key on the server. Either way the words land in the message box, to be read and corrected
// before sending: nothing is sent by voice alone.
import { csrfHeaders } from "/static/csrf.js";
import { ensureSignedIn, lang, ui } from "/static/page.js";

const TTS_API = document.querySelector('meta[name="tts-api"]')?.content || "/api/v2/tts";
// The request body limit is 64 KB: 15 s of Opus at 16 kbit/s stays well inside it.
const MAX_RECORDING_MS = 15000;
const RECORDING_BITRATE = 16000;

let serverCheck = null;
function serverTranscription() {
  if (!serverCheck) {
    serverCheck = (async () => {
      try {
        await ensureSignedIn();
        const response = await fetch(`${TTS_API}/voices`, { credentials: "same-origin" });
        return response.ok && (await response.json()).transcription === true;
      } catch (_) {
        return false;
      }
    })();
  }
  return serverCheck;
}

function insert(input, base, words) {
  input.value = base ? `${base}${lang === "ja" ? "" : " "}${words}` : words;
  input.dispatchEvent(new Event("input", { bubbles: true }));
}

async function transcribe(blob, language) {
  await ensureSignedIn();
  const response = await fetch(`${TTS_API}/transcribe?language=${encodeURIComponent(language)}`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": blob.type || "audio/webm", ...csrfHeaders("POST") },
    body: blob,
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.message || String(response.status));
  return data.text || "";
}

// `button` toggles listening; `input` gets the words; `say(text)` shows a status line.
export async function wireVoiceInput(button, input, say, language = lang) {
  const Recognition = window.SpeechRecognition || window.webkitSpeechRecognition;
  const canRecord = Boolean(navigator.mediaDevices?.getUserMedia && window.MediaRecorder);
  let browserWorks = Boolean(Recognition);
  let active = null; // a stop() for whatever is listening now
  // The server is asked only when the browser cannot listen itself (not on every page load).
  const server = async () => canRecord && (await serverTranscription());

  if (!browserWorks && !(await server())) {
    button.hidden = true;
    return;
  }
  button.hidden = false;

  const setListening = (on) => {
    button.classList.toggle("listening", on);
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.title = on ? ui.voice_stop : ui.voice_input;
  };

  function listenInBrowser() {
    const recognition = new Recognition();
    recognition.lang = language === "en" ? "en-US" : "ja-JP";
    recognition.interimResults = true;
    recognition.continuous = false;
    const base = input.value.trim();
    let unavailable = false;
    recognition.onresult = (event) => {
      const words = Array.from(event.results, (r) => r[0].transcript).join("");
      insert(input, base, words);
    };
    recognition.onerror = (event) => {
      if (["network", "service-not-allowed", "language-not-supported"].includes(event.error)) {
        // This browser has the interface but not the service behind it.
        unavailable = true;
      } else if (event.error === "not-allowed") {
        say(ui.voice_permission);
      } else if (event.error !== "no-speech" && event.error !== "aborted") {
        say(ui.voice_failed);
      }
    };
    recognition.onend = async () => {
      active = null;
      setListening(false);
      if (!unavailable) {
        input.focus();
        return;
      }
      browserWorks = false;
      if (await server()) {
        say(ui.voice_switching);
        recordForServer();
      } else {
        say(ui.voice_failed);
        button.hidden = true;
      }
    };
    recognition.start();
    say(ui.voice_listening);
    setListening(true);
    active = () => recognition.stop();
  }

  async function recordForServer() {
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (_) {
      say(ui.voice_permission);
      return;
    }
    const recorder = new MediaRecorder(stream, { audioBitsPerSecond: RECORDING_BITRATE });
    const chunks = [];
    recorder.ondataavailable = (e) => e.data.size && chunks.push(e.data);
    const timer = setTimeout(() => recorder.state === "recording" && recorder.stop(), MAX_RECORDING_MS);
    recorder.onstop = async () => {
      clearTimeout(timer);
      stream.getTracks().forEach((t) => t.stop());
      active = null;
      setListening(false);
      say(ui.voice_transcribing);
      try {
        const words = await transcribe(new Blob(chunks, { type: recorder.mimeType }), language);
        insert(input, input.value.trim(), words);
        say(words ? ui.voice_check : ui.voice_nothing);
      } catch (_) {
        say(ui.voice_failed);
      }
      input.focus();
    };
    recorder.start();
    say(ui.voice_recording);
    setListening(true);
    active = () => recorder.state === "recording" && recorder.stop();
  }

  button.addEventListener("click", () => {
    if (active) {
      active();
      return;
    }
    if (browserWorks) listenInBrowser();
    else recordForServer();
  });
}
