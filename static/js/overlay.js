// Overlay mode: highlight regions on the working video, a live preview, the final export.
//
// The page (templates/projects/overlay.html) renders the frame; this script wires the
// editor's parts together. Regions are edited locally and saved as a whole (PUT
// highlights, autosave.js); the player and its keys are player.js's, shared with the
// framing editor; undo and redo (undo.js) go back through snapshots of the regions.
//
//   overlay/model.js     the regions, the selection, keyframed ellipses
//   overlay/regions.js   the list of highlights and their settings
//   overlay/handles.js   the selected ellipse's handles: drag, keys, click to select
//   overlay/preview.js   the canvas preview of the render's effects
//   overlay/effects.js   the effects' arithmetic, from highlight_effects.json (shared
//                        with the render, exports/overlay.py)
//
// Coordinates: regions are stored in working-video pixels and seconds; the stage is the
// video scaled to fit.

import { api, ApiError } from "/static/js/api.js";
import { createAutosave } from "/static/js/autosave.js";
import { createExportProgress } from "/static/js/exportprogress.js";
import { markKeyframeChip, renderKeyframeChips } from "/static/js/keyframes.js";
import { loadHighlightEffects } from "/static/js/overlay/effects.js";
import { createHandles } from "/static/js/overlay/handles.js";
import { createModel, editableAt } from "/static/js/overlay/model.js";
import { createPreview } from "/static/js/overlay/preview.js";
import { createPresets } from "/static/js/overlay/presets.js";
import { createRegionList } from "/static/js/overlay/regions.js";
import { createPlayer } from "/static/js/player.js";
import { createHistory } from "/static/js/undo.js";
import { $, el } from "/static/js/util.js";

const data = JSON.parse($("project-data").textContent);
const projectId = data.id;
const wv = data.working_video;
const W = wv.width;
const H = wv.height;
const DURATION = wv.duration;
const FPS = wv.fps > 0 ? wv.fps : 30;
const HIGHLIGHTS_URL = `/api/projects/${projectId}/highlights`;

const video = $("overlay-video");
const stage = $("stage");
const frame = $("video-frame");
const canvas = $("ov-preview");
const deco = $("scrub-deco");
const keyframeList = $("keyframe-list");
const keyframeHint = $("keyframe-hint");
const addButton = $("add-region");
const loadError = $("load-error");
const exportButton = $("final-export-button");
const finalDone = $("final-done");

const model = createModel({ width: W, height: H, duration: DURATION, fps: FPS });
const now = () => video.currentTime || 0;

const autosave = createAutosave({
  status: $("save-status"),
  save: () => api.put(HIGHLIGHTS_URL, model.toServer()),
});

const preview = createPreview({ canvas, width: W, height: H });

const player = createPlayer({
  video,
  playButton: $("overlay-play"),
  backButton: $("frame-back"),
  forwardButton: $("frame-forward"),
  scrubber: $("overlay-scrub"),
  timecode: $("timecode"),
  fps: () => FPS,
  duration: () => DURATION,
  onTime: (t) => {
    preview.draw(model.activeShapes(t));
    handles.render(t);
    markKeyframe(t);
  },
  // K: the selected highlight's ellipse as it is at the playhead becomes a keyframe
  // there; Delete: removes the keyframe at the playhead (a highlight keeps one).
  addKeyframe: (t) => {
    const region = model.selected();
    if (!region || !editableAt(region, t)) return;
    model.setKeyframe(region, t, model.pathOf(region).at(t));
    changed();
  },
  deleteKeyframe: (t) => {
    const region = model.selected();
    const on = region ? model.keyframeAt(region, t) : null;
    if (!on || region.keyframes.length < 2) return;
    region.keyframes = region.keyframes.filter((k) => k !== on);
    changed();
  },
  keys: {
    Escape: () => {
      if (model.selectedKey !== null) select(null);
    },
  },
});

/**
 * After an edit: save it, show it everywhere, and make it one step of undo.
 * key: the highlight it was about (default: the selected one); coalesce: merged with the
 * step before if that had the same key (one drag of the colour picker is one step).
 */
function changed({ key = model.selectedKey, coalesce = null } = {}) {
  autosave.edited();
  renderKeyframes();
  renderTimeline();
  player.refresh();
  history.record({ key }, { coalesce });
}

// Undo and redo: snapshots of the whole list of highlights (keys included, so the
// selection survives). A step brings its highlight back selected when it is there.
const history = createHistory({
  capture: () => model.regions,
  restore: (regions, { key }) => {
    model.regions = regions;
    const has = (k) => k !== null && regions.some((r) => r.key === k);
    if (has(key)) model.selectedKey = key;
    else if (!has(model.selectedKey)) model.selectedKey = null;
    autosave.edited();
    renderAll();
  },
  undoButton: $("undo"),
  redoButton: $("redo"),
});

const handles = createHandles({
  layer: $("ov-handles"),
  frame,
  width: W,
  height: H,
  model,
  video,
  now,
  moved: () => player.refresh(),
  changed,
  select: (key) => select(key),
});

const regionList = createRegionList({
  list: $("regions"),
  emptyNote: $("empty-regions"),
  model,
  duration: DURATION,
  select: (key, options) => select(key, options),
  remove: (key) => deleteRegion(key),
  changed,
});

