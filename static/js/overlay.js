// Overlay mode: highlight regions on the working video, a live preview, the final export.
//
// The page (templates/projects/overlay.html) renders the frame; this script owns the
// editor. Regions are edited locally and saved as a whole (PUT highlights, debounced);
// the preview on the <canvas> draws every effect with the same keyframe interpolation
// (interpolation.js) and the same arithmetic as the final render (exports/overlay.py):
//
//   dim_outside      outside the ellipse RGB * 0.35   = a black layer at alpha 0.65
//   brighten_inside  c + (255 - c) * 0.35              = a white layer at alpha 0.35
//   soft edge        a linear ramp `feather` px either side of the ellipse
//   stroke           the outline in the region's colour, `stroke_width` px wide
//
// Alpha compositing of those layers is exactly the render's blend, spotlights light up
// their union, and brightening applies after dimming, as in the render.
//
// Coordinates: regions are stored in working-video pixels and seconds; the stage is the
// video scaled to fit, so a CSS pixel is `scale` video pixels.

import { api, ApiError } from "/static/js/api.js";
import { createExportProgress } from "/static/js/exportprogress.js";
import { ELLIPSE_KEYS, KeyframePath } from "/static/js/interpolation.js";

const DEFAULT_SPAN = 1.5; // seconds a new region lasts
const DEFAULT_COLOR = "#ffd400";
const DEFAULT_STROKE = 4;
const MAX_STROKE = 40;
const SAVE_DELAY_MS = 600;
const DIM_FACTOR = 0.35; // exports/overlay.py DIM_FACTOR
const BRIGHTEN_AMOUNT = 0.35; // exports/overlay.py BRIGHTEN_AMOUNT
const EFFECTS = { dim_outside: "Spotlight", brighten_inside: "Brighten" };
const DRAG_THRESHOLD_PX = 2; // a smaller move is a click, not an edit

const data = JSON.parse(document.getElementById("project-data").textContent);
const projectId = data.id;
const wv = data.working_video;
const W = wv.width;
const H = wv.height;
const DURATION = wv.duration;
const FPS = wv.fps > 0 ? wv.fps : 30;
// The render's soft edge: max(2, round(min(w, h) / 270)) px either side (a box blur).
const FEATHER = Math.max(2, Math.round(Math.min(W, H) / 270));
const HIGHLIGHTS_URL = `/api/projects/${projectId}/highlights`;

const $ = (id) => document.getElementById(id);
const video = $("overlay-video");
const stage = $("stage");
const frame = $("video-frame");
const canvas = $("ov-preview");
const ctx = canvas.getContext("2d");
const handles = $("ov-handles");
const playButton = $("overlay-play");
const timecode = $("timecode");
const scrub = $("overlay-scrub");
const deco = $("scrub-deco");
const keyframeList = $("keyframe-list");
const keyframeHint = $("keyframe-hint");
const addButton = $("add-region");
const list = $("regions");
const emptyNote = $("empty-regions");
const loadError = $("load-error");
const saveStatus = $("save-status");
const exportButton = $("final-export-button");
const finalDone = $("final-done");

// --- State -----------------------------------------------------------------------------

let regions = []; // {key, start, end, effect, color, stroke_width, keyframes: [{time, x, y, rx, ry}]}
let selectedKey = null;
let nextKey = 1;
let revision = 0; // bumped by every edit
let savedRevision = 0; // the revision the server has
let saveTimer = null;
let inFlight = null;
let scrubbing = false;
let dragging = null;

const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);
const round = (v, digits) => Math.round(v * 10 ** digits) / 10 ** digits;
const fmt = (t) => t.toFixed(2);
// 0:01.25, like the framing editor.
function formatTime(t) {
  const m = Math.floor(t / 60);
  return `${m}:${(t - m * 60).toFixed(2).padStart(5, "0")}`;
}

const pathCache = new WeakMap(); // keyframes array -> KeyframePath (arrays are replaced on edit)
function pathOf(region) {
  let path = pathCache.get(region.keyframes);
  if (!path) {
    path = new KeyframePath(region.keyframes, ELLIPSE_KEYS);
    pathCache.set(region.keyframes, path);
  }
  return path;
}

