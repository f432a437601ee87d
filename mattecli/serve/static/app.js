// The page of `matte serve`: photos go to POST /v1/matte (two at a time), each result appears beside its
// original as it finishes, and "Download all" packs the results into a .zip made here (no libraries, nothing
// fetched from anywhere but this server).
"use strict";

const PARALLEL = 2;
const MAX_RETRIES = 30;

const $ = (selector) => document.querySelector(selector);
const items = [];
let running = 0;

function settings() {
  const output = $("#output").value;
  const fields = { output, format: $("#format").value, decontaminate: $("#decontaminate").checked ? "true" : "false" };
  if (output === "composite") fields.bg = $("#bg").value;
  if (output === "cutout" && fields.format === "jpg") fields.format = "png"; // JPEG cannot be transparent
  return fields;
}

function addFiles(files) {
  for (const file of files) {
    const card = $("#card").content.firstElementChild.cloneNode(true);
    card.querySelector(".name").textContent = file.name;
    card.querySelector(".name").title = file.name;
    card.querySelector(".original").src = URL.createObjectURL(file);
    $("#results").append(card);
    items.push({ file, card, state: "waiting", version: 0, blob: null, url: null, filename: null });
  }
  updateButtons();
  pump();
}

function pump() {
  while (running < PARALLEL) {
    const item = items.find((candidate) => candidate.state === "waiting");
    if (!item) break;
    running += 1;
    item.state = "working";
    matte(item).finally(() => {
      running -= 1;
      updateButtons();
      pump();
    });
  }
}

async function matte(item) {
  const version = item.version;
  const fields = settings();
  setStatus(item, "matting…");
  const started = performance.now();
  for (let attempt = 0; ; attempt += 1) {
    const form = new FormData();
    form.append("image", item.file, item.file.name);
    for (const [key, value] of Object.entries(fields)) form.append(key, value);
    let response;
    try {
      response = await fetch("/v1/matte", { method: "POST", body: form });
    } catch (error) {
      return fail(item, version, "the server cannot be reached");
    }
    if (response.status === 503 && attempt < MAX_RETRIES) {
      const wait = Number(response.headers.get("Retry-After")) || 1;
      setStatus(item, "server busy, retrying…");
      await new Promise((resolve) => setTimeout(resolve, wait * 1000));
      continue;
    }
    if (!response.ok) {
      let message = `HTTP ${response.status}`;
      try {
        message = (await response.json()).error || message;
      } catch (error) {
        // not JSON: keep the status
      }
      return fail(item, version, message);
    }
    const blob = await response.blob();
    if (item.version !== version) return; // the settings changed meanwhile: a newer request is queued
    return show(item, blob, filenameOf(response, item.file.name, fields), fields, performance.now() - started);
  }
}

function show(item, blob, filename, fields, milliseconds) {
  if (item.url) URL.revokeObjectURL(item.url);
  Object.assign(item, { state: "done", blob, filename, url: URL.createObjectURL(blob) });
  const image = item.card.querySelector(".cutout");
  image.src = item.url;
  image.hidden = false;
  image.classList.toggle("checker", fields.output === "cutout");
  item.card.querySelector(".kind").textContent = { cutout: "cut-out", composite: "composite", matte: "matte" }[fields.output];
  const link = item.card.querySelector(".download");
  link.href = item.url;
  link.download = filename;
  link.hidden = false;
  item.card.classList.remove("failed");
  item.card.classList.add("done");
  setStatus(item, `${(milliseconds / 1000).toFixed(1)} s`);
}

function fail(item, version, message) {
  if (item.version !== version) return;
  item.state = "failed";
  item.card.classList.remove("done");
  item.card.classList.add("failed");
  setStatus(item, message);
}

function setStatus(item, text) {
  const status = item.card.querySelector(".status");
  status.textContent = text;
  status.title = text;
}

function filenameOf(response, original, fields) {
  const header = response.headers.get("Content-Disposition") || "";
  const match = /filename="([^"]+)"/.exec(header);
  if (match) return match[1];
  const stem = original.replace(/\.[^.]*$/, "") || "image";
  return `${stem}.${{ cutout: "matte", composite: "composite", matte: "alpha" }[fields.output]}.${fields.format}`;
}

function redoAll() {
  // Requests in flight finish and are dropped (their version is old); every photo runs again.
  for (const item of items) {
    item.version += 1;
    item.state = "waiting";
    item.card.classList.remove("done", "failed");
    setStatus(item, "waiting");
  }
  updateButtons();
  pump();
}

function updateButtons() {
  $("#download-all").disabled = !items.some((item) => item.state === "done");
  $("#clear").disabled = items.length === 0;
  const done = items.filter((item) => item.state === "done").length;
  const failed = items.filter((item) => item.state === "failed").length;
  $("#notice").textContent = items.length ? `${done} of ${items.length} done${failed ? `, ${failed} failed` : ""}` : "";
}

