// Framing mode: clips, the crop box, trim, slow motion, the framing export.
//
// The page's data (GET /api/projects/<id>'s shape) comes through json_script. Edits
// are kept on the clip objects and saved automatically (PATCH, debounced); the crop
// preview uses the same interpolation as the export (/static/js/interpolation.js).

import { api, onSyncStatus, upload } from "/static/js/api.js";
import { createExportProgress } from "/static/js/exportprogress.js";
import { CropPath } from "/static/js/interpolation.js";

const SAVE_DELAY_MS = 600;
const MIN_TRIM = 0.1; // the API refuses shorter trimmed clips
const SEGMENT_LENGTH = 1;

const data = JSON.parse(document.getElementById("project-data").textContent);
const projectId = data.id;
const aspect = data.output_width / data.output_height;

const $ = (id) => document.getElementById(id);
const stage = $("stage");
const frame = $("video-frame");
const video = $("framing-video");
const cropEl = $("crop-rect");
const playButton = $("play-toggle");
const scrubber = $("scrubber");
const scrubDeco = $("scrub-deco");
const timecode = $("timecode");
const keyframeList = $("keyframe-list");
const keyframeHint = $("keyframe-hint");
const trimStart = $("trim-start");
const trimEnd = $("trim-end");
const segmentList = $("segment-list");
const segmentNote = $("segment-note");
const clipList = $("clip-list");
const saveStatus = $("save-status");
const dialog = $("confirm-dialog");
const shades = Object.fromEntries([...frame.querySelectorAll(".crop-shade")].map((n) => [n.dataset.side, n]));

let clips = [...data.clips].sort((a, b) => a.position - b.position);
let current = null; // the clip being edited
let path = null; // its CropPath
let selectedTime = null; // the selected keyframe's time
let drag = null; // an ongoing move or resize of the crop box
let shownRect = null; // what the crop box shows now, in source pixels
let raf = 0;

// --- small helpers -------------------------------------------------------------------

const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);
const round = (v, digits = 3) => Math.round(v * 10 ** digits) / 10 ** digits;
const fps = () => (current && current.fps > 0 ? current.fps : 30);
const duration = () => (current ? current.duration : 0);
const frameSize = () => ({
  width: current.width || video.videoWidth,
  height: current.height || video.videoHeight,
});

function formatTime(t) {
  const m = Math.floor(t / 60);
  const s = t - m * 60;
  return `${m}:${s.toFixed(2).padStart(5, "0")}`;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function confirmDelete(title, text) {
  dialog.querySelector("#confirm-title").textContent = title;
  dialog.querySelector(".confirm-text").textContent = text;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

// --- saving ----------------------------------------------------------------------------

const dirty = new Set(); // ids of clips with unsaved edits
let saveTimer = null;
let saveChain = Promise.resolve();
let saveError = "";

function setSaveStatus(text, kind = "") {
  saveStatus.textContent = text;
  saveStatus.dataset.kind = kind;
}

function edited(clip) {
  clip.edited_at = new Date().toISOString();
  dirty.add(clip.id);
  if (!workingSection.hidden) markStale(true);
  setSaveStatus("Saving…", "pending");
  clearTimeout(saveTimer);
  saveTimer = setTimeout(flushSaves, SAVE_DELAY_MS);
  renderClipList();
}

async function saveDirty() {
  for (const id of [...dirty]) {
    const clip = clips.find((c) => c.id === id);
    dirty.delete(id);
    if (!clip) continue;
    try {
      await api.patch(`/api/projects/${projectId}/clips/${id}`, {
        crop_keyframes: clip.crop_keyframes,
        trim: clip.trim,
        segments: clip.segments,
      });
      saveError = "";
    } catch (err) {
      if (err.status !== 404) dirty.add(id); // a deleted clip has nothing left to save
      saveError = err.error || "Your edits could not be saved.";
      setSaveStatus(saveError, "error");
      throw err;
    }
  }
  if (!dirty.size && saveTimer === null) savedStatus();
}

// "Saved" only when the server also backed it up; the header badge explains the rest.
let syncStatus = "ok";
onSyncStatus((status) => {
  syncStatus = status;
});
function savedStatus() {
  if (syncStatus === "failed" || syncStatus === "conflict") {
    setSaveStatus("Saved here, not backed up yet", "warn");
  } else {
    setSaveStatus("Saved", "ok");
  }
}

/** Save now; resolves when everything is saved, rejects with the API's error. */
function flushSaves() {
  clearTimeout(saveTimer);
  saveTimer = null;
  saveChain = saveChain.catch(() => {}).then(saveDirty);
  return saveChain;
}

window.addEventListener("beforeunload", (event) => {
  if (dirty.size || saveTimer !== null) {
    flushSaves().catch(() => {});
    event.preventDefault();
  }
});
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden" && (dirty.size || saveTimer !== null)) {
    flushSaves().catch(() => {});
  }
});