const selected = () => regions.find((r) => r.key === selectedKey) || null;
const now = () => video.currentTime || 0;
// The render draws a region on frames with start <= t < end.
const activeAt = (region, t) => region.start <= t && t < region.end;
// Its ellipse can be edited anywhere in its span, end included.
const editableAt = (region, t) => region.start - 1e-3 <= t && t <= region.end + 1e-3;

function fromServer(region) {
  return {
    key: nextKey++,
    start: region.start,
    end: region.end,
    effect: region.effect,
    color: region.color,
    stroke_width: region.stroke_width,
    keyframes: region.keyframes.map((k) => ({ time: k.time, x: k.x, y: k.y, rx: k.rx, ry: k.ry })),
  };
}

function toServer(region) {
  return {
    start: region.start,
    end: region.end,
    effect: region.effect,
    color: region.color,
    stroke_width: region.stroke_width,
    keyframes: region.keyframes,
  };
}

function cleanShape(shape) {
  return {
    x: round(clamp(shape.x, 0, W), 2),
    y: round(clamp(shape.y, 0, H), 2),
    rx: round(clamp(shape.rx, 1, W), 2),
    ry: round(clamp(shape.ry, 1, H), 2),
  };
}

// Create or update the keyframe at time t (one within half a frame counts as "at t").
function setKeyframe(region, t, shape) {
  const time = round(clamp(t, region.start, region.end), 3);
  const keyframes = region.keyframes.slice();
  const index = keyframes.findIndex((k) => Math.abs(k.time - time) <= 0.5 / FPS);
  if (index >= 0) {
    keyframes[index] = { time: keyframes[index].time, ...cleanShape(shape) };
  } else {
    keyframes.push({ time, ...cleanShape(shape) });
    keyframes.sort((a, b) => a.time - b.time);
  }
  region.keyframes = keyframes;
}

const keyframeAt = (region, t) => region.keyframes.find((k) => Math.abs(k.time - t) <= 0.5 / FPS);

// Change a region's span and keep its keyframes inside it: keyframes outside are
// replaced by one at the new boundary holding what the path showed there, so the
// motion inside the span does not change.
function setSpan(region, start, end) {
  const path = pathOf(region);
  const kept = region.keyframes.filter((k) => k.time >= start && k.time <= end);
  const cutBefore = region.keyframes.some((k) => k.time < start);
  const cutAfter = region.keyframes.some((k) => k.time > end);
  if ((cutBefore || kept.length === 0) && !(kept.length && kept[0].time === start)) {
    kept.unshift({ time: start, ...cleanShape(path.at(start)) });
  }
  if (cutAfter && kept[kept.length - 1].time !== end) {
    kept.push({ time: end, ...cleanShape(path.at(end)) });
  }
  region.start = start;
  region.end = end;
  region.keyframes = kept;
}

// --- Saving ----------------------------------------------------------------------------

// kind: "ok" (saved), "pending", "error" (app.css styles them like the framing editor's).
function setSaveStatus(text, kind) {
  saveStatus.textContent = text;
  saveStatus.dataset.kind = kind;
}

function edited() {
  revision += 1;
  setSaveStatus("Unsaved changes", "pending");
  clearTimeout(saveTimer);
  saveTimer = setTimeout(() => flush(), SAVE_DELAY_MS);
}

// Save until the server has the latest revision. Resolves true when saved.
async function flush() {
  clearTimeout(saveTimer);
  saveTimer = null;
  while (revision !== savedRevision) {
    if (inFlight) {
      await inFlight.catch(() => {});
      continue;
    }
    const sending = revision;
    setSaveStatus("Saving…", "pending");
    inFlight = api.put(HIGHLIGHTS_URL, { regions: regions.map(toServer) });
    try {
      await inFlight;
      savedRevision = sending;
    } catch (err) {
      const text = err instanceof ApiError ? err.error : "Could not save.";
      setSaveStatus(`Not saved: ${text} `, "error");
      const retry = document.createElement("button");
      retry.type = "button";
      retry.className = "link";
      retry.dataset.testid = "save-retry";
      retry.textContent = "Retry";
      retry.addEventListener("click", () => flush());
      saveStatus.append(retry);
      return false;
    } finally {
      inFlight = null;
    }
  }
  setSaveStatus("Saved", "ok");
  return true;
}