// -- a .zip of the results, stored (PNG, WebP and JPEG are compressed already) ------------------------------

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n += 1) {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes) {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i += 1) crc = CRC_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

async function zip(entries) {
  const encoder = new TextEncoder();
  const parts = [];
  const directory = [];
  let offset = 0;
  const now = new Date();
  const time = (now.getHours() << 11) | (now.getMinutes() << 5) | (now.getSeconds() >> 1);
  const date = ((now.getFullYear() - 1980) << 9) | ((now.getMonth() + 1) << 5) | now.getDate();
  for (const { name, blob } of entries) {
    const data = new Uint8Array(await blob.arrayBuffer());
    const nameBytes = encoder.encode(name);
    const crc = crc32(data);
    const local = new DataView(new ArrayBuffer(30));
    [[0, 0x04034b50, 4], [4, 20, 2], [6, 0x0800, 2], [8, 0, 2], [10, time, 2], [12, date, 2], [14, crc, 4],
      [18, data.length, 4], [22, data.length, 4], [26, nameBytes.length, 2], [28, 0, 2]]
      .forEach(([at, value, size]) => (size === 4 ? local.setUint32(at, value, true) : local.setUint16(at, value, true)));
    const central = new DataView(new ArrayBuffer(46));
    [[0, 0x02014b50, 4], [4, 20, 2], [6, 20, 2], [8, 0x0800, 2], [10, 0, 2], [12, time, 2], [14, date, 2],
      [16, crc, 4], [20, data.length, 4], [24, data.length, 4], [28, nameBytes.length, 2], [30, 0, 2],
      [32, 0, 2], [34, 0, 2], [36, 0, 2], [38, 0, 4], [42, offset, 4]]
      .forEach(([at, value, size]) => (size === 4 ? central.setUint32(at, value, true) : central.setUint16(at, value, true)));
    parts.push(local, nameBytes, data);
    directory.push(central, nameBytes);
    offset += 30 + nameBytes.length + data.length;
  }
  const size = directory.reduce((total, part) => total + part.byteLength, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, entries.length, true);
  end.setUint16(10, entries.length, true);
  end.setUint32(12, size, true);
  end.setUint32(16, offset, true);
  return new Blob([...parts, ...directory, end], { type: "application/zip" });
}

async function downloadAll() {
  const used = new Set();
  const entries = [];
  for (const item of items) {
    if (item.state !== "done") continue;
    let name = item.filename;
    for (let n = 2; used.has(name); n += 1) name = item.filename.replace(/(\.[^.]+\.[^.]+)$/, `-${n}$1`);
    used.add(name);
    entries.push({ name, blob: item.blob });
  }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await zip(entries));
  link.download = "cutouts.zip";
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60000);
}

function clearAll() {
  for (const item of items) {
    URL.revokeObjectURL(item.card.querySelector(".original").src);
    if (item.url) URL.revokeObjectURL(item.url);
    item.version += 1;
    item.state = "cleared";
  }
  items.length = 0;
  $("#results").replaceChildren();
  updateButtons();
}

// -- wiring --------------------------------------------------------------------------------------------------

function syncBackground() {
  const composite = $("#output").value === "composite";
  $("#bg").disabled = !composite;
  $("#bg-label").classList.toggle("off", !composite);
  const jpeg = $("#format").querySelector('option[value="jpg"]');
  jpeg.disabled = $("#output").value === "cutout";
  if (jpeg.disabled && $("#format").value === "jpg") $("#format").value = "png";
}

document.addEventListener("DOMContentLoaded", () => {
  const drop = $("#drop");
  $("#files").addEventListener("change", (event) => {
    addFiles(event.target.files);
    event.target.value = "";
  });
  for (const name of ["dragenter", "dragover"]) {
    document.addEventListener(name, (event) => {
      event.preventDefault();
      drop.classList.add("over");
    });
  }
  document.addEventListener("dragleave", (event) => {
    if (!event.relatedTarget) drop.classList.remove("over");
  });
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer && event.dataTransfer.files.length) addFiles(event.dataTransfer.files);
  });
  for (const id of ["#output", "#format", "#decontaminate"]) {
    $(id).addEventListener("change", () => {
      syncBackground();
      redoAll();
    });
  }
  $("#bg").addEventListener("change", redoAll);
  $("#download-all").addEventListener("click", downloadAll);
  $("#clear").addEventListener("click", clearAll);
  syncBackground();
  fetch("/v1/models")
    .then((response) => response.json())
    .then(({ models }) => {
      const model = models[0];
      $("#model").textContent = `model ${model.id} (${model.config}, ${model.max_size} px) on ${model.device}`;
    })
    .catch(() => ($("#model").textContent = "the server cannot be reached"));
});