// --- layout and the crop box -----------------------------------------------------------

function layout() {
  if (!current) return;
  const { width, height } = frameSize();
  const scale = Math.min(stage.clientWidth / width, stage.clientHeight / height);
  frame.style.width = `${Math.floor(width * scale)}px`;
  frame.style.height = `${Math.floor(height * scale)}px`;
}
new ResizeObserver(layout).observe(stage);

function showRect(rect) {
  shownRect = rect;
  const { width, height } = frameSize();
  const left = (rect.x / width) * 100;
  const top = (rect.y / height) * 100;
  const w = (rect.width / width) * 100;
  const h = (rect.height / height) * 100;
  const place = (node, l, t, ww, hh) => {
    node.style.left = `${l}%`;
    node.style.top = `${t}%`;
    node.style.width = `${ww}%`;
    node.style.height = `${hh}%`;
  };
  place(cropEl, left, top, w, h);
  place(shades.top, 0, 0, 100, top);
  place(shades.bottom, 0, top + h, 100, 100 - top - h);
  place(shades.left, 0, top, left, h);
  place(shades.right, left + w, top, 100 - left - w, h);
}

function rebuildPath() {
  const { width, height } = frameSize();
  path = new CropPath(current.crop_keyframes, width, height, aspect);
}

function keyframeIndexAt(t) {
  const tolerance = 0.5 / fps();
  return current.crop_keyframes.findIndex((k) => Math.abs(k.time - t) <= tolerance);
}

/** Create or update the keyframe at the playhead with `rect` (source pixels). */
function commitKeyframe(rect) {
  const t = round(clamp(video.currentTime, 0, duration()), 4);
  const keyframe = {
    time: t,
    x: round(rect.x, 2),
    y: round(rect.y, 2),
    width: round(rect.width, 2),
    height: round(rect.height, 2),
  };
  const index = keyframeIndexAt(t);
  if (index >= 0) {
    keyframe.time = current.crop_keyframes[index].time;
    current.crop_keyframes[index] = keyframe;
  } else {
    current.crop_keyframes.push(keyframe);
    current.crop_keyframes.sort((a, b) => a.time - b.time);
  }
  selectedTime = keyframe.time;
  rebuildPath();
  renderKeyframes();
  renderDeco();
  edited(current);
}

function dragTo(event) {
  const { width: W, height: H } = frameSize();
  const dx = (event.clientX - drag.startX) * drag.scale;
  const dy = (event.clientY - drag.startY) * drag.scale;
  const r = drag.rect;
  if (drag.mode === "move") {
    return {
      x: clamp(r.x + dx, 0, W - r.width),
      y: clamp(r.y + dy, 0, H - r.height),
      width: r.width,
      height: r.height,
    };
  }
  // Resize from the bottom-right corner, the top-left stays put, the shape stays the
  // project's: follow whichever of the two directions the pointer moved further.
  const maxWidth = Math.min(W - r.x, (H - r.y) * aspect);
  const minWidth = Math.min(maxWidth, Math.max(16, W * 0.05, 16 * aspect));
  const wanted = Math.max(r.width + dx, (r.height + dy) * aspect);
  const width = clamp(wanted, minWidth, maxWidth);
  return { x: r.x, y: r.y, width, height: width / aspect };
}

cropEl.addEventListener("pointerdown", (event) => {
  if (!current || event.button !== 0) return;
  event.preventDefault();
  video.pause();
  cropEl.focus({ preventScroll: true });
  drag = {
    mode: event.target.closest(".crop-handle-se") ? "resize" : "move",
    startX: event.clientX,
    startY: event.clientY,
    rect: { ...shownRect },
    scale: frameSize().width / frame.clientWidth,
    moved: false,
  };
  cropEl.setPointerCapture(event.pointerId);
  cropEl.classList.add("dragging");
});

cropEl.addEventListener("pointermove", (event) => {
  if (!drag) return;
  if (event.clientX !== drag.startX || event.clientY !== drag.startY) drag.moved = true;
  showRect(dragTo(event));
});

