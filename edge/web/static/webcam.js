// Browser webcam page: getUserMedia frames go to /api/predict at a bounded rate, one request in
// flight at a time; the answers are drawn on a canvas laid over the video.
"use strict";

(function () {
  const fe = window.ferEdge;
  const video = document.getElementById("video");
  const overlay = document.getElementById("overlay");
  const startBtn = document.getElementById("start");
  const stopBtn = document.getElementById("stop");
  const rateSel = document.getElementById("rate");
  const status = document.getElementById("status");
  const facesBox = document.getElementById("faces");
  const MAX_SEND_WIDTH = 640;  // enough for face detection; keeps uploads small
  const grab = document.createElement("canvas");
  let stream = null;
  let timer = null;
  let sent = 0;
  let errors = 0;

  function setStatus(text, isError) {
    status.textContent = text;
    status.classList.toggle("error", !!isError);
  }

  if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    document.getElementById("insecure").hidden = false;
    startBtn.disabled = true;
    setStatus("Camera unavailable on this page (not a secure context).", true);
    return;
  }

  function toBlob(canvas) {
    return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
  }

  async function tick() {
    timer = null;
    if (!stream) return;
    const myStream = stream;  // a stop (or stop + start) while awaiting ends this loop
    const t0 = performance.now();
    const vw = video.videoWidth, vh = video.videoHeight;
    if (vw && vh) {
      const s = Math.min(1, MAX_SEND_WIDTH / vw);
      grab.width = Math.round(vw * s);
      grab.height = Math.round(vh * s);
      grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
      const blob = await toBlob(grab);
      if (stream !== myStream) return;
      const form = new FormData();
      form.append("image", blob, "frame.jpg");
      try {
        const result = await fe.api("/api/predict", { method: "POST", body: form });
        if (stream !== myStream) return;  // stopped (or restarted) while the request was out
        sent += 1;
        draw(result);
        const n = result.faces.length;
        setStatus("Sent " + sent + " frames; " + n + " face" + (n === 1 ? "" : "s") + ", server " +
                  result.latency_ms.toFixed(0) + " ms" + (errors ? "; " + errors + " errors" : "") + ".");
      } catch (err) {
        if (stream !== myStream) return;
        errors += 1;
        setStatus("Error: " + err.message, true);
        if (err.status === 401) { stop(); return; }
      }
    }
    if (stream !== myStream) return;
    // Bounded rate: the next frame leaves no sooner than 1/rate after this one left.
    const interval = 1000 / Number(rateSel.value);
    timer = setTimeout(tick, Math.max(0, interval - (performance.now() - t0)));
  }

  // The overlay canvas gets the video's on-screen size in pixels, so boxes and text stay crisp
  // and readable whatever the camera resolution; results are in the sent frame's pixels.
  function draw(result) {
    overlay.width = Math.max(1, Math.round(overlay.clientWidth));
    overlay.height = Math.max(1, Math.round(overlay.clientHeight));
    const scale = overlay.width / result.width;
    const ctx = overlay.getContext("2d");
    ctx.clearRect(0, 0, overlay.width, overlay.height);
    fe.drawFaces(ctx, result.faces, scale);
    overlay.dataset.faces = String(result.faces.length);
    overlay.dataset.frames = String(sent);
    overlay.dataset.result = JSON.stringify(result.faces);
    overlay.dataset.scale = String(scale);
    fe.renderFaces(facesBox, result.faces, "No face in view.");
  }

  async function start() {
    startBtn.disabled = true;
    setStatus("Asking for the camera…");
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 } }, audio: false });
    } catch (err) {
      stream = null;
      startBtn.disabled = false;
      setStatus("Camera refused or missing: " + err.message, true);
      return;
    }
    video.srcObject = stream;
    await video.play().catch(() => {});
    stopBtn.disabled = false;
    sent = 0;
    errors = 0;
    setStatus("Camera on.");
    tick();
  }

  function stop() {
    if (timer) clearTimeout(timer);
    timer = null;
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
    video.srcObject = null;
    overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
    startBtn.disabled = false;
    stopBtn.disabled = true;
    setStatus("Camera off.");
  }

  startBtn.addEventListener("click", start);
  stopBtn.addEventListener("click", stop);
  window.addEventListener("pagehide", stop);
})();
