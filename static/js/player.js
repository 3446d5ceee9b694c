// The player both editors share: play and pause, seeking, frame steps, the timecode,
// the scrub bar, the sound (mute, volume) and one key map, on a <video> and the
// transport bar (templates/projects/_transport.html, which also shows the keys and the
// help sheet, templates/projects/_key_help.html).
//
// Keys (on the whole page):
//   Space              play / pause
//   ← / →              one frame back / forward
//   Shift + ← / →      one second back / forward
//   Home / End         the start / the end (of the trimmed clip, in framing)
//   K                  add a keyframe at the playhead (the page's addKeyframe)
//   Delete / Backspace delete the keyframe at the playhead (the page's deleteKeyframe)
//   M                  sound on / off
//   ?                  the help sheet (a <dialog>; Esc closes it)
// Not while typing in a field, not with Alt, Ctrl or Meta, not while a dialog is open.
// (Ctrl+Z / Ctrl+Shift+Z, undo and redo, are undo.js's.)
//
// Sound: the mute toggle and the volume slider are one setting for both editors, kept
// in localStorage (SOUND_KEY) and applied on load. Playing at a rate other than 1 (a
// slow-motion segment in framing) is silent, as the export's slow motion is.
// A focused slider other than the scrub bar (the trim sliders) keeps its own arrows,
// Home and End; an element that handles a key itself (the crop box, a highlight's
// ellipse) stops it before it gets here.
//
//   const player = createPlayer({ video, playButton, backButton, forwardButton, scrubber,
//                                 timecode, fps, duration, onTime: (t) => draw(t) });
//   player.seek(1.5);

import { clamp } from "/static/js/util.js";

/** 0:01.25: minutes, seconds to the hundredth. */
export function formatTime(t) {
  const m = Math.floor(t / 60);
  return `${m}:${(t - m * 60).toFixed(2).padStart(5, "0")}`;
}

export const SOUND_KEY = "reeleditor.sound";
const DEFAULT_SOUND = { muted: false, volume: 1 };

/** The remembered sound setting: {muted, volume} (sound on at full volume by default). */
export function loadSound() {
  try {
    const saved = JSON.parse(localStorage.getItem(SOUND_KEY) || "null");
    if (saved && typeof saved === "object") {
      const volume = Number(saved.volume);
      return {
        muted: Boolean(saved.muted),
        volume: Number.isFinite(volume) ? clamp(volume, 0, 1) : DEFAULT_SOUND.volume,
      };
    }
  } catch {
    // unreadable or no storage: the default
  }
  return { ...DEFAULT_SOUND };
}

function saveSound(sound) {
  try {
    localStorage.setItem(SOUND_KEY, JSON.stringify(sound));
  } catch {
    // no storage (private mode): this page keeps it
  }
}

/**
 * A <video> with the browser's own controls (the game page): the remembered sound
 * applied on load, and what its controls change remembered.
 */
export function rememberSound(video) {
  const sound = loadSound();
  video.muted = sound.muted;
  video.volume = sound.volume;
  video.addEventListener("volumechange", () => {
    saveSound({ muted: video.muted, volume: Math.round(video.volume * 100) / 100 });
  });
}

const TEXT_INPUTS = new Set(["text", "number", "search", "email", "password", "url", "tel", "file"]);

function typingInto(target) {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable || target.tagName === "TEXTAREA" || target.tagName === "SELECT") {
    return true;
  }
  return target.tagName === "INPUT" && TEXT_INPUTS.has(target.type);
}

const isSpace = (event) => event.key === " " || event.code === "Space";
const dialogOpen = () => document.querySelector("dialog[open]") !== null;

// The keys that move the playhead (Space is separate: it toggles, once per press).
const MOVES = {
  ArrowLeft: (player, shift) => (shift ? player.stepSeconds(-1) : player.stepFrames(-1)),
  ArrowRight: (player, shift) => (shift ? player.stepSeconds(1) : player.stepFrames(1)),
  Home: (player) => player.toStart(),
  End: (player) => player.toEnd(),
};

/**
 * @param {object} options
 *   video, playButton, backButton, forwardButton, scrubber (input type=range), timecode
 *   fps(), duration(): of what plays now (seconds)
 *   bounds(): {start, end}: where the playhead may go (default: the whole video; a
 *     play's range of a game in framing)
 *   ready(): whether there is something to play (default: always)
 *   range(): {start, end}: playing starts at start (again once at the end), stops at end
 *     (default: the whole video)
 *   rateAt(t): the playback rate at t (default 1)
 *   onTime(t): bring the page's own views to time t (each frame shown, each seek)
 *   addKeyframe(), deleteKeyframe(): K and Delete / Backspace (at the playhead)
 *   keys: {key: (event) => void}: the page's own keys, under the same conditions
 *   muteButton, volume (input type=range 0..1), helpSheet (<dialog>), helpButton:
 *     default: #mute-toggle, #volume, #key-help-sheet, #key-help-open (when present)
 */