function endDrag(event, cancelled) {
  if (!drag) return;
  const { moved } = drag;
  const rect = moved && !cancelled ? dragTo(event) : null;
  drag = null;
  cropEl.classList.remove("dragging");
  if (rect) commitKeyframe(rect);
  else showRect(path.at(video.currentTime));
}
cropEl.addEventListener("pointerup", (event) => endDrag(event, false));
cropEl.addEventListener("pointercancel", (event) => endDrag(event, true));

// Arrow keys move a focused crop box (Shift: 10x); the keyframe is written on key up.
let keyMoved = false;
cropEl.addEventListener("keydown", (event) => {
  const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  if (!current || !moves[event.key]) return;
  event.preventDefault();
  event.stopPropagation();
  video.pause();
  const { width: W, height: H } = frameSize();
  const step = (event.shiftKey ? 10 : 1) * Math.max(1, W / 200);
  const [mx, my] = moves[event.key];
  const r = shownRect;
  showRect({
    ...r,
    x: clamp(r.x + mx * step, 0, W - r.width),
    y: clamp(r.y + my * step, 0, H - r.height),
  });
  keyMoved = true;
});
cropEl.addEventListener("keyup", (event) => {
  if (keyMoved && event.key.startsWith("Arrow")) {
    keyMoved = false;
    commitKeyframe(shownRect);
  }
});

// --- playback --------------------------------------------------------------------------

function trimRange() {
  return current.trim ? current.trim : { start: 0, end: duration() };
}

function speedAt(t) {
  const segment = current.segments.find((s) => t >= s.start && t < s.end);
  return segment ? segment.speed : 1;
}

/** Bring every time-dependent view up to the playhead. */
function update() {
  if (!current) return;
  const t = video.currentTime;
  if (!video.paused) {
    const { end } = trimRange();
    if (t >= end) {
      video.pause();
      video.currentTime = end;
    }
    const rate = speedAt(t);
    if (video.playbackRate !== rate) video.playbackRate = rate;
  }
  if (document.activeElement !== scrubber || !video.paused) scrubber.value = String(t);
  timecode.textContent = `${formatTime(t)} / ${formatTime(duration())}`;
  if (!drag) showRect(path.at(t));
  markSelectedKeyframe();
}

function loop() {
  update();
  raf = video.paused ? 0 : requestAnimationFrame(loop);
}

video.addEventListener("play", () => {
  playButton.setAttribute("aria-label", "Pause");
  playButton.setAttribute("aria-pressed", "true");
  if (!raf) raf = requestAnimationFrame(loop);
});
video.addEventListener("pause", () => {
  playButton.setAttribute("aria-label", "Play");
  playButton.setAttribute("aria-pressed", "false");
  update();
});
for (const name of ["seeked", "timeupdate", "loadeddata"]) video.addEventListener(name, update);
video.addEventListener("loadedmetadata", () => {
  layout();
  update();
});

function togglePlay() {
  if (!current) return;
  if (video.paused) {
    const { start, end } = trimRange();
    if (video.currentTime >= end - 0.5 / fps() || video.currentTime < start) {
      video.currentTime = start;
    }
    video.play().catch(() => {});
  } else {
    video.pause();
  }
}

function seek(t) {
  if (!current) return;
  const target = clamp(t, 0, duration());
  video.currentTime = target;
  scrubber.value = String(target);
  timecode.textContent = `${formatTime(target)} / ${formatTime(duration())}`;
  if (!drag) showRect(path.at(target));
  markSelectedKeyframe(target);
}

function stepFrame(direction) {
  if (!current) return;
  video.pause();
  const frameIndex = Math.round(video.currentTime * fps());
  seek((frameIndex + direction) / fps());
}

playButton.addEventListener("click", togglePlay);
$("frame-back").addEventListener("click", () => stepFrame(-1));
$("frame-forward").addEventListener("click", () => stepFrame(1));
scrubber.addEventListener("input", () => {
  video.pause();
  seek(Number(scrubber.value));
});

const TEXT_INPUTS = new Set(["text", "number", "search", "email", "password", "url", "tel", "file"]);
function typingInto(target) {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable || target.tagName === "TEXTAREA" || target.tagName === "SELECT") {
    return true;
  }
  return target.tagName === "INPUT" && TEXT_INPUTS.has(target.type);
}

