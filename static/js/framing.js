// Framing mode: clips, the crop box, trim, slow motion, the framing export.
//
// The page's data (GET /api/projects/<id>'s shape) comes through json_script. Edits
// are kept on the clip objects and saved automatically (autosave.js: PATCH each edited
// clip); the crop preview uses the same interpolation as the export (interpolation.js);
// the player and its keys are player.js's, shared with overlay mode; undo and redo
// (undo.js) go back through snapshots of every clip's keyframes, trim and segments (not
// clip uploads, deletions or order, which are the server's). This script wires the
// editor's parts together and owns the crop keyframes:
//
//   framing/crop.js     the crop box: layout, drag, arrow keys, the path it follows
//   framing/edits.js    trim, slow-motion segments, the scrub bar's decorations
//   framing/clips.js    the clip list (order, delete) and uploads
//   framing/working.js  the framing export and the working video

import { api } from "/static/js/api.js";
import { createAutosave } from "/static/js/autosave.js";
import { createClips } from "/static/js/framing/clips.js";
import { createCropBox } from "/static/js/framing/crop.js";
import { createEdits } from "/static/js/framing/edits.js";
import { createFollow } from "/static/js/framing/follow.js";
import { createWorking } from "/static/js/framing/working.js";
import { markKeyframeChip, renderKeyframeChips } from "/static/js/keyframes.js";
import { createPlayer } from "/static/js/player.js";
import { createHistory } from "/static/js/undo.js";
import { $, clamp, round } from "/static/js/util.js";

const data = JSON.parse($("project-data").textContent);
const projectId = data.id;

const frame = $("video-frame");
const video = $("framing-video");
const scrubber = $("scrubber");
const keyframeList = $("keyframe-list");
const keyframeHint = $("keyframe-hint");

let current = null; // the clip being edited
let selectedTime = null; // the selected keyframe's time

const fps = () => (current && current.fps > 0 ? current.fps : 30);
const duration = () => (current ? current.duration : 0);
// Where the clip's edits may lie: the whole uploaded clip, or a play's range of a game
// (times are the game's then; the API keeps every edit inside).
const bounds = () => (current && current.range ? current.range : { start: 0, end: duration() });
const trimRange = () => (current.trim ? current.trim : bounds());

// --- saving: each edited clip is PATCHed --------------------------------------------------

const dirty = new Set(); // ids of clips with unsaved edits

async function saveClips() {
  for (const id of [...dirty]) {
    const clip = clips.find(id);
    dirty.delete(id);
    if (!clip) continue;
    try {
      await api.patch(`/api/projects/${projectId}/clips/${id}`, {
        crop_keyframes: clip.crop_keyframes,
        trim: clip.trim,
        segments: clip.segments,
      });
    } catch (err) {
      if (err.status !== 404) dirty.add(id); // a deleted clip has nothing left to save
      throw err;
    }
  }
}

const autosave = createAutosave({ status: $("save-status"), save: saveClips });

// Save the clip's edits (an edit, or an undo / redo of one).
function markEdited(clip) {
  clip.edited_at = new Date().toISOString();
  dirty.add(clip.id);
  working.edited();
  autosave.edited();
  clips.render();
}

// After each edit: saved, and one step of undo.
function edited(clip) {
  markEdited(clip);
  history.record({ clipId: clip.id });
}

// --- the parts ----------------------------------------------------------------------------

const crop = createCropBox({
  stage: $("stage"),
  frame,
  box: $("crop-rect"),
  video,
  aspect: data.output_width / data.output_height,
  clip: () => current,
  commit: commitKeyframe,
});

const player = createPlayer({
  video,
  playButton: $("play-toggle"),
  backButton: $("frame-back"),
  forwardButton: $("frame-forward"),
  scrubber,
  timecode: $("timecode"),
  ready: () => current !== null,
  fps,
  duration,
  bounds,
  range: trimRange,
  rateAt: (t) => edits.speedAt(t),
  onTime: (t) => {
    crop.showAt(t);
    follow.showAt(t);
    markSelectedKeyframe(t);
  },
  // K: the crop box as it is now becomes a keyframe at the playhead; Delete: removes it.
  addKeyframe: () => {
    const rect = crop.shown();
    if (rect) commitKeyframe(rect);
  },
  deleteKeyframe: (t) => {
    const index = keyframeIndexAt(t);
    if (index >= 0) deleteKeyframe(current.crop_keyframes[index].time);
  },
});

const edits = createEdits({
  clip: () => current,
  bounds,
  trimRange,
  video,
  seek: (t) => player.seek(t),
  edited: () => edited(current),
  trimStart: $("trim-start"),
  trimEnd: $("trim-end"),
  segmentList: $("segment-list"),
  segmentNote: $("segment-note"),
  segmentAdd: $("segment-add"),
  deco: $("scrub-deco"),
});

