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