document.addEventListener("keydown", (event) => {
  if (!current || event.defaultPrevented || dialog.open) return;
  if (event.altKey || event.ctrlKey || event.metaKey || typingInto(event.target)) return;
  const isRange = event.target instanceof HTMLInputElement && event.target.type === "range";
  if (event.key === " " || event.code === "Space") {
    event.preventDefault(); // not a page scroll, not a click on the focused button
    if (!event.repeat) togglePlay();
  } else if (event.key === "ArrowLeft" || event.key === "ArrowRight") {
    if (isRange && event.target !== scrubber) return; // trim sliders move themselves
    event.preventDefault();
    stepFrame(event.key === "ArrowLeft" ? -1 : 1);
  }
});
// Space on a focused button would also "click" it on key up.
document.addEventListener("keyup", (event) => {
  if ((event.key === " " || event.code === "Space") && event.target instanceof HTMLButtonElement) {
    if (current && !dialog.open) event.preventDefault();
  }
});

// --- keyframes -------------------------------------------------------------------------

function markSelectedKeyframe(t = video.currentTime) {
  // The selection follows the playhead: a keyframe is selected while the playhead is on it.
  if (!current) return;
  const index = keyframeIndexAt(t);
  const time = index >= 0 ? current.crop_keyframes[index].time : null;
  if (time === selectedTime) return;
  selectedTime = time;
  for (const item of keyframeList.children) {
    const on = Number(item.dataset.time) === selectedTime;
    item.classList.toggle("selected", on);
    item.querySelector(".kf-select").setAttribute("aria-pressed", String(on));
  }
}

function renderKeyframes() {
  keyframeList.replaceChildren(
    ...current.crop_keyframes.map((k) => {
      const label = `${k.time.toFixed(2)} s`;
      const selected = k.time === selectedTime;
      return el(
        "li",
        {
          class: `kf-chip${selected ? " selected" : ""}`,
          "data-testid": "keyframe-item",
          "data-time": String(k.time),
        },
        el("button", {
          type: "button",
          class: "kf-select",
          "aria-pressed": String(selected),
          "aria-label": `Keyframe at ${label}: go there`,
          text: label,
          onclick: () => {
            video.pause();
            selectedTime = null;
            seek(k.time);
          },
        }),
        el("button", {
          type: "button",
          class: "kf-delete",
          "data-testid": "keyframe-delete",
          "aria-label": `Delete the keyframe at ${label}`,
          title: "Delete keyframe",
          text: "×",
          onclick: () => deleteKeyframe(k.time),
        }),
      );
    }),
  );
  keyframeHint.textContent = current.crop_keyframes.length
    ? "Drag the box at another time to add a keyframe."
    : "No keyframes: the crop stays centred. Drag the box to add one at the playhead.";
}

function deleteKeyframe(time) {
  current.crop_keyframes = current.crop_keyframes.filter((k) => k.time !== time);
  if (selectedTime === time) selectedTime = null;
  rebuildPath();
  renderKeyframes();
  renderDeco();
  update();
  edited(current);
}

// --- the decorations under the scrubber: trim, segments, keyframes ----------------------

function renderDeco() {
  const d = duration() || 1;
  const pct = (t) => `${(clamp(t / d, 0, 1) * 100).toFixed(3)}%`;
  const { start, end } = trimRange();
  const parts = [
    el("span", { class: "deco-keep", style: `left:${pct(start)};width:${pct(end - start)}` }),
    el("span", { class: "deco-out", style: `left:0;width:${pct(start)}` }),
    el("span", { class: "deco-out", style: `left:${pct(end)};right:0` }),
    ...current.segments
      .filter((s) => s.speed !== 1)
      .map((s) => el("span", { class: "deco-seg", style: `left:${pct(s.start)};width:${pct(s.end - s.start)}` })),
    ...current.crop_keyframes.map((k) => el("span", { class: "deco-kf", style: `left:${pct(k.time)}` })),
  ];
  scrubDeco.replaceChildren(...parts);
}

// --- trim --------------------------------------------------------------------------------

function renderTrim() {
  const { start, end } = trimRange();
  for (const input of [trimStart, trimEnd]) {
    input.max = String(duration());
  }
  trimStart.value = String(start);
  trimEnd.value = String(end);
  $("trim-start-value").textContent = `${start.toFixed(2)} s`;
  $("trim-end-value").textContent = `${end.toFixed(2)} s`;
}

