// The games page: a chunked, resumable upload of a whole game (games/chunked.py), and
// the plays of every game, filtered and sorted, to make a reel from.
//
// The upload's id is remembered in localStorage under the file's name, size and date,
// so picking the same file again after a pause, a lost connection or a closed tab asks
// the server which chunks it has and sends only the others. On a phone: offline (the
// `offline` event, or a failed request while navigator.onLine is false) pauses the upload
// by itself and `online` resumes it, from the chunk that did not arrive; a retry's wait is
// cut short when the connection comes back or the tab is shown again (the phone woke).

import { api, ApiError, csrfToken } from "/static/js/api.js";
import { formatTime } from "/static/js/player.js";
import { $, el } from "/static/js/util.js";

const RETRY_DELAYS_MS = [1000, 2000, 5000, 10000];
const memoryKey = (file) => `reeleditor:game-upload:${file.name}:${file.size}:${file.lastModified}`;

let current = null; // {upload, file, paused, cancelled}

// Resolves when the connection may be back: `online`, or the page shown again.
function wake() {
  return new Promise((resolve) => {
    const done = () => {
      window.removeEventListener("online", done);
      document.removeEventListener("visibilitychange", shown);
      resolve();
    };
    const shown = () => {
      if (document.visibilityState === "visible") done();
    };
    window.addEventListener("online", done);
    document.addEventListener("visibilitychange", shown);
  });
}

// Offline: wait for the connection, however long (no retry is spent on it).
async function waitOnline() {
  while (!navigator.onLine && !(current && current.cancelled)) {
    show("Offline: the upload goes on by itself when the connection is back.");
    await Promise.race([wake(), new Promise((resolve) => setTimeout(resolve, 5000))]);
  }
}

function show(text) {
  $("game-upload-text").textContent = text;
}

function showError(message) {
  const box = $("game-upload-error");
  box.textContent = message;
  box.hidden = !message;
}