window.addEventListener("beforeunload", (event) => {
  if (revision !== savedRevision) {
    flush();
    event.preventDefault();
    event.returnValue = "";
  }
});

// --- Stage geometry --------------------------------------------------------------------

// Fit the video frame (video, preview, handles) into the stage at the video's shape.
function fitStage() {
  const scale = Math.min(stage.clientWidth / W, stage.clientHeight / H);
  if (!(scale > 0)) return;
  frame.style.width = `${Math.floor(W * scale)}px`;
  frame.style.height = `${Math.floor(H * scale)}px`;
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.max(1, Math.round(frame.clientWidth * ratio));
  canvas.height = Math.max(1, Math.round(frame.clientHeight * ratio));
  refresh();
}

const cssScale = () => frame.clientWidth / W; // CSS px per video px

function toVideo(event) {
  const box = frame.getBoundingClientRect();
  const scale = box.width / W;
  return { x: (event.clientX - box.left) / scale, y: (event.clientY - box.top) / scale };
}

// --- The preview -----------------------------------------------------------------------

// Fill an ellipse whose edge fades over `feather` px either side, like the render's mask.
function softEllipse(context, shape, feather, inner, outer) {
  const radius = Math.sqrt(shape.rx * shape.ry);
  const f = feather / radius;
  context.save();
  context.translate(shape.x, shape.y);
  context.scale(shape.rx, shape.ry);
  const gradient = context.createRadialGradient(0, 0, 0, 0, 0, 1 + f);
  gradient.addColorStop(0, inner);
  gradient.addColorStop(Math.max(0, (1 - f) / (1 + f)), inner);
  gradient.addColorStop(1, outer);
  context.fillStyle = gradient;
  context.beginPath();
  context.arc(0, 0, 1 + f, 0, Math.PI * 2);
  context.fill();
  context.restore();
}

let dimLayer = null;

function draw(t) {
  const s = canvas.width / W; // device px per video px
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const shapes = regions.filter((r) => activeAt(r, t)).map((r) => ({ r, e: pathOf(r).at(t) }));
  if (shapes.length === 0) return;
  const spots = shapes.filter(({ r }) => r.effect === "dim_outside");
  if (spots.length) {
    // Dim everything on a layer, cut each spotlight out of it, lay it over the video.
    if (!dimLayer) dimLayer = document.createElement("canvas");
    if (dimLayer.width !== canvas.width || dimLayer.height !== canvas.height) {
      dimLayer.width = canvas.width;
      dimLayer.height = canvas.height;
    }
    const layer = dimLayer.getContext("2d");
    layer.setTransform(1, 0, 0, 1, 0, 0);
    layer.globalCompositeOperation = "source-over";
    layer.clearRect(0, 0, dimLayer.width, dimLayer.height);
    layer.fillStyle = `rgba(0, 0, 0, ${1 - DIM_FACTOR})`;
    layer.fillRect(0, 0, dimLayer.width, dimLayer.height);
    layer.globalCompositeOperation = "destination-out";
    layer.setTransform(s, 0, 0, s, 0, 0);
    for (const { e } of spots) softEllipse(layer, e, FEATHER, "rgba(0,0,0,1)", "rgba(0,0,0,0)");
    ctx.drawImage(dimLayer, 0, 0);
  }
  ctx.setTransform(s, 0, 0, s, 0, 0);
  for (const { r, e } of shapes) {
    if (r.effect === "brighten_inside") {
      softEllipse(ctx, e, FEATHER, `rgba(255,255,255,${BRIGHTEN_AMOUNT})`, "rgba(255,255,255,0)");
    }
  }
  for (const { r, e } of shapes) {
    if (r.stroke_width > 0) {
      ctx.beginPath();
      ctx.ellipse(e.x, e.y, e.rx, e.ry, 0, 0, Math.PI * 2);
      ctx.lineWidth = r.stroke_width;
      ctx.strokeStyle = r.color;
      ctx.stroke();
    }
  }
}

// --- Handles: the selected region's ellipse ---------------------------------------------