function onTrimInput(which) {
  const d = duration();
  let start = Number(trimStart.value);
  let end = Number(trimEnd.value);
  if (which === "start") start = clamp(start, 0, Math.max(0, end - MIN_TRIM));
  else end = clamp(end, Math.min(d, start + MIN_TRIM), d);
  const untrimmed = start <= 0.0005 && end >= d - 0.0005;
  current.trim = untrimmed ? null : { start: round(start, 4), end: round(end, 4) };
  renderTrim();
  renderDeco();
  video.pause();
  seek(which === "start" ? start : end);
}
trimStart.addEventListener("input", () => onTrimInput("start"));
trimEnd.addEventListener("input", () => onTrimInput("end"));
trimStart.addEventListener("change", () => edited(current));
trimEnd.addEventListener("change", () => edited(current));

// --- slow-motion segments -------------------------------------------------------------------

function sortSegments() {
  current.segments.sort((a, b) => a.start - b.start);
}

function overlaps(segments) {
  return segments.some((s, i) => i > 0 && s.start < segments[i - 1].end);
}

function addSegment() {
  const t = round(video.currentTime, 3);
  if (current.segments.some((s) => t >= s.start && t < s.end)) {
    segmentNote.textContent = "The playhead is already in a segment.";
    return;
  }
  const next = current.segments.filter((s) => s.start > t).map((s) => s.start);
  const end = round(Math.min(t + SEGMENT_LENGTH, duration(), ...next), 3);
  if (end - t < 0.05) {
    segmentNote.textContent = "No room for a segment here: move the playhead.";
    return;
  }
  current.segments.push({ start: t, end, speed: 0.5 });
  sortSegments();
  segmentNote.textContent = "";
  renderSegments();
  renderDeco();
  edited(current);
}
$("segment-add").addEventListener("click", addSegment);

function changeSegment(segment, key, value) {
  const before = { ...segment };
  segment[key] = value;
  const candidate = [...current.segments].sort((a, b) => a.start - b.start);
  if (segment.end <= segment.start || segment.start < 0 || segment.end > duration() + 1e-3 || overlaps(candidate)) {
    Object.assign(segment, before);
    segmentNote.textContent = "Segments must end after they start and must not overlap.";
  } else {
    segmentNote.textContent = "";
    sortSegments();
    edited(current);
  }
  renderSegments();
  renderDeco();
}

function renderSegments() {
  segmentList.replaceChildren(
    ...current.segments.map((segment) => {
      const timeInput = (key, label) =>
        el("input", {
          type: "number",
          class: "seg-time",
          "data-testid": `segment-${key}`,
          min: "0",
          max: String(duration()),
          step: "0.01",
          value: segment[key].toFixed(2),
          "aria-label": label,
          onchange: (event) => changeSegment(segment, key, round(Number(event.target.value), 3)),
        });
      const speed = el(
        "select",
        {
          "data-testid": "segment-speed",
          "aria-label": "Segment speed",
          onchange: (event) => changeSegment(segment, "speed", Number(event.target.value)),
        },
        el("option", { value: "0.5", text: "0.5× slow", selected: segment.speed === 0.5 }),
        el("option", { value: "1", text: "1× normal", selected: segment.speed === 1 }),
      );
      return el(
        "li",
        { class: "segment-item", "data-testid": "segment-item" },
        timeInput("start", "Segment start in seconds"),
        el("span", { class: "muted", text: "–" }),
        timeInput("end", "Segment end in seconds"),
        el("span", { class: "muted small", text: "s" }),
        speed,
        el("button", {
          type: "button",
          class: "icon-button small-icon",
          "data-testid": "segment-delete",
          "aria-label": `Delete the segment ${segment.start.toFixed(2)}–${segment.end.toFixed(2)} s`,
          title: "Delete segment",
          text: "×",
          onclick: () => {
            current.segments = current.segments.filter((s) => s !== segment);
            renderSegments();
            renderDeco();
            edited(current);
          },
        }),
      );
    }),
  );
  if (!current.segments.length) {
    segmentList.append(el("li", { class: "muted small empty-line", text: "No slow motion: the clip plays at 1×." }));
  }
}

// --- clips ---------------------------------------------------------------------------------

function clipSummary(clip) {
  const bits = [];
  if (clip.crop_keyframes.length) {
    bits.push(`${clip.crop_keyframes.length} keyframe${clip.crop_keyframes.length === 1 ? "" : "s"}`);
  }
  if (clip.trim) bits.push("trimmed");
  if (clip.segments.some((s) => s.speed !== 1)) bits.push("slow-mo");
  return bits.join(" · ");
}

