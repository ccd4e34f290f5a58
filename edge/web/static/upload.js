// Upload page: send the chosen image to /api/predict and draw the answer over it.
"use strict";

(function () {
  const fe = window.ferEdge;
  const input = document.getElementById("file");
  const drop = document.getElementById("drop");
  const status = document.getElementById("status");
  const canvas = document.getElementById("canvas");
  const facesBox = document.getElementById("faces");
  const maxBytes = Number(document.body.dataset.maxUploadBytes || 0);

  function setStatus(text, isError) {
    status.textContent = text;
    status.classList.toggle("error", !!isError);
  }

  // No image or result from an earlier file may stay on screen under a new file's name.
  function clearResult() {
    canvas.width = 0;  // a 0-wide canvas hides its stage (app.css)
    canvas.height = 0;
    delete canvas.dataset.result;
    delete canvas.dataset.faces;
    delete canvas.dataset.scale;
    facesBox.replaceChildren();
  }

  let latest = 0;  // only the most recent file's answer may be shown

  async function analyse(file) {
    const mine = ++latest;
    clearResult();
    canvas.dataset.state = "busy";
    if (maxBytes && file.size > maxBytes) {
      // The server would answer 413 anyway; say it before uploading megabytes for nothing.
      setStatus(file.name + " is " + (file.size / 1048576).toFixed(1) + " MB: the limit is " +
                (maxBytes / 1048576).toFixed(0) + " MB.", true);
      canvas.dataset.state = "error";
      return;
    }
    setStatus("Analysing " + file.name + "…");
    const form = new FormData();
    form.append("image", file, file.name);
    let result;
    try {
      result = await fe.api("/api/predict", { method: "POST", body: form });
    } catch (err) {
      if (mine !== latest) return;
      setStatus(file.name + ": " + err.message, true);
      clearResult();
      canvas.dataset.state = "error";
      return;
    }
    let bitmap;
    try {
      bitmap = await createImageBitmap(file);
    } catch (err) {
      bitmap = null;  // the server decoded it but this browser cannot show it
    }
    if (mine !== latest) return;  // another file was chosen meanwhile
    // Draw at most 1280 px wide; boxes scale with the image.
    const scale = Math.min(1, 1280 / result.width);
    canvas.width = Math.round(result.width * scale);
    canvas.height = Math.round(result.height * scale);
    const ctx = canvas.getContext("2d");
    if (bitmap) {
      ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    } else {
      ctx.fillStyle = "#333";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
    }
    fe.drawFaces(ctx, result.faces, scale);
    canvas.dataset.faces = String(result.faces.length);
    canvas.dataset.scale = String(scale);
    canvas.dataset.result = JSON.stringify(result.faces);
    canvas.dataset.state = "done";
    fe.renderFaces(facesBox, result.faces, "No face found in this image.");
    const n = result.faces.length;
    setStatus(file.name + ": " + result.width + "×" + result.height + ", " + n + " face" +
              (n === 1 ? "" : "s") + " in " + result.latency_ms.toFixed(0) + " ms.");
  }

  input.addEventListener("change", () => {
    if (input.files && input.files[0]) analyse(input.files[0]);
  });
  ["dragenter", "dragover"].forEach((ev) => drop.addEventListener(ev, (e) => {
    e.preventDefault();
    drop.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((ev) => drop.addEventListener(ev, () => drop.classList.remove("over")));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer.files && e.dataTransfer.files[0]) analyse(e.dataTransfer.files[0]);
  });
})();