function renderHandles(t) {
  const region = selected();
  let ellipse = handles.querySelector(".ov-ellipse");
  if (!region || !editableAt(region, t)) {
    if (ellipse) ellipse.remove();
    return;
  }
  if (!ellipse) {
    ellipse = document.createElement("div");
    ellipse.className = "ov-ellipse";
    ellipse.dataset.testid = "region-ellipse";
    ellipse.tabIndex = 0;
    ellipse.setAttribute("role", "group");
    ellipse.setAttribute(
      "aria-label",
      "Highlight ellipse: drag to move, arrow keys move it, + and - resize it",
    );
    ellipse.innerHTML = `
      <span class="ov-handle ov-handle-e" data-handle="rx" data-testid="region-ellipse-handle-rx" title="Width"></span>
      <span class="ov-handle ov-handle-s" data-handle="ry" data-testid="region-ellipse-handle-ry" title="Height"></span>
      <span class="ov-handle ov-handle-corner" data-handle="both" data-testid="region-ellipse-handle" title="Resize"></span>`;
    ellipse.addEventListener("pointerdown", startDrag);
    ellipse.addEventListener("keydown", ellipseKey);
    handles.append(ellipse);
  }
  const e = pathOf(region).at(t);
  ellipse.style.left = `${((e.x - e.rx) / W) * 100}%`;
  ellipse.style.top = `${((e.y - e.ry) / H) * 100}%`;
  ellipse.style.width = `${((2 * e.rx) / W) * 100}%`;
  ellipse.style.height = `${((2 * e.ry) / H) * 100}%`;
  ellipse.style.setProperty("--region-color", region.color);
  ellipse.classList.toggle("on-keyframe", Boolean(keyframeAt(region, t)));
  ellipse.dataset.x = round(e.x, 2);
  ellipse.dataset.y = round(e.y, 2);
  ellipse.dataset.rx = round(e.rx, 2);
  ellipse.dataset.ry = round(e.ry, 2);
}

function startDrag(event) {
  if (event.button !== 0) return;
  const region = selected();
  if (!region) return;
  event.preventDefault();
  event.stopPropagation();
  video.pause();
  const t = round(clamp(now(), region.start, region.end), 3);
  const target = event.currentTarget;
  target.setPointerCapture(event.pointerId);
  target.focus({ preventScroll: true });
  dragging = {
    region,
    t,
    mode: event.target.dataset.handle || "move",
    origin: toVideo(event),
    shape: pathOf(region).at(t),
    moved: false,
    pointerId: event.pointerId,
  };
  target.addEventListener("pointermove", dragMove);
  target.addEventListener("pointerup", endDrag);
  target.addEventListener("pointercancel", endDrag);
}

function dragMove(event) {
  if (!dragging || event.pointerId !== dragging.pointerId) return;
  const { shape, origin, mode, region, t } = dragging;
  const p = toVideo(event);
  const dx = p.x - origin.x;
  const dy = p.y - origin.y;
  if (!dragging.moved && Math.hypot(dx, dy) * cssScale() < DRAG_THRESHOLD_PX) return;
  dragging.moved = true;
  const next = { ...shape };
  if (mode === "move") {
    next.x = shape.x + dx;
    next.y = shape.y + dy;
  }
  if (mode === "rx" || mode === "both") next.rx = Math.abs(p.x - shape.x);
  if (mode === "ry" || mode === "both") next.ry = Math.abs(p.y - shape.y);
  setKeyframe(region, t, next);
  refresh();
}

function endDrag(event) {
  const target = event.currentTarget;
  target.removeEventListener("pointermove", dragMove);
  target.removeEventListener("pointerup", endDrag);
  target.removeEventListener("pointercancel", endDrag);
  if (target.hasPointerCapture(event.pointerId)) target.releasePointerCapture(event.pointerId);
  const moved = dragging && dragging.moved;
  dragging = null;
  if (moved) {
    edited();
    renderKeyframes();
    renderTimeline();
  }
}

// Keyboard editing of the focused ellipse: arrows move (Shift: 10 px), + and - resize.
function ellipseKey(event) {
  const region = selected();
  if (!region) return;
  const step = event.shiftKey ? 10 : 1;
  const t = round(clamp(now(), region.start, region.end), 3);
  const shape = pathOf(region).at(t);
  const moves = {
    ArrowLeft: [-step, 0],
    ArrowRight: [step, 0],
    ArrowUp: [0, -step],
    ArrowDown: [0, step],
  };
  if (moves[event.key]) {
    shape.x += moves[event.key][0];
    shape.y += moves[event.key][1];
  } else if (event.key === "+" || event.key === "=") {
    shape.rx *= 1.05;
    shape.ry *= 1.05;
  } else if (event.key === "-") {
    shape.rx /= 1.05;
    shape.ry /= 1.05;
  } else {
    return;
  }
  event.preventDefault();
  event.stopPropagation();
  video.pause();
  setKeyframe(region, t, shape);
  edited();
  refresh();
  renderKeyframes();
  renderTimeline();
}