function renderClipList() {
  clipList.replaceChildren(
    ...clips.map((clip, index) => {
      const isCurrent = current && clip.id === current.id;
      const meta = `${clip.width}×${clip.height} · ${Math.round(clip.fps)} fps · ${clip.duration.toFixed(1)} s`;
      return el(
        "li",
        {
          class: `clip-item${isCurrent ? " current" : ""}`,
          "data-testid": "clip-item",
          "data-clip-id": String(clip.id),
          "aria-current": isCurrent ? "true" : null,
        },
        el(
          "button",
          {
            type: "button",
            class: "clip-select",
            "aria-label": `Edit clip ${index + 1}: ${clip.name}`,
            onclick: () => selectClip(clip),
          },
          el("span", { class: "clip-index", text: String(index + 1) }),
          el(
            "span",
            { class: "clip-text" },
            el("span", { class: "clip-name", text: clip.name, title: clip.name }),
            el("span", { class: "clip-meta", text: meta }),
            el("span", { class: "clip-edits", text: clipSummary(clip) }),
          ),
        ),
        el(
          "span",
          { class: "clip-actions" },
          el("button", {
            type: "button",
            class: "icon-button small-icon",
            "data-testid": "clip-up",
            "aria-label": `Move ${clip.name} up`,
            title: "Move up",
            disabled: index === 0,
            text: "↑",
            onclick: () => moveClip(index, -1),
          }),
          el("button", {
            type: "button",
            class: "icon-button small-icon",
            "data-testid": "clip-down",
            "aria-label": `Move ${clip.name} down`,
            title: "Move down",
            disabled: index === clips.length - 1,
            text: "↓",
            onclick: () => moveClip(index, 1),
          }),
          el("button", {
            type: "button",
            class: "icon-button small-icon danger",
            "data-testid": "clip-delete",
            "aria-label": `Delete ${clip.name}`,
            title: "Delete clip",
            text: "×",
            onclick: () => deleteClip(clip),
          }),
        ),
      );
    }),
  );
  if (!clips.length) {
    clipList.append(el("li", { class: "muted small empty-line", text: "No clips yet." }));
  }
}

async function moveClip(index, direction) {
  const target = index + direction;
  if (target < 0 || target >= clips.length) return;
  const before = [...clips];
  [clips[index], clips[target]] = [clips[target], clips[index]];
  renderClipList();
  setSaveStatus("Saving…", "pending");
  try {
    await api.patch(`/api/projects/${projectId}`, { clip_order: clips.map((c) => c.id) });
    if (!dirty.size && saveTimer === null) savedStatus();
  } catch (err) {
    clips = before;
    renderClipList();
    setSaveStatus(err.error || "The new order could not be saved.", "error");
  }
}

async function deleteClip(clip) {
  const ok = await confirmDelete("Delete this clip?", `“${clip.name}” and its framing edits will be deleted.`);
  if (!ok) return;
  try {
    await api.del(`/api/projects/${projectId}/clips/${clip.id}`);
  } catch (err) {
    if (err.status !== 404) {
      setSaveStatus(err.error || "The clip could not be deleted.", "error");
      return;
    }
  }
  dirty.delete(clip.id);
  clips = clips.filter((c) => c.id !== clip.id);
  if (current && current.id === clip.id) selectClip(clips[0] || null);
  else renderClipList();
}

function selectClip(clip) {
  if (current && dirty.has(current.id)) flushSaves().catch(() => {});
  video.pause();
  current = clip;
  selectedTime = null;
  renderClipList();
  const hasClip = clip !== null;
  frame.hidden = !hasClip;
  $("stage-empty").hidden = hasClip;
  for (const control of document.querySelectorAll(".transport button, .transport input, .edit-row button, .edit-row input")) {
    control.disabled = !hasClip;
  }
  if (!hasClip) {
    video.removeAttribute("src");
    video.load();
    keyframeList.replaceChildren();
    segmentList.replaceChildren();
    scrubDeco.replaceChildren();
    timecode.textContent = "0:00.00 / 0:00.00";
    return;
  }
  clip.crop_keyframes = clip.crop_keyframes || [];
  clip.segments = clip.segments || [];
  rebuildPath();
  layout();
  video.src = clip.url;
  video.playbackRate = 1;
  scrubber.max = String(clip.duration);
  renderTrim();
  renderKeyframes();
  renderSegments();
  renderDeco();
  const start = trimRange().start;
  video.currentTime = start;
  seek(start);
}