// --- Stage geometry --------------------------------------------------------------------

// The working video's shape, for the phone layout's stage (overlay.css): the stage is
// as tall as the video at the screen's width, up to a limit, not a fixed height.
stage.style.setProperty("--video-aspect", `${W} / ${H}`);

// Fit the video frame (video, preview, handles) into the stage at the video's shape.
function fitStage() {
  const scale = Math.min(stage.clientWidth / W, stage.clientHeight / H);
  if (!(scale > 0)) return;
  frame.style.width = `${Math.floor(W * scale)}px`;
  frame.style.height = `${Math.floor(H * scale)}px`;
  preview.resize(frame.clientWidth, frame.clientHeight);
  player.refresh();
}

// --- The timeline: highlights on the scrub bar, the selected one's keyframes ------------

function renderTimeline() {
  const pct = (t) => `${(t / DURATION) * 100}%`;
  const region = model.selected();
  deco.replaceChildren(
    ...model.regions.map((r) =>
      el("div", {
        class: `ov-deco-region${r.key === model.selectedKey ? " selected" : ""}`,
        style: `left:${pct(r.start)};width:${pct(r.end - r.start)};--region-color:${r.color}`,
      }),
    ),
    ...(region ? region.keyframes : []).map((k) => el("div", { class: "deco-kf", style: `left:${pct(k.time)}` })),
  );
}

// The selected highlight's keyframes, in the row under the transport (like framing).
function renderKeyframes() {
  const region = model.selected();
  keyframeHint.textContent = region
    ? "Drag the ellipse to set a keyframe at the playhead; the handles resize it."
    : "Select a highlight, then drag its ellipse: each move sets a keyframe at the playhead.";
  renderKeyframeChips(keyframeList, region ? region.keyframes : [], {
    canDelete: Boolean(region) && region.keyframes.length > 1, // a highlight keeps one
    onGo: (k) => {
      video.pause();
      player.seek(k.time);
    },
    onDelete: (k) => {
      region.keyframes = region.keyframes.filter((other) => other !== k);
      changed();
    },
  });
  markKeyframe(now());
}

// A keyframe chip is highlighted while the playhead is on it.
function markKeyframe(t) {
  const region = model.selected();
  const on = region ? model.keyframeAt(region, t) : null;
  markKeyframeChip(keyframeList, on ? on.time : null);
}

// --- Selecting, adding, deleting -------------------------------------------------------

function select(key, { seekInto = false } = {}) {
  // The list is rebuilt: keep the keyboard focus on the highlight's select button.
  const refocus = regionList.hasFocus();
  model.selectedKey = key;
  const region = model.selected();
  if (region && seekInto && !editableAt(region, now())) {
    video.pause();
    player.seek(region.start);
  }
  renderAll();
  if (refocus && key !== null) regionList.focus(key);
}

function renderAll() {
  regionList.render();
  renderKeyframes();
  renderTimeline();
  player.refresh();
}

addButton.addEventListener("click", () => {
  const region = model.add(now());
  video.pause();
  autosave.edited();
  select(region.key);
  history.record({ key: region.key });
});

function deleteRegion(key) {
  if (!model.remove(key)) return;
  autosave.edited();
  renderAll();
  history.record({ key });
}

// --- The final export ------------------------------------------------------------------

const exportSlot = $("final-export");
let hasFinalVideo = Boolean(data.has_final_video);
const exporter = createExportProgress({
  container: exportSlot,
  projectId,
  kind: "overlay",
  onUpdate: (job) => {
    exportButton.disabled = exporter.running;
    // A cancelled export made nothing: the final video made before is still the one.
    if (job.status === "cancelled" && hasFinalVideo) finalDone.hidden = false;
  },
  onComplete: () => {
    hasFinalVideo = true;
    finalDone.hidden = false;
  },
});
// This page's contract names the bar final-export-progress (the module calls it
// export-progress); the element, role and aria-valuenow are the module's.
const bar = exportSlot.querySelector('[data-testid="export-progress"]');
if (bar) bar.dataset.testid = "final-export-progress";

const presets = createPresets({ projectId, data });

// Not passed to the module as its button: the highlights and the export settings must
// be saved before the export reads them, so the click saves first, then starts.
exportButton.addEventListener("click", async () => {
  exportButton.disabled = true;
  finalDone.hidden = true;
  if (!(await autosave.flush()) || !(await presets.flush())) {
    exportButton.disabled = false;
    return;
  }
  await exporter.start();
  exportButton.disabled = exporter.running;
});

// --- Start -----------------------------------------------------------------------------

async function load() {
  const [highlights, effects] = await Promise.allSettled([
    api.get(HIGHLIGHTS_URL),
    loadHighlightEffects(canvas.dataset.effectsUrl),
  ]);
  const problems = [];
  if (highlights.status === "fulfilled") {
    model.load(highlights.value.regions);
    history.reset();
    addButton.disabled = false;
  } else {
    const err = highlights.reason;
    problems.push(
      err instanceof ApiError ? `Could not load the highlights: ${err.error}` : "Could not load the highlights.",
    );
  }
  if (effects.status === "fulfilled") preview.setEffects(effects.value);
  else problems.push("The preview cannot show the effects (their settings did not load).");
  loadError.textContent = problems.join(" ");
  loadError.hidden = problems.length === 0;
  renderAll();
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