// A click on the stage selects the topmost region drawn there, or clears the selection.
handles.addEventListener("click", (event) => {
  if (event.target !== handles) return;
  const p = toVideo(event);
  const t = now();
  const hit = regions
    .filter((r) => editableAt(r, t))
    .reverse()
    .find((r) => {
      const e = pathOf(r).at(t);
      return ((p.x - e.x) / e.rx) ** 2 + ((p.y - e.y) / e.ry) ** 2 <= 1;
    });
  select(hit ? hit.key : null);
});

// --- Playback --------------------------------------------------------------------------

function refresh(t = now()) {
  draw(t);
  renderHandles(t);
  timecode.textContent = `${formatTime(t)} / ${formatTime(DURATION)}`;
  if (!scrubbing) scrub.value = String(t);
  markKeyframe(t);
}

function onFrame(_now, meta) {
  // The frame on screen: the preview follows exactly what is displayed.
  refresh(meta && typeof meta.mediaTime === "number" ? meta.mediaTime : now());
  if (!video.paused && !video.ended) scheduleFrame();
}

function scheduleFrame() {
  if (typeof video.requestVideoFrameCallback === "function") {
    video.requestVideoFrameCallback(onFrame);
  } else {
    requestAnimationFrame(() => onFrame(0, null));
  }
}

function togglePlay() {
  if (video.paused || video.ended) {
    if (video.ended || now() >= DURATION - 1e-3) video.currentTime = 0;
    video.play().catch(() => {});
  } else {
    video.pause();
  }
}

function seek(t) {
  video.currentTime = clamp(t, 0, DURATION);
  refresh(clamp(t, 0, DURATION));
}

function stepFrames(n) {
  video.pause();
  const frame = Math.round(now() * FPS) + n;
  seek(frame / FPS);
}

function updatePlayButton() {
  const playing = !video.paused && !video.ended;
  playButton.textContent = playing ? "❚❚" : "▶";
  playButton.setAttribute("aria-label", playing ? "Pause" : "Play");
}

video.addEventListener("play", () => {
  updatePlayButton();
  scheduleFrame();
});
video.addEventListener("pause", () => {
  updatePlayButton();
  refresh();
});
video.addEventListener("ended", updatePlayButton);
video.addEventListener("seeked", () => refresh());
video.addEventListener("timeupdate", () => {
  if (video.paused) refresh();
});
video.addEventListener("loadeddata", () => refresh());
playButton.addEventListener("click", togglePlay);

scrub.addEventListener("pointerdown", () => {
  scrubbing = true;
  video.pause();
});
scrub.addEventListener("pointerup", () => {
  scrubbing = false;
});
scrub.addEventListener("input", () => seek(Number(scrub.value)));
scrub.addEventListener("change", () => {
  scrubbing = false;
});

const TEXT_INPUTS = new Set(["text", "number", "search", "email", "password", "url", "tel"]);

function typingInto(target) {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable || target.tagName === "TEXTAREA" || target.tagName === "SELECT") {
    return true;
  }
  return target.tagName === "INPUT" && TEXT_INPUTS.has(target.type);
}

// The framing editor's keys: Space plays and pauses, arrows step a frame (Shift: a second).
document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
  if (typingInto(event.target)) return;
  if (event.key === " " || event.code === "Space") {
    event.preventDefault(); // not a page scroll, not a click on the focused button
    if (!event.repeat) togglePlay();
  } else if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
    const isRange = event.target instanceof HTMLInputElement && event.target.type === "range";
    if (isRange && event.target !== scrub) return;
    event.preventDefault();
    const sign = event.key === "ArrowLeft" ? -1 : 1;
    if (event.shiftKey) {
      video.pause();
      seek(now() + sign);
    } else {
      stepFrames(sign);
    }
  } else if (event.key === "Escape" && selectedKey !== null) {
    select(null);
  }
});
// Space on a focused button would also "click" it on key up.
document.addEventListener("keyup", (event) => {
  if ((event.key === " " || event.code === "Space") && event.target instanceof HTMLButtonElement) {
    event.preventDefault();
  }
});
$("frame-back").addEventListener("click", () => stepFrames(-1));
$("frame-forward").addEventListener("click", () => stepFrames(1));

