// The resident's chat page (chat.html): served as a file, so the page runs no inline script (CSP).
const API = "/api/v1/webchat/sessions";
const log = document.getElementById("log");
const composer = document.getElementById("composer");
const input = document.getElementById("text");
let sessionId = sessionStorage.getItem("webchat-session");
let shownSeq = 0;  // the number of the latest line shown: the page asks for what comes after it
let sending = 0;  // messages in flight: their replies arrive with them, so no poll runs meanwhile
let withAPerson = false;
let ended = false;
const POLL_MS = 3000;

function line(text, who) {
  const div = document.createElement("div");
  div.className = "bubble " + who;
  div.textContent = text;
  log.appendChild(div);
  log.scrollTop = log.scrollHeight;
}

function notice(text) {
  const div = document.createElement("div");
  div.className = "notice";
  div.textContent = text;
  log.appendChild(div);
  log.scrollTop = log.scrollHeight;
}

function clearButtons() {
  log.querySelectorAll(".buttons").forEach((b) => b.remove());
}

function showReplies(body, who) {
  clearButtons();
  for (const reply of body.replies) {
    line(reply.text, who || "bot");
    if (reply.buttons && reply.buttons.length) {
      const row = document.createElement("div");
      row.className = "buttons";
      for (const b of reply.buttons) {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = b.title;
        button.addEventListener("click", () => send(b.title, b.payload));
        row.appendChild(button);
      }
      log.appendChild(row);
    }
  }
  if (body.seq) shownSeq = Math.max(shownSeq, body.seq);
  if (body.ended) end();
}

function end() {
  ended = true;
  clearButtons();
  notice("Cuộc trò chuyện đã kết thúc. Cảm ơn anh/chị!");
  input.disabled = true;
  composer.querySelector("button").disabled = true;
  sessionStorage.removeItem("webchat-session");
}

function openChat() {
  document.getElementById("start").hidden = true;
  log.hidden = false;
  composer.hidden = false;
  input.focus();
}

async function post(url, payload) {
  const response = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" },
                                      body: JSON.stringify(payload) });
  const body = await response.json().catch(() => ({ message: "Lỗi không xác định" }));
  return { ok: response.ok, status: response.status, body };
}

async function send(text, payload) {
  line(text, "resident");
  clearButtons();
  // Intent payloads ("/affirm") go to the engine beside the title; a plain-text payload is simply what is said.
  const message = payload && payload.startsWith("/") ? { text, payload } : { text: payload || text };
  sending += 1;
  try {
    const result = await post(`${API}/${sessionId}/messages`, message);
    if (result.ok) showReplies(result.body);
    else notice(result.body.message || "Có lỗi, xin thử lại.");
  } finally {
    sending -= 1;
  }
}

// What a tracer of the health centre writes (and the bot's question when they hand back) arrives without the
// resident sending anything: the page asks for the lines after the ones it shows, every few seconds.
function showPersonChange(now) {
  if (now === withAPerson) return;
  withAPerson = now;
  notice(now ? "Cán bộ y tế đang trò chuyện trực tiếp với anh/chị." : "Tổng đài tự động tiếp tục cuộc trò chuyện.");
}

async function poll() {
  if (!sessionId || ended || sending || document.visibilityState !== "visible") return;
  const response = await fetch(`${API}/${sessionId}?after=${shownSeq}`).catch(() => null);
  if (!response || !response.ok || sending) return;  // a message went out meanwhile: its reply shows what is new
  const body = await response.json();
  showPersonChange(body.with_a_person);
  const lines = body.lines.filter((l) => l.speaker !== "resident");
  for (const l of lines) showReplies({ replies: [l] }, l.speaker === "agent" ? "agent" : "bot");
  shownSeq = Math.max(shownSeq, body.seq);
  if (body.ended) end();
}

async function begin(opening) {
  const error = document.getElementById("start-error");
  error.textContent = "";
  const result = await post(API, opening);
  if (!result.ok) {
    error.textContent = result.status === 422 ? "Số điện thoại chưa đúng, xin kiểm tra lại." : result.body.message;
    return;
  }
  sessionId = result.body.session_id;
  sessionStorage.setItem("webchat-session", sessionId);
  openChat();
  showReplies(result.body);
}

document.getElementById("start-form").addEventListener("submit", (event) => {
  event.preventDefault();
  begin({ phone: document.getElementById("phone").value, name: document.getElementById("name").value || null });
});

composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  send(text);
});

async function restore() {
  const response = await fetch(`${API}/${sessionId}`);
  if (!response.ok) { sessionStorage.removeItem("webchat-session"); return false; }
  const body = await response.json();
  openChat();
  for (const l of body.lines) line(l.text, l.speaker === "resident" ? "resident" : l.speaker);
  shownSeq = body.seq;
  showPersonChange(body.with_a_person);
  if (body.ended) end();
  return true;
}

// A personal link from an SMS (/chat?invite=...) is its own session key: the first visit opens the chat,
// later visits (another tab, the link tapped again) resume it.
async function start() {
  const invite = new URLSearchParams(location.search).get("invite");
  if (invite) {
    sessionId = invite;
    if (!(await restore())) await begin({ invite });
  } else if (sessionId) {
    await restore();
  }
}

start();
setInterval(poll, POLL_MS);
