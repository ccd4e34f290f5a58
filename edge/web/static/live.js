// Live page: the annotated MJPEG stream plus per-face emotions and counters polled from /api/live,
// and a rolling chart of the share of each expression per second over the last minute.
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

  const chart = document.getElementById("shares");
  const legend = document.getElementById("shares-legend");
  for (const label of fe.labels) {
    const item = document.createElement("span");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = fe.colorFor(label);
    item.append(swatch, label);
    legend.appendChild(item);
  }

  // One stacked column per second: the share of the faces seen in that second showing each
  // label. Drawn from the server's per-second counts, so a late or slow poll misses nothing.
  function drawShares(shares) {
    const dpr = window.devicePixelRatio || 1;
    const cssW = chart.clientWidth;
    const cssH = chart.clientHeight;
    if (chart.width !== Math.round(cssW * dpr) || chart.height !== Math.round(cssH * dpr)) {
      chart.width = Math.round(cssW * dpr);
      chart.height = Math.round(cssH * dpr);
    }
    const ctx = chart.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cssW, cssH);
    const left = 40, right = 8, top = 6, bottom = 20;
    const w = cssW - left - right;
    const h = cssH - top - bottom;
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#60646c";
    ctx.strokeStyle = "#dfe3e6";
    ctx.lineWidth = 1;
    ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    for (const f of [0, 0.5, 1]) {
      const y = Math.round(top + h * (1 - f)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(left + w, y);
      ctx.stroke();
      ctx.fillText(Math.round(f * 100) + "%", left - 4, y);
    }
    ctx.textBaseline = "top";
    const slots = Math.round(shares.window_s / shares.bucket_s);
    [[0, "-" + shares.window_s + " s"], [0.5, "-" + shares.window_s / 2 + " s"], [1, "now"]].forEach(([f, text]) => {
      ctx.textAlign = f === 0 ? "left" : f === 1 ? "right" : "center";
      ctx.fillText(text, left + w * f, top + h + 4);
    });
    const bw = w / slots;
    let drawn = 0;
    let last = null;
    shares.age_s.forEach((age, i) => {
      const counts = shares.counts[i];
      const total = counts.reduce((a, b) => a + b, 0);
      if (!total) return;  // a second without a face stays empty
      const x = left + w - (age / shares.bucket_s + 1) * bw;
      let y = top + h;
      last = {};
      counts.forEach((c, k) => {
        last[fe.labels[k]] = c / total;
        if (!c) return;
        const bh = (h * c) / total;
        ctx.fillStyle = fe.colorFor(fe.labels[k]);
        ctx.fillRect(x, y - bh, Math.max(1, bw - 1), bh);
        y -= bh;
      });
      drawn += 1;
    });
    if (!drawn) {
      ctx.fillStyle = "#60646c";
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      ctx.fillText("No face in the last " + shares.window_s + " s.", left + w / 2, top + h / 2);
    }
    chart.dataset.buckets = String(drawn);
    chart.dataset.last = JSON.stringify(last);
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
    else if (s === "waiting") text = "Starting the video for you…";
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
      drawShares(data.shares);
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