// --- Timeline --------------------------------------------------------------------------

// The highlights as bars on the scrub bar; the selected one's keyframes as diamonds.
function renderTimeline() {
  deco.replaceChildren();
  for (const region of regions) {
    const bar = document.createElement("div");
    bar.className = "ov-deco-region";
    bar.classList.toggle("selected", region.key === selectedKey);
    bar.style.left = `${(region.start / DURATION) * 100}%`;
    bar.style.width = `${((region.end - region.start) / DURATION) * 100}%`;
    bar.style.setProperty("--region-color", region.color);
    deco.append(bar);
  }
  const region = selected();
  if (region) {
    for (const k of region.keyframes) {
      const diamond = document.createElement("div");
      diamond.className = "deco-kf";
      diamond.style.left = `${(k.time / DURATION) * 100}%`;
      deco.append(diamond);
    }
  }
}

// --- The regions list ------------------------------------------------------------------

function select(key, { seekInto = false } = {}) {
  // The list is rebuilt: keep the keyboard focus on the highlight's select button.
  const refocus = document.activeElement && document.activeElement.dataset.testid === "region-select";
  selectedKey = key;
  const region = selected();
  if (region && seekInto && !editableAt(region, now())) {
    video.pause();
    seek(region.start);
  }
  renderList();
  renderKeyframes();
  renderTimeline();
  refresh();
  if (refocus && key !== null) {
    const button = list.querySelector(`[data-key="${key}"] [data-testid="region-select"]`);
    if (button) button.focus();
  }
}

function numberInput(testid, value, label) {
  const input = document.createElement("input");
  input.type = "number";
  input.step = "0.01";
  input.min = "0";
  input.max = String(DURATION);
  input.value = fmt(value);
  input.dataset.testid = testid;
  input.setAttribute("aria-label", label);
  return input;
}

function renderList() {
  list.replaceChildren();
  emptyNote.hidden = regions.length > 0;
  regions.forEach((region, index) => list.append(regionItem(region, index)));
}

function regionTitle(region, index) {
  return `#${index + 1} ${EFFECTS[region.effect]}`;
}

function regionItem(region, index) {
  const isSelected = region.key === selectedKey;
  const item = document.createElement("li");
  item.className = "ov-region";
  item.classList.toggle("selected", isSelected);
  item.dataset.testid = "region-item";
  item.dataset.key = String(region.key);
  if (isSelected) item.setAttribute("aria-current", "true");

  const row = document.createElement("div");
  row.className = "ov-region-row";
  const pick = document.createElement("button");
  pick.type = "button";
  pick.className = "ov-region-select";
  pick.dataset.testid = "region-select";
  pick.setAttribute("aria-pressed", String(isSelected));
  pick.innerHTML = `<span class="ov-swatch" aria-hidden="true"></span><span class="ov-region-title"></span>`;
  pick.querySelector(".ov-swatch").style.background = region.color;
  pick.querySelector(".ov-region-title").textContent = regionTitle(region, index);
  pick.addEventListener("click", () => select(region.key, { seekInto: true }));

  const start = numberInput("region-start", region.start, `Start of highlight ${index + 1} (s)`);
  const end = numberInput("region-end", region.end, `End of highlight ${index + 1} (s)`);
  const error = document.createElement("p");
  error.className = "ov-region-error form-error";
  error.dataset.testid = "region-error";
  error.setAttribute("role", "alert");
  error.hidden = true;
  const onSpan = (moved) => {
    let s = round(Number(start.value), 3);
    let e = round(Number(end.value), 3);
    let shift = 0;
    // A start typed at or past the end moves the whole highlight (keyframes included).
    if (moved === "start" && Number.isFinite(s) && s >= region.end && s < DURATION) {
      shift = s - region.start;
      e = round(Math.min(DURATION, region.end + shift), 3);
    }
    let problem = null;
    if (start.value === "" || end.value === "" || !Number.isFinite(s) || !Number.isFinite(e)) {
      problem = "Start and end must be numbers of seconds.";
    } else if (s < 0 || e > DURATION + 1e-3) {
      problem = `Start and end must be within the video (0–${fmt(DURATION)} s).`;
    } else if (e <= s) {
      problem = "A highlight must end after it starts.";
    }
    if (problem) {
      error.textContent = problem;
      error.hidden = false;
      start.value = fmt(region.start);
      end.value = fmt(region.end);
      return;
    }
    error.hidden = true;
    if (shift) {
      region.keyframes = region.keyframes.map((k) => ({ ...k, time: round(k.time + shift, 3) }));
      region.start = round(region.start + shift, 3);
      region.end = round(region.end + shift, 3);
    }
    s = Math.max(0, s);
    e = Math.min(e, DURATION);
    setSpan(region, s, e);
    start.value = fmt(region.start);
    end.value = fmt(region.end);
    edited();
    renderTimeline();
    refresh();
    if (isSelected) renderKeyframes();
  };
  start.addEventListener("change", () => onSpan("start"));
  end.addEventListener("change", () => onSpan("end"));

  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "icon-button small-icon danger ov-region-delete";
  remove.dataset.testid = "region-delete";
  remove.setAttribute("aria-label", `Delete highlight ${index + 1}`);
  remove.title = "Delete this highlight";
  remove.textContent = "✕";
  remove.addEventListener("click", () => deleteRegion(region.key));

  row.append(pick, remove);
  const span = document.createElement("div");
  span.className = "ov-region-span";
  span.append(labelled("Start", start, "s"), labelled("End", end, "s"));
  item.append(row, span, error);
  if (isSelected) item.append(regionDetails(region, index));
  return item;
}

