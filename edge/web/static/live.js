// Live page: the annotated MJPEG stream plus per-face emotions and counters polled from /api/live.
"use strict";

(function () {
  const fe = window.ferEdge;
  if (document.body.dataset.live !== "1") return;
  const img = document.getElementById("stream");
  const stateBox = document.getElementById("live-state");
  const facesBox = document.getElementById("faces");
  const POLL_MS = 500;
  const field = (id) => document.getElementById(id);
  let lastState = "";
  let streamOpen = false;

  function openStream() {
    // A fresh URL each time, so the browser really reconnects instead of reusing a dead stream.
    img.src = fe.withToken("/stream.mjpg?t=" + Date.now());
    streamOpen = true;
  }

  img.addEventListener("load", () => { img.dataset.loaded = "1"; });
  img.addEventListener("error", () => {
    streamOpen = false;  // reopened by the next poll while the source still runs
  });

  function showState(stats) {
    const s = stats.state;
    let text;
    if (s === "running") text = "Running: " + stats.fps.toFixed(1) + " frames/s.";
    else if (s === "starting") text = "Opening the source…";
    else if (s === "ended") text = "Source ended: the last frame stays on screen.";
    else if (s === "failed") text = "Source failed: " + (stats.error || "unknown error");
    else text = "Stopped.";
    stateBox.textContent = text;
    stateBox.dataset.state = s;
    stateBox.classList.toggle("error", s === "failed");
    stateBox.classList.toggle("ended", s === "ended");
  }

  async function poll() {
    try {
      const data = await fe.api("/api/live");
      const st = data.stats;
      field("st-source").textContent = st.source;
      field("st-state").textContent = st.state;
      field("st-fps").textContent = st.fps.toFixed(1);
      field("st-frames").textContent = String(st.frames);
      field("st-drops").textContent = String(st.drops);
      field("st-clients").textContent = st.clients + " / " + st.max_clients;
      field("st-latency").textContent = st.latency_ms == null ? "–" : st.latency_ms.toFixed(0) + " ms";
      showState(st);
      facesBox.dataset.seq = String(data.seq);
      if (st.state !== lastState || data.seq >= 0) {
        fe.renderFaces(facesBox, data.faces, data.seq < 0 ? "Waiting for frames…" : "No face in this frame.");
      }
      if (!streamOpen && (st.state === "running" || (data.seq >= 0 && !img.dataset.loaded))) openStream();
      lastState = st.state;
    } catch (err) {
      stateBox.textContent = "Cannot reach the server: " + err.message;
      stateBox.dataset.state = "unreachable";
      stateBox.classList.add("error");
    }
    setTimeout(poll, POLL_MS);
  }

  openStream();
  poll();
})();
