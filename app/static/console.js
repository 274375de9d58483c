// The console's little script (served as a file: the CSP allows no inline script).
// On the alerts page, new and changed alerts arrive over server-sent events (/console/events) and are shown
// without a reload, with a visible banner and, for urgent ones, a sound.
"use strict";

(function liveAlerts() {
  const table = document.getElementById("alerts");
  if (!table) return;
  const body = table.tBodies[0];
  const banner = document.getElementById("new-alert");
  const empty = document.getElementById("no-alerts");
  const title = document.title;

  function beep() {
    try {
      const audio = new (window.AudioContext || window.webkitAudioContext)();
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.frequency.value = 880;
      gain.gain.value = 0.2;
      tone.connect(gain).connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.4);
      document.body.dataset.sounded = String(Number(document.body.dataset.sounded || 0) + 1);
    } catch (error) { /* no audio device: the banner still shows */ }
  }

  function place(row) {
    // urgent alerts above the others, the newest first within a level
    if (row.dataset.level === "urgent") { body.prepend(row); return; }
    const firstOther = Array.from(body.rows).find((r) => r.dataset.level !== "urgent");
    body.insertBefore(row, firstOther || null);
  }

  function show(alert) {
    const old = document.getElementById("alert-" + alert.id);
    if (alert.acknowledged) {
      if (old) old.remove();
    } else {
      const holder = document.createElement("tbody");
      holder.innerHTML = alert.row;  // rendered and escaped by the server's template
      const row = holder.firstElementChild;
      row.classList.add("fresh");
      if (old) old.remove();
      place(row);
      banner.textContent = (alert.level === "urgent" ? "Cảnh báo KHẨN CẤP mới: " : "Cảnh báo mới: ") +
        row.cells[1].textContent.trim() + " · " + row.cells[4].textContent.trim();
      banner.hidden = false;
      document.title = "(!) " + title;
      if (alert.level === "urgent") beep();
    }
    empty.hidden = body.rows.length > 0;
  }

  const events = new EventSource(table.dataset.events);
  events.addEventListener("alert", (event) => show(JSON.parse(event.data)));
  events.addEventListener("open", () => { document.body.dataset.live = "yes"; });
  window.addEventListener("focus", () => { document.title = title; });
})();

// On a declaration page whose conversation is live, new lines of the transcript appear as they are said.
(function liveTranscript() {
  const list = document.querySelector("ol.transcript[data-lines]");
  if (!list) return;
  let after = Number(list.dataset.after || 0);
  async function fetchLines() {
    const response = await fetch(`${list.dataset.lines}?after=${after}`).catch(() => null);
    if (!response || !response.ok) return;
    const body = await response.json();
    for (const line of body.lines) {
      if (document.getElementById("turn-" + line.seq)) continue;
      const holder = document.createElement("ol");
      holder.innerHTML = line.html;  // rendered and escaped by the server's template
      list.appendChild(holder.firstElementChild);
      after = Math.max(after, line.seq);
    }
    if (body.ended) clearInterval(timer);
  }
  const timer = setInterval(fetchLines, 2000);
})();

// F1 list upload: the form is sent by XMLHttpRequest so the bar shows the upload; then, while the server imports,
// the rows read so far are polled every 500 ms (/console/lists/progress/<upload_id>, the uploader's own only).
// The mapping form posts normally and polls the same way. Without script both forms post as plain forms.
(function listUpload() {
  function pollRows(form) {
    const text = document.getElementById("import-progress");
    const timer = setInterval(async () => {
      const response = await fetch(form.dataset.progress, { credentials: "same-origin" }).catch(() => null);
      if (!response || !response.ok) return;  // not started yet, or gone: the page's answer will tell
      const progress = await response.json();
      if (progress.state === "importing") {
        text.textContent = `Đang nhập: đã đọc ${progress.rows.toLocaleString("vi-VN")} dòng…`;
      }
    }, 500);
    return timer;
  }

  function showStatus(form) {
    const status = form.querySelector(".upload-status");
    if (status) status.hidden = false;
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
  }

  function replacePage(html) {
    // an answer that is a page of its own (the form with a reason, the column preview): shown in place
    const page = new DOMParser().parseFromString(html, "text/html");
    document.title = page.title;
    document.getElementById("main").replaceWith(page.getElementById("main"));
    bind();
  }

  function sendWithProgress(form) {
    const bar = document.getElementById("upload-progress");
    const text = document.getElementById("import-progress");
    const request = new XMLHttpRequest();
    let timer = null;
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) bar.value = Math.round((100 * event.loaded) / event.total);
    });
    request.upload.addEventListener("load", () => {
      bar.value = 100;
      text.textContent = "Đã tải lên, đang nhập danh sách…";
      timer = pollRows(form);
    });
    request.addEventListener("load", () => {
      clearInterval(timer);
      const listPage = new URL(request.responseURL, location.href);
      if (request.status === 200 && /^\/console\/lists\/\d+$/.test(listPage.pathname)) {
        location.assign(listPage.href);  // imported: the list's own page, with its address
      } else {
        replacePage(request.responseText);
      }
    });
    request.addEventListener("error", () => {
      clearInterval(timer);
      text.textContent = "Mất kết nối khi tải lên. Kiểm tra mạng và thử lại.";
      form.querySelector("button[type=submit]").disabled = false;
    });
    request.open("POST", form.action);
    request.send(new FormData(form));
  }

  function bind() {
    const upload = document.getElementById("list-upload");
    if (upload && window.FormData && window.DOMParser) {
      upload.addEventListener("submit", (event) => {
        event.preventDefault();
        showStatus(upload);
        sendWithProgress(upload);
      });
    }
    const mapping = document.getElementById("column-map");
    if (mapping) {
      mapping.addEventListener("submit", () => {
        showStatus(mapping);
        pollRows(mapping);  // the page is replaced by the answer: its timer goes with it
      });
    }
  }

  bind();
})();

// A campaign's page: its progress section is fetched again every few seconds and replaced in place (rendered and
// escaped by the server's template), so the figures move without a reload; the status follows.
(function liveCampaign() {
  const holder = document.getElementById("campaign-progress");
  if (!holder || !window.fetch) return;
  const status = document.getElementById("campaign-status");
  const labels = { draft: "Bản nháp", running: "Đang chạy", paused: "Tạm dừng", canceled: "Đã hủy",
                   completed: "Đã hoàn thành" };
  async function refresh() {
    try {
      const answer = await fetch(holder.dataset.poll, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!answer.ok) return;
      const body = await answer.json();
      holder.innerHTML = body.html;
      if (status && labels[body.status]) {
        status.textContent = labels[body.status];
        status.className = "state state-" + body.status;
      }
      holder.dataset.refreshed = String(Number(holder.dataset.refreshed || 0) + 1);
    } catch (error) { /* offline for a moment: the next round tries again */ }
  }
  setInterval(refresh, 3000);
})();

(function readReceipt() {
  // A team member's message page says it was read from the browser that shows it: link previews and scanners that
  // fetch the page run no script, so they do not count as the member reading it.
  const receipt = document.getElementById("read-receipt");
  if (!receipt) return;
  fetch(receipt.dataset.url, { method: "POST", credentials: "omit" })
    .then((answer) => { if (answer.ok) document.body.dataset.read = "yes"; })
    .catch(() => { /* offline: the next visit or an answer says it */ });
})();