function labelled(text, control, unit = null) {
  const label = document.createElement("label");
  label.className = "ov-field";
  const caption = document.createElement("span");
  caption.textContent = text;
  label.append(caption, control);
  if (unit) {
    const suffix = document.createElement("span");
    suffix.textContent = unit;
    label.append(suffix);
  }
  return label;
}

function regionDetails(region, index) {
  const details = document.createElement("div");
  details.className = "ov-region-details";

  const effect = document.createElement("select");
  effect.dataset.testid = "region-effect";
  for (const [value, text] of Object.entries(EFFECTS)) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = text;
    option.selected = value === region.effect;
    effect.append(option);
  }
  effect.addEventListener("change", () => {
    region.effect = effect.value;
    details.closest(".ov-region").querySelector(".ov-region-title").textContent = regionTitle(
      region,
      index,
    );
    edited();
    renderTimeline();
    refresh();
  });

  const color = document.createElement("input");
  color.type = "color";
  color.value = region.color;
  color.dataset.testid = "region-color";
  color.addEventListener("input", () => {
    region.color = color.value.toLowerCase();
    details.closest(".ov-region").querySelector(".ov-swatch").style.background = region.color;
    edited();
    renderTimeline();
    refresh();
  });

  const stroke = document.createElement("input");
  stroke.type = "number";
  stroke.min = "0";
  stroke.max = String(MAX_STROKE);
  stroke.step = "1";
  stroke.value = String(region.stroke_width);
  stroke.dataset.testid = "region-stroke";
  stroke.addEventListener("input", () => {
    const value = Number(stroke.value);
    if (stroke.value === "" || !Number.isInteger(value)) return;
    region.stroke_width = clamp(value, 0, MAX_STROKE);
    edited();
    refresh();
  });
  stroke.addEventListener("change", () => {
    stroke.value = String(region.stroke_width);
  });

  details.append(labelled("Effect", effect), labelled("Colour", color), labelled("Stroke px", stroke));
  return details;
}

