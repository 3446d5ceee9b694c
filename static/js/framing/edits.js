// The framing editor's edits of a clip in time: the trim (two sliders), slow-motion
// segments (a list), and the decorations under the scrub bar that show them with the
// crop keyframes.

import { $, clamp, el, round } from "/static/js/util.js";

const MIN_TRIM = 0.1; // the API refuses shorter trimmed clips
const SEGMENT_LENGTH = 1;

/**
 * @param {object} options
 *   clip(): the clip being edited; bounds(): {start, end} where its edits may lie (the
 *   clip, or its play's range of a game); trimRange(): {start, end} of its trim
 *   video; seek(t); edited(): save the clip
 *   trimStart, trimEnd (range inputs), segmentList, segmentNote, segmentAdd, deco
 */
export function createEdits(options) {
  const { clip, bounds, trimRange, video, seek, edited } = options;
  const { trimStart, trimEnd, segmentList, segmentNote, deco } = options;

  // --- the decorations under the scrub bar: trim, segments, keyframes -----------------

  function renderDeco() {
    const current = clip();
    const b = bounds();
    const d = b.end - b.start || 1;
    const share = (t) => `${(clamp(t / d, 0, 1) * 100).toFixed(3)}%`; // a length
    const pct = (t) => share(t - b.start); // a position
    const { start, end } = trimRange();
    deco.replaceChildren(
      el("span", { class: "deco-keep", style: `left:${pct(start)};width:${share(end - start)}` }),
      el("span", { class: "deco-out", style: `left:0;width:${pct(start)}` }),
      el("span", { class: "deco-out", style: `left:${pct(end)};right:0` }),
      ...current.segments
        .filter((s) => s.speed !== 1)
        .map((s) => el("span", { class: "deco-seg", style: `left:${pct(s.start)};width:${share(s.end - s.start)}` })),
      ...current.crop_keyframes.map((k) => el("span", { class: "deco-kf", style: `left:${pct(k.time)}` })),
    );
  }

  // --- trim --------------------------------------------------------------------------

  function renderTrim() {
    const { start, end } = trimRange();
    for (const input of [trimStart, trimEnd]) {
      input.min = String(bounds().start);
      input.max = String(bounds().end);
    }
    trimStart.value = String(start);
    trimEnd.value = String(end);
    $("trim-start-value").textContent = `${start.toFixed(2)} s`;
    $("trim-end-value").textContent = `${end.toFixed(2)} s`;
  }

  function onTrimInput(which) {
    const b = bounds();
    let start = Number(trimStart.value);
    let end = Number(trimEnd.value);
    if (which === "start") start = clamp(start, b.start, Math.max(b.start, end - MIN_TRIM));
    else end = clamp(end, Math.min(b.end, start + MIN_TRIM), b.end);
    const untrimmed = start <= b.start + 0.0005 && end >= b.end - 0.0005;
    clip().trim = untrimmed ? null : { start: round(start, 4), end: round(end, 4) };
    renderTrim();
    renderDeco();
    video.pause();
    seek(which === "start" ? start : end);
  }
  trimStart.addEventListener("input", () => onTrimInput("start"));
  trimEnd.addEventListener("input", () => onTrimInput("end"));
  trimStart.addEventListener("change", () => edited());
  trimEnd.addEventListener("change", () => edited());

  // --- slow-motion segments ----------------------------------------------------------

  const sortSegments = () => clip().segments.sort((a, b) => a.start - b.start);
  const overlaps = (segments) => segments.some((s, i) => i > 0 && s.start < segments[i - 1].end);

  options.segmentAdd.addEventListener("click", () => {
    const current = clip();
    const t = round(video.currentTime, 3);
    if (current.segments.some((s) => t >= s.start && t < s.end)) {
      segmentNote.textContent = "The playhead is already in a segment.";
      return;
    }
    const next = current.segments.filter((s) => s.start > t).map((s) => s.start);
    const end = round(Math.min(t + SEGMENT_LENGTH, bounds().end, ...next), 3);
    if (end - t < 0.05) {
      segmentNote.textContent = "No room for a segment here: move the playhead.";
      return;
    }
    current.segments.push({ start: t, end, speed: 0.5 });
    sortSegments();
    segmentNote.textContent = "";
    renderSegments();
    renderDeco();
    edited();
  });

  function changeSegment(segment, key, value) {
    const before = { ...segment };
    segment[key] = value;
    const candidate = [...clip().segments].sort((a, b) => a.start - b.start);
    if (segment.end <= segment.start || segment.start < bounds().start - 1e-3 || segment.end > bounds().end + 1e-3 || overlaps(candidate)) {
      Object.assign(segment, before);
      segmentNote.textContent = "Segments must end after they start and must not overlap.";
    } else {
      segmentNote.textContent = "";
      sortSegments();
      edited();
    }
    renderSegments();
    renderDeco();
  }

  function segmentItem(segment) {
    const timeInput = (key, label) =>
      el("input", {
        type: "number",
        class: "seg-time",
        "data-testid": `segment-${key}`,
        min: String(bounds().start),
        max: String(bounds().end),
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
          clip().segments = clip().segments.filter((s) => s !== segment);
          renderSegments();
          renderDeco();
          edited();
        },
      }),
    );
  }

  function renderSegments() {
    segmentList.replaceChildren(...clip().segments.map(segmentItem));
    if (!clip().segments.length) {
      segmentList.append(el("li", { class: "muted small empty-line", text: "No slow motion: the clip plays at 1×." }));
    }
  }

  return {
    renderDeco,
    /** Show the clip's trim, segments and decorations. */
    render() {
      renderTrim();
      renderSegments();
      renderDeco();
    },
    clear() {
      segmentList.replaceChildren();
      deco.replaceChildren();
    },
    /** The playback rate at source time t (slow motion inside a segment). */
    speedAt(t) {
      const segment = clip().segments.find((s) => t >= s.start && t < s.end);
      return segment ? segment.speed : 1;
    },
  };
}
