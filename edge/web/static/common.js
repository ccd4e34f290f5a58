// Shared helpers for the fer-edge pages: the access token, API calls and drawing results.
// No inline script anywhere (the CSP forbids it): settings come from <body data-*>.
"use strict";

(function () {
  const TOKEN_KEY = "fer-edge-token";
  const body = document.body;
  const authRequired = body.dataset.auth === "1";
  const labels = JSON.parse(body.dataset.labels || "[]");
  const labelColors = JSON.parse(body.dataset.colors || "{}");  // the server overlay's colours

  // A token given once as ?token=... is kept for this tab (sessionStorage) and removed from the
  // address bar, so it does not linger in history or get copied along with the URL.
  const params = new URLSearchParams(window.location.search);
  if (params.has("token")) {
    sessionStorage.setItem(TOKEN_KEY, params.get("token"));
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", window.location.pathname + (rest ? "?" + rest : ""));
  }

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  function showAuthBanner() {
    const banner = document.getElementById("auth-banner");
    if (banner) banner.hidden = false;
  }
  if (authRequired && !token()) showAuthBanner();

  function authHeaders() {
    const t = token();
    return t ? { Authorization: "Bearer " + t } : {};
  }

  // For <img src> and other URLs that cannot carry a header.
  function withToken(url) {
    const t = token();
    if (!t) return url;
    return url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(t);
  }

  async function api(url, options) {
    const opts = Object.assign({}, options || {});
    opts.headers = Object.assign({}, opts.headers || {}, authHeaders());
    opts.cache = "no-store";
    const resp = await fetch(url, opts);
    let data = null;
    try {
      data = await resp.json();
    } catch (e) {
      data = { error: "HTTP " + resp.status + " (no JSON body)" };
    }
    if (resp.status === 401) showAuthBanner();
    if (!resp.ok) {
      const err = new Error((data && data.error) || "HTTP " + resp.status);
      err.status = resp.status;
      throw err;
    }
    return data;
  }

  // One colour per label: the server overlay's, else fixed by the label's position in the list.
  const PALETTE = ["#e5484d", "#8e4ec6", "#6e56cf", "#f5d90a", "#0091ff", "#f76808", "#30a46c",
                   "#12a594", "#d6409f", "#889096"];
  function colorFor(label) {
    if (labelColors[label]) return labelColors[label];
    const i = labels.indexOf(label);
    return PALETTE[(i < 0 ? labels.length : i) % PALETTE.length];
  }

  // Boxes and labels for `faces` (API records in image pixels) on a 2D context whose canvas
  // pixels are `scale` times the image's pixels.
  function drawFaces(ctx, faces, scale) {
    const lw = Math.max(2, Math.round(Math.max(ctx.canvas.width, ctx.canvas.height) / 300));
    const fontPx = Math.max(12, Math.round(lw * 7));
    ctx.font = "600 " + fontPx + "px system-ui, sans-serif";
    ctx.textBaseline = "top";
    for (const face of faces) {
      const [x1, y1, x2, y2] = face.box.map((v) => v * scale);
      const color = colorFor(face.emotion);
      ctx.lineWidth = lw;
      ctx.strokeStyle = color;
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      const text = face.emotion + " " + Math.round(face.confidence * 100) + "%";
      const tw = ctx.measureText(text).width + 2 * lw;
      const th = fontPx + 2 * lw;
      const ty = y1 - th >= 0 ? y1 - th : y1;
      ctx.fillStyle = color;
      ctx.fillRect(x1 - lw / 2, ty, tw, th);
      ctx.fillStyle = "#111";
      ctx.fillText(text, x1 + lw / 2, ty + lw);
    }
  }

  // A face's name on its card: its track id ("#7", as on the annotated stream) when it has one.
  function faceName(face, i) {
    return typeof face.id === "number" && face.id >= 0 ? "#" + face.id : "Face " + (i + 1);
  }

  // Per-face cards: the winning label and one probability bar per label.
  function renderFaces(container, faces, emptyText) {
    container.replaceChildren();
    if (!faces.length) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = emptyText || "No face found.";
      container.appendChild(p);
      return;
    }
    faces.forEach((face, i) => {
      const card = document.createElement("article");
      card.className = "face";
      card.dataset.emotion = face.emotion;
      if (typeof face.id === "number") card.dataset.trackId = String(face.id);
      const h = document.createElement("h2");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = colorFor(face.emotion);
      h.append(swatch, faceName(face, i) + ": ");
      const strong = document.createElement("strong");
      strong.className = "emotion";
      strong.textContent = face.emotion;
      h.append(strong, " " + Math.round(face.confidence * 100) + "%");
      card.appendChild(h);
      for (const label of Object.keys(face.probs)) {
        const p = face.probs[label];
        const row = document.createElement("div");
        row.className = "bar-row";
        const name = document.createElement("span");
        name.className = "bar-label";
        name.textContent = label;
        const bar = document.createElement("span");
        bar.className = "bar";
        const fill = document.createElement("span");
        fill.className = "bar-fill";
        fill.style.width = (100 * p).toFixed(1) + "%";
        fill.style.background = colorFor(label);
        bar.appendChild(fill);
        const value = document.createElement("span");
        value.className = "bar-value";
        value.textContent = (100 * p).toFixed(1) + "%";
        row.append(name, bar, value);
        card.appendChild(row);
      }
      container.appendChild(card);
    });
  }

  window.ferEdge = { api, withToken, authHeaders, drawFaces, renderFaces, faceName, colorFor, labels };
})();