function formatBytes(n) {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${Math.round(n / 1024)} KB`;
}

function formatDuration(seconds) {
  if (!Number.isFinite(seconds)) return "";
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  return m ? `${m} min ${s} s` : `${s} s`;
}

async function findOrBegin(file) {
  const remembered = localStorage.getItem(memoryKey(file));
  if (remembered) {
    try {
      return await api.get(`/api/games/uploads/${remembered}`);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404) throw err;
      localStorage.removeItem(memoryKey(file)); // finished or swept: start again
    }
  }
  const upload = await api.post("/api/games/uploads", { filename: file.name, size: file.size });
  localStorage.setItem(memoryKey(file), upload.id);
  return upload;
}

async function sha256(blob) {
  if (!crypto.subtle) return null; // only in secure contexts; the length still checks
  const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function sendChunk(upload, file, index) {
  const start = index * upload.chunk_size;
  const blob = file.slice(start, Math.min(start + upload.chunk_size, file.size));
  const headers = { "X-CSRFToken": csrfToken(), "Content-Type": "application/octet-stream" };
  const digest = await sha256(blob);
  if (digest) headers["X-Chunk-SHA256"] = digest;
  for (let attempt = 0; ; attempt++) {
    await waitOnline();
    let response;
    try {
      response = await fetch(`/api/games/uploads/${upload.id}/chunks/${index}`, {
        method: "PUT", headers, body: blob, credentials: "same-origin",
      });
    } catch (err) {
      response = null; // the network: wait and try again
    }
    if (response && response.ok) return blob.size;
    if (response && response.status >= 400 && response.status < 500) {
      const data = await response.json().catch(() => ({}));
      throw new ApiError(data.error || `The upload was refused (${response.status}).`,
                         data.code || `http_${response.status}`, response.status, data);
    }
    if (!navigator.onLine) {
      attempt -= 1; // went offline: wait for the connection, not a retry
      continue;
    }
    if (attempt >= RETRY_DELAYS_MS.length) {
      throw new ApiError("The connection was lost. Pick the same file again to resume.", "network", 0);
    }
    show(`Connection lost, retrying in ${RETRY_DELAYS_MS[attempt] / 1000} s…`);
    await Promise.race([wake(), new Promise((resolve) => setTimeout(resolve, RETRY_DELAYS_MS[attempt]))]);
  }
}

async function run(file, fields) {
  const upload = await findOrBegin(file);
  current = { upload, file, paused: false, cancelled: false };
  $("game-upload-progress").hidden = false;
  const have = new Set(upload.received);
  let sent = upload.bytes_received;
  const startedAt = performance.now();
  let sentNow = 0;
  const bar = $("game-upload-bar");
  bar.value = (100 * sent) / file.size;
  for (let index = 0; index < upload.chunk_count; index++) {
    if (have.has(index)) continue;
    while (current.paused && !current.cancelled) await new Promise((r) => setTimeout(r, 200));
    if (current.cancelled) return null;
    await waitOnline();
    const bytes = await sendChunk(upload, file, index);
    sent += bytes;
    sentNow += bytes;
    const seconds = (performance.now() - startedAt) / 1000;
    const speed = sentNow / Math.max(seconds, 0.001);
    bar.value = (100 * sent) / file.size;
    show(`${formatBytes(sent)} of ${formatBytes(file.size)} · ${formatBytes(speed)}/s · ` +
         `${formatDuration((file.size - sent) / speed)} left`);
  }
  show("Putting the game together…");
  const game = await api.post(`/api/games/uploads/${upload.id}/complete`, fields);
  localStorage.removeItem(memoryKey(file));
  return game;
}

$("game-upload-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  const file = $("game-file").files[0];
  if (!file) return;
  const fields = { opponent: $("game-opponent").value, played_on: $("game-date").value || null };
  if ($("game-name").value.trim()) fields.name = $("game-name").value.trim();
  $("game-upload-start").disabled = true;
  try {
    const game = await run(file, fields);
    if (game) window.location.href = `/games/${game.id}/`;
  } catch (err) {
    showError(err.error || String(err));
  } finally {
    $("game-upload-start").disabled = false;
  }
});

$("game-upload-pause").addEventListener("click", () => {
  if (!current) return;
  current.paused = !current.paused;
  $("game-upload-pause").textContent = current.paused ? "Resume" : "Pause";
  if (current.paused) show("Paused. Resume here, or pick the same file again later.");
});

$("game-upload-cancel").addEventListener("click", async () => {
  if (!current) return;
  current.cancelled = true;
  localStorage.removeItem(memoryKey(current.file));
  await api.del(`/api/games/uploads/${current.upload.id}`).catch(() => {});
  $("game-upload-progress").hidden = true;
  show("");
});

// --- plays across games, and a reel made from the selected ones ---------------------------

const selected = []; // play ids in the order they were ticked: the reel's order

async function findPlays() {
  const query = new URLSearchParams({ sort: $("filter-sort").value });
  if ($("filter-tag").value.trim()) query.set("tag", $("filter-tag").value.trim());
  if ($("filter-rating").value) query.set("min_rating", $("filter-rating").value);
  const { plays } = await api.get(`/api/plays?${query}`);
  $("plays-found").replaceChildren(...plays.map(foundPlay));
  if (!plays.length) $("plays-found").append(el("li", { class: "muted small", text: "No plays match." }));
}

function foundPlay(play) {
  const box = el("input", {
    type: "checkbox",
    "data-testid": "play-select",
    "aria-label": `Use ${play.name || "this play"} in the reel`,
    checked: selected.includes(play.id),
    onchange: (e) => {
      const at = selected.indexOf(play.id);
      if (e.target.checked && at < 0) selected.push(play.id);
      if (!e.target.checked && at >= 0) selected.splice(at, 1);
    },
  });
  const rating = play.rating ? ` · ${"★".repeat(play.rating)}` : "";
  const tags = play.tags.length ? ` · ${play.tags.join(", ")}` : "";
  return el(
    "li",
    { class: "play-item", "data-testid": "found-play", "data-play-id": String(play.id) },
    el("label", {}, box, ` ${play.name || "Play"} — ${play.game_name}, ` +
      `${formatTime(play.start)}–${formatTime(play.end)}${rating}${tags}`),
    el("a", { href: `/games/${play.game_id}/`, text: "Open game" }),
  );
}

// A new reel needs a name and a shape; adding to an existing project needs neither.
$("reel-target").addEventListener("change", () => {
  const adding = Boolean($("reel-target").value);
  $("reel-name").disabled = $("reel-aspect").disabled = adding;
});

for (const id of ["filter-tag", "filter-rating", "filter-sort"]) {
  $(id).addEventListener("change", () => findPlays().catch(() => {}));
}

$("reel-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = $("reel-error");
  error.hidden = true;
  if (!selected.length) {
    error.textContent = "Tick the plays the reel should hold, in the order they should play.";
    error.hidden = false;
    return;
  }
  try {
    const target = $("reel-target").value;
    if (target) {
      await api.post(`/api/projects/${target}/clips/from-plays`, { play_ids: selected });
      window.location.href = `/projects/${target}/`;
      return;
    }
    const project = await api.post("/api/projects", {
      name: $("reel-name").value,
      aspect_ratio: $("reel-aspect").value,
      play_ids: selected,
    });
    window.location.href = `/projects/${project.id}/`;
  } catch (err) {
    error.textContent = err.error || String(err);
    error.hidden = false;
  }
});

findPlays().catch(() => {});