const clips = createClips({
  projectId,
  clips: data.clips,
  current: () => current,
  select: selectClip,
  autosave,
  forget: (id) => dirty.delete(id),
});

// "Follow the play": a proposal drawn over the video; accepting it is an ordinary edit.
const follow = createFollow({
  projectId,
  aspect: data.output_width / data.output_height,
  clip: () => current,
  video,
  accept: acceptKeyframes,
});

function acceptKeyframes(keyframes) {
  current.crop_keyframes = keyframes;
  selectedTime = null;
  crop.rebuild();
  renderKeyframes();
  edits.renderDeco();
  player.refresh();
  edited(current);
}

const working = createWorking({ projectId, data, autosave, hasClips: () => clips.all().length > 0 });

// --- undo and redo: each clip's keyframes, trim and segments (not the clip list) --------------

const editsOf = (clip) => ({ crop_keyframes: clip.crop_keyframes, trim: clip.trim, segments: clip.segments });

const history = createHistory({
  capture: () => Object.fromEntries(clips.all().map((clip) => [clip.id, editsOf(clip)])),
  restore: restoreEdits,
  undoButton: $("undo"),
  redoButton: $("redo"),
});

// Bring back the clips' edits of a step; the clip it was about is selected to show it.
function restoreEdits(state, { clipId }) {
  const changedClips = clips.all().filter((clip) => {
    const saved = state[clip.id];
    if (!saved || JSON.stringify(saved) === JSON.stringify(editsOf(clip))) return false;
    Object.assign(clip, saved);
    markEdited(clip);
    return true;
  });
  if (!changedClips.length) return false; // about a clip deleted since
  const target = changedClips.find((clip) => clip.id === clipId) || changedClips[0];
  if (target !== current) {
    selectClip(target);
    return true;
  }
  selectedTime = null;
  crop.rebuild();
  edits.render();
  renderKeyframes();
  player.refresh();
  return true;
}

// --- keyframes ----------------------------------------------------------------------------

function keyframeIndexAt(t) {
  const tolerance = 0.5 / fps();
  return current.crop_keyframes.findIndex((k) => Math.abs(k.time - t) <= tolerance);
}

/** Create or update the keyframe at the playhead with `rect` (source pixels). */
function commitKeyframe(rect) {
  const t = round(clamp(video.currentTime, bounds().start, bounds().end), 4);
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
  crop.rebuild();
  renderKeyframes();
  edits.renderDeco();
  edited(current);
}

// The selection follows the playhead: a keyframe is selected while the playhead is on it.
function markSelectedKeyframe(t = video.currentTime) {
  if (!current) return;
  const index = keyframeIndexAt(t);
  const time = index >= 0 ? current.crop_keyframes[index].time : null;
  if (time === selectedTime) return;
  selectedTime = time;
  markKeyframeChip(keyframeList, selectedTime);
}

function renderKeyframes() {
  renderKeyframeChips(keyframeList, current.crop_keyframes, {
    selectedTime,
    onGo: (k) => {
      video.pause();
      selectedTime = null;
      player.seek(k.time);
    },
    onDelete: (k) => deleteKeyframe(k.time),
  });
  keyframeHint.textContent = current.crop_keyframes.length
    ? "Drag the box at another time to add a keyframe."
    : "No keyframes: the crop stays centred. Drag the box to add one at the playhead.";
}

function deleteKeyframe(time) {
  current.crop_keyframes = current.crop_keyframes.filter((k) => k.time !== time);
  if (selectedTime === time) selectedTime = null;
  crop.rebuild();
  renderKeyframes();
  edits.renderDeco();
  player.refresh();
  edited(current);
}

// --- the clip being edited ------------------------------------------------------------------

function selectClip(clip) {
  if (current && dirty.has(current.id)) autosave.flush();
  follow.clipChanged();
  video.pause();
  current = clip;
  selectedTime = null;
  clips.render();
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
    edits.clear();
    $("timecode").textContent = "0:00.00 / 0:00.00";
    return;
  }
  clip.crop_keyframes = clip.crop_keyframes || [];
  clip.segments = clip.segments || [];
  history.sync(); // an uploaded clip: undo starts from its edits as they are
  crop.rebuild();
  crop.layout();
  video.src = clip.url;
  video.playbackRate = 1;
  scrubber.min = String(bounds().start);
  scrubber.max = String(bounds().end);
  edits.render();
  renderKeyframes();
  const start = trimRange().start;
  video.currentTime = start;
  player.seek(start);
}

// --- start ------------------------------------------------------------------------------------

working.start();
selectClip(clips.all()[0] || null);
history.reset();
api.post(`/api/projects/${projectId}/open`).catch(() => {});