// The selected highlight's keyframes, in the row under the transport (like framing).
function renderKeyframes() {
  keyframeList.replaceChildren();
  const region = selected();
  keyframeHint.textContent = region
    ? "Drag the ellipse to set a keyframe at the playhead; the handles resize it."
    : "Select a highlight, then drag its ellipse: each move sets a keyframe at the playhead.";
  if (!region) return;
  for (const k of region.keyframes) {
    const chip = document.createElement("li");
    chip.className = "kf-chip";
    chip.dataset.testid = "keyframe-item";
    chip.dataset.time = String(k.time);
    const go = document.createElement("button");
    go.type = "button";
    go.className = "kf-select";
    go.textContent = formatTime(k.time);
    go.title = "Go to this keyframe";
    go.addEventListener("click", () => {
      video.pause();
      seek(k.time);
    });
    chip.append(go);
    if (region.keyframes.length > 1) {
      const drop = document.createElement("button");
      drop.type = "button";
      drop.className = "kf-delete";
      drop.dataset.testid = "keyframe-delete";
      drop.setAttribute("aria-label", `Delete the keyframe at ${fmt(k.time)} s`);
      drop.textContent = "×";
      drop.addEventListener("click", () => {
        region.keyframes = region.keyframes.filter((other) => other !== k);
        edited();
        renderKeyframes();
        renderTimeline();
        refresh();
      });
      chip.append(drop);
    }
    keyframeList.append(chip);
  }
  markKeyframe(now());
}

// A keyframe chip is highlighted while the playhead is on it.
function markKeyframe(t) {
  const region = selected();
  const on = region ? keyframeAt(region, t) : null;
  for (const chip of keyframeList.children) {
    chip.classList.toggle("selected", Boolean(on) && Number(chip.dataset.time) === on.time);
  }
}

function addRegion() {
  let start = round(clamp(now(), 0, DURATION), 3);
  const end = round(Math.min(DURATION, start + DEFAULT_SPAN), 3);
  if (end - start < DEFAULT_SPAN) start = round(Math.max(0, end - DEFAULT_SPAN), 3);
  const radius = Math.round(Math.min(W, H) * 0.18);
  const region = {
    key: nextKey++,
    start,
    end,
    effect: "dim_outside",
    color: DEFAULT_COLOR,
    stroke_width: DEFAULT_STROKE,
    keyframes: [{ time: start, ...cleanShape({ x: W / 2, y: H / 2, rx: radius, ry: radius }) }],
  };
  regions.push(region);
  video.pause();
  edited();
  select(region.key);
}

function deleteRegion(key) {
  const index = regions.findIndex((r) => r.key === key);
  if (index < 0) return;
  regions.splice(index, 1);
  if (selectedKey === key) {
    const neighbour = regions[Math.min(index, regions.length - 1)];
    selectedKey = neighbour ? neighbour.key : null;
  }
  edited();
  renderList();
  renderKeyframes();
  renderTimeline();
  refresh();
}

addButton.addEventListener("click", addRegion);

// --- The final export ------------------------------------------------------------------

const exportSlot = document.getElementById("final-export");
const exporter = createExportProgress({
  container: exportSlot,
  projectId,
  kind: "overlay",
  onUpdate: () => {
    exportButton.disabled = exporter.running;
  },
  onComplete: () => {
    finalDone.hidden = false;
  },
});
// This page's contract names the bar final-export-progress (the module calls it
// export-progress); the element, role and aria-valuenow are the module's.
const bar = exportSlot.querySelector('[data-testid="export-progress"]');
if (bar) bar.dataset.testid = "final-export-progress";

// Not passed to the module as its button: the highlights must be saved before the
// export reads them, so the click saves first, then starts.
exportButton.addEventListener("click", async () => {
  exportButton.disabled = true;
  finalDone.hidden = true;
  const saved = await flush();
  if (!saved) {
    exportButton.disabled = false;
    return;
  }
  await exporter.start();
  exportButton.disabled = exporter.running;
});

// --- Start -----------------------------------------------------------------------------

async function load() {
  try {
    const body = await api.get(HIGHLIGHTS_URL);
    regions = body.regions.map(fromServer);
    addButton.disabled = false;
  } catch (err) {
    loadError.textContent =
      err instanceof ApiError
        ? `Could not load the highlights: ${err.error}`
        : "Could not load the highlights.";
    loadError.hidden = false;
  }
  renderList();
  renderKeyframes();
  renderTimeline();
  refresh();
}

new ResizeObserver(() => fitStage()).observe(stage);
window.addEventListener("resize", fitStage);
fitStage();
load();
exporter.resume();
if (data.current_mode !== "overlay") {
  // The projects list shows where the user left off.
  api.patch(`/api/projects/${projectId}`, { current_mode: "overlay" }).catch(() => {});
}