export function createPlayer(options) {
  const { video, playButton, scrubber, timecode, fps, duration } = options;
  const ready = options.ready || (() => true);
  const bounds = options.bounds || (() => ({ start: 0, end: duration() }));
  const range = options.range || bounds;
  const rateAt = options.rateAt || (() => 1);
  const onTime = options.onTime || (() => {});
  const pageKeys = options.keys || {};
  const byId = (id) => document.getElementById(id);
  const muteButton = options.muteButton || byId("mute-toggle");
  const volumeSlider = options.volume || byId("volume");
  const helpSheet = options.helpSheet || byId("key-help-sheet");
  const helpButton = options.helpButton || byId("key-help-open");
  let sound = loadSound();
  let applied = null; // what was last set on the video: {muted, volume}
  const byFrame = typeof video.requestVideoFrameCallback === "function";
  let scrubbing = false; // the scrub bar's thumb is held: do not move it under the pointer
  let frameRequest = 0;

  const now = () => video.currentTime || 0;

  // The video's sound: the setting, and silence where it plays slowed (as the export).
  // Set only when it changes, so that a mute set from elsewhere stays until then.
  function applySound(t = now()) {
    const slowed = ready() && rateAt(t) !== 1;
    const want = { muted: sound.muted || slowed, volume: sound.volume };
    if (!applied || applied.muted !== want.muted) video.muted = want.muted;
    if (!applied || applied.volume !== want.volume) video.volume = want.volume;
    applied = want;
    if (muteButton) {
      const silenced = slowed && !sound.muted;
      const title = silenced
        ? "Silent here: slow motion plays without sound, as in the export (M: sound on / off)"
        : sound.muted ? "Sound off (M: turn it on)" : "Sound on (M: turn it off)";
      muteButton.classList.toggle("slowed", silenced);
      if (muteButton.title !== title) muteButton.title = title;
    }
  }

  function showSound() {
    if (muteButton) {
      muteButton.setAttribute("aria-pressed", String(sound.muted));
      muteButton.setAttribute("aria-label", sound.muted ? "Unmute" : "Mute");
    }
    if (volumeSlider) volumeSlider.value = String(sound.volume);
    applySound();
  }

  /** Bring the timecode, the scrub bar and the page's views to time t. */
  function refresh(t = now()) {
    applySound(t);
    if (!ready()) return;
    timecode.textContent = `${formatTime(t)} / ${formatTime(bounds().end)}`;
    if (!scrubbing) scrubber.value = String(t);
    onTime(t);
  }

  // While playing: stop at the end of the range, play at the rate of the moment.
  function keepInRange(t) {
    if (video.paused || !ready()) return;
    const { end } = range();
    if (t >= end) {
      video.pause();
      video.currentTime = end;
    }
    const rate = rateAt(t);
    if (video.playbackRate !== rate) video.playbackRate = rate;
  }

  // Each frame shown while playing (the preview follows exactly what is on screen).
  function onFrame(_now, meta) {
    frameRequest = 0;
    const t = meta && typeof meta.mediaTime === "number" ? meta.mediaTime : now();
    keepInRange(t);
    refresh(t);
    if (!video.paused && !video.ended) scheduleFrame();
  }

  function scheduleFrame() {
    if (frameRequest) return;
    frameRequest = byFrame
      ? video.requestVideoFrameCallback(onFrame)
      : requestAnimationFrame(() => onFrame(0, null));
  }

  function cancelFrame() {
    if (!frameRequest) return;
    if (byFrame) video.cancelVideoFrameCallback(frameRequest);
    else cancelAnimationFrame(frameRequest);
    frameRequest = 0;
  }

  function showPlaying() {
    const playing = !video.paused && !video.ended;
    playButton.setAttribute("aria-label", playing ? "Pause" : "Play");
    playButton.setAttribute("aria-pressed", String(playing));
  }

  const player = {
    refresh,
    now,

    togglePlay() {
      if (!ready()) return;
      if (video.paused || video.ended) {
        const { start, end } = range();
        const t = now();
        if (video.ended || t >= end - 0.5 / fps() || t < start) video.currentTime = start;
        // The rate and the sound of where it starts, before the first frame.
        video.playbackRate = rateAt(video.currentTime);
        applySound(video.currentTime);
        video.play().catch(() => {});
      } else {
        video.pause();
      }
    },

    /** Go to time t (clamped to the bounds: the video, or a play's range of a game). */
    seek(t) {
      if (!ready()) return;
      const target = clamp(t, bounds().start, bounds().end);
      video.currentTime = target;
      refresh(target);
    },

    /** Pause and move by n frames. */
    stepFrames(n) {
      if (!ready()) return;
      video.pause();
      player.seek((Math.round(now() * fps()) + n) / fps());
    },

    /** Pause and move by n seconds. */
    stepSeconds(n) {
      if (!ready()) return;
      video.pause();
      player.seek(now() + n);
    },

    toStart() {
      if (!ready()) return;
      video.pause();
      player.seek(range().start);
    },

    toEnd() {
      if (!ready()) return;
      video.pause();
      player.seek(range().end);
    },

    /** Sound on / off (remembered for both editors). */
    toggleMute() {
      player.setSound({ muted: !sound.muted });
    },

    /** Change the sound setting ({muted, volume}, either) and remember it. */
    setSound(change) {
      sound = { ...sound, ...change };
      saveSound(sound);
      showSound();
    },

    sound: () => ({ ...sound }),

    /** Open the key help sheet. */
    showKeys() {
      if (helpSheet && !helpSheet.open) helpSheet.showModal();
    },
  };

  video.addEventListener("play", () => {
    showPlaying();
    cancelFrame(); // a request left from before may never come: ask again
    scheduleFrame();
  });
  video.addEventListener("pause", () => {
    showPlaying();
    refresh();
  });
  video.addEventListener("ended", showPlaying);
  for (const name of ["seeked", "loadeddata", "loadedmetadata"]) {
    video.addEventListener(name, () => refresh());
  }
  video.addEventListener("timeupdate", () => {
    keepInRange(now());
    if (video.paused) refresh();
  });

  playButton.addEventListener("click", () => player.togglePlay());
  options.backButton.addEventListener("click", () => player.stepFrames(-1));
  options.forwardButton.addEventListener("click", () => player.stepFrames(1));

  if (muteButton) muteButton.addEventListener("click", () => player.toggleMute());
  if (volumeSlider) {
    volumeSlider.addEventListener("input", () => player.setSound({ volume: clamp(Number(volumeSlider.value), 0, 1) }));
  }
  // The other editor, in another tab, changed it.
  window.addEventListener("storage", (event) => {
    if (event.key !== SOUND_KEY) return;
    sound = loadSound();
    showSound();
  });
  if (helpButton) helpButton.addEventListener("click", () => player.showKeys());

  scrubber.addEventListener("pointerdown", () => {
    scrubbing = true;
    video.pause();
  });
  for (const name of ["pointerup", "pointercancel", "change"]) {
    scrubber.addEventListener(name, () => {
      scrubbing = false;
    });
  }
  scrubber.addEventListener("input", () => {
    video.pause();
    player.seek(Number(scrubber.value));
  });

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || dialogOpen()) return;
    if (event.altKey || event.ctrlKey || event.metaKey || typingInto(event.target)) return;
    // These work with nothing to play too.
    if (event.key === "?" && helpSheet) {
      event.preventDefault();
      player.showKeys();
      return;
    }
    if ((event.key === "m" || event.key === "M") && !event.repeat) {
      event.preventDefault();
      player.toggleMute();
      return;
    }
    if (!ready()) return;
    if (isSpace(event)) {
      event.preventDefault(); // not a page scroll, not a click on the focused button
      if (!event.repeat) player.togglePlay();
    } else if (MOVES[event.key]) {
      const target = event.target;
      const slider = target instanceof HTMLInputElement && target.type === "range";
      if (slider && target !== scrubber) return; // the trim sliders move themselves
      event.preventDefault();
      MOVES[event.key](player, event.shiftKey);
    } else if ((event.key === "k" || event.key === "K") && options.addKeyframe) {
      event.preventDefault();
      if (!event.repeat) {
        video.pause();
        options.addKeyframe(now());
      }
    } else if ((event.key === "Delete" || event.key === "Backspace") && options.deleteKeyframe) {
      event.preventDefault();
      if (!event.repeat) {
        video.pause();
        options.deleteKeyframe(now());
      }
    } else if (pageKeys[event.key]) {
      pageKeys[event.key](event);
    }
  });
  // Space on a focused button would also "click" it on key up.
  document.addEventListener("keyup", (event) => {
    if (isSpace(event) && event.target instanceof HTMLButtonElement && ready() && !dialogOpen()) {
      event.preventDefault();
    }
  });

  showPlaying();
  showSound();
  return player;
}