// --- upload ------------------------------------------------------------------------------------

const uploadBox = $("upload");
const uploadBar = $("upload-progress");
const uploadError = $("upload-error");

function showUploadProgress(name, fraction, text) {
  const value = Math.round(fraction * 100);
  uploadBox.hidden = false;
  $("upload-name").textContent = name;
  $("upload-pct").textContent = text || `${value}%`;
  uploadBar.setAttribute("aria-valuenow", String(value));
  uploadBar.querySelector(".progress-fill").style.width = `${value}%`;
}

async function uploadFiles(files) {
  uploadError.hidden = true;
  for (const file of files) {
    showUploadProgress(file.name, 0);
    try {
      const clip = await upload(`/api/projects/${projectId}/clips`, file, {
        onProgress: (fraction) =>
          showUploadProgress(file.name, fraction, fraction >= 1 ? "Checking the video…" : null),
      }).promise;
      showUploadProgress(file.name, 1, "Uploaded");
      clip.crop_keyframes = clip.crop_keyframes || [];
      clip.segments = clip.segments || [];
      clips.push(clip);
      selectClip(clip);
    } catch (err) {
      uploadError.textContent = `${file.name}: ${err.error || "the upload failed."}`;
      uploadError.hidden = false;
    }
  }
  setTimeout(() => {
    if (uploadBar.getAttribute("aria-valuenow") === "100") uploadBox.hidden = true;
  }, 2500);
}

$("clip-upload").addEventListener("change", (event) => {
  const files = [...event.target.files];
  event.target.value = "";
  if (files.length) uploadFiles(files);
});

stage.addEventListener("dragover", (event) => {
  if ([...event.dataTransfer.types].includes("Files")) {
    event.preventDefault();
    stage.classList.add("drop-target");
  }
});
stage.addEventListener("dragleave", () => stage.classList.remove("drop-target"));
stage.addEventListener("drop", (event) => {
  event.preventDefault();
  stage.classList.remove("drop-target");
  const files = [...event.dataTransfer.files].filter((f) => f.type.startsWith("video/"));
  if (files.length) uploadFiles(files);
});

// --- export and the working video --------------------------------------------------------------

const workingSection = $("working-section");
const workingVideo = $("working-video");
const overlayTab = $("tab-overlay");

function showWorkingVideo(info) {
  if (workingVideo.getAttribute("src") !== info.url) workingVideo.src = info.url;
  const size = info.size_bytes ? ` · ${(info.size_bytes / 1048576).toFixed(1)} MB` : "";
  $("working-meta").textContent = `${info.width}×${info.height} · ${info.duration.toFixed(1)} s${size}`;
  workingSection.hidden = false;
  markStale(false);
  $("export-result").hidden = false;
  overlayTab.href = `/projects/${projectId}/overlay/`;
  overlayTab.classList.remove("disabled");
  overlayTab.removeAttribute("aria-disabled");
  overlayTab.removeAttribute("title");
}

/** Edits since the working video was made: exporting is the next step again. */
function markStale(stale) {
  $("working-stale").hidden = !stale;
  exportButton.classList.toggle("primary", stale);
  exportButton.textContent = "Export again";
}

async function loadWorkingVideo() {
  try {
    showWorkingVideo(await api.get(`/api/projects/${projectId}/working-video`));
  } catch (err) {
    setSaveStatus(err.error || "The working video could not be loaded.", "error");
  }
}

const exportButton = $("export-button");
const exporter = createExportProgress({
  container: $("export-slot"),
  projectId,
  kind: "framing",
  button: exportButton,
  beforeStart: async () => {
    if (!clips.length) throw new Error("Upload a clip before exporting.");
    try {
      await flushSaves();
    } catch (err) {
      throw new Error(`Your edits are not saved yet: ${err.error || err.message}`);
    }
  },
  onComplete: () => loadWorkingVideo(),
});

// --- start ---------------------------------------------------------------------------------------

if (data.working_video) {
  showWorkingVideo(data.working_video);
  if (data.clips_in_progress > 0) markStale(true);
}
selectClip(clips[0] || null);
exporter.resume();
api.post(`/api/projects/${projectId}/open`).catch(() => {});
