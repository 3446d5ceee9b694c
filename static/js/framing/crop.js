// The framing editor's crop box: the video frame fitted into the stage, the crop window
// and the dimmed shades around it, and the path it follows (interpolation.js, the
// export's). Dragging moves it (mouse, pen or one finger:
// Pointer Events); the bottom-right corner resizes it with the project's shape kept; two
// fingers pinch it bigger or smaller around their centre (shape kept, inside the frame);
// with the focus, the arrow keys move it (Shift: 10x). A finished move or pinch becomes
// one keyframe at the playhead (`commit`).

import { CropPath } from "/static/js/interpolation.js";
import { clamp } from "/static/js/util.js";

/**
 * @param {object} options
 *   stage, frame, box (#crop-rect), video; aspect: the project's width / height
 *   clip(): the clip being edited (null: none); commit(rect): a move is done (source px)
 */
export function createCropBox({ stage, frame, box, video, aspect, clip, commit }) {
  const shades = Object.fromEntries([...frame.querySelectorAll(".crop-shade")].map((n) => [n.dataset.side, n]));
  let path = null; // the clip's CropPath
  let shown = null; // what the box shows now, in source pixels
  let drag = null; // an ongoing move, resize or pinch
  const pointers = new Map(); // pointerId -> {x, y}: the pointers down on the box
  let keyMoved = false;

  const frameSize = () => ({
    width: clip().width || video.videoWidth,
    height: clip().height || video.videoHeight,
  });

  function layout() {
    if (!clip()) return;
    const { width, height } = frameSize();
    const scale = Math.min(stage.clientWidth / width, stage.clientHeight / height);
    frame.style.width = `${Math.floor(width * scale)}px`;
    frame.style.height = `${Math.floor(height * scale)}px`;
  }
  new ResizeObserver(layout).observe(stage);
  video.addEventListener("loadedmetadata", layout);

  function show(rect) {
    shown = rect;
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
    place(box, left, top, w, h);
    place(shades.top, 0, 0, 100, top);
    place(shades.bottom, 0, top + h, 100, 100 - top - h);
    place(shades.left, 0, top, left, h);
    place(shades.right, left + w, top, 100 - left - w, h);
  }

  // The smallest and largest crop widths that fit with their top-left at (x, y).
  function widthLimits(x, y) {
    const { width: W, height: H } = frameSize();
    const maxWidth = Math.min(W - x, (H - y) * aspect);
    return { minWidth: Math.min(maxWidth, Math.max(16, W * 0.05, 16 * aspect)), maxWidth };
  }

  function dragTo(event) {
    if (drag.mode === "pinch") return pinchTo();
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
    const { minWidth, maxWidth } = widthLimits(r.x, r.y);
    const wanted = Math.max(r.width + dx, (r.height + dy) * aspect);
    const width = clamp(wanted, minWidth, maxWidth);
    return { x: r.x, y: r.y, width, height: width / aspect };
  }

  // Two pointers: the change of their distance scales the box, their centre carries it;
  // the shape stays the project's and the box stays inside the frame.
  function pinchGeometry() {
    const [a, b] = [...pointers.values()];
    return { distance: Math.max(1, Math.hypot(b.x - a.x, b.y - a.y)), cx: (a.x + b.x) / 2, cy: (a.y + b.y) / 2 };
  }

  function pinchTo() {
    const { width: W, height: H } = frameSize();
    const g = pinchGeometry();
    const r = drag.rect;
    const maxWidth = Math.min(W, H * aspect);
    const minWidth = Math.min(maxWidth, widthLimits(0, 0).minWidth);
    const width = clamp(r.width * (g.distance / drag.distance), minWidth, maxWidth);
    const height = width / aspect;
    // The point of the box under the pinch's centre at the start stays under the centre.
    const fx = (drag.cx - r.x) / r.width;
    const fy = (drag.cy - r.y) / r.height;
    const cx = drag.cx + (g.cx - drag.startCx) * drag.scale;
    const cy = drag.cy + (g.cy - drag.startCy) * drag.scale;
    return {
      x: clamp(cx - fx * width, 0, W - width),
      y: clamp(cy - fy * height, 0, H - height),
      width,
      height,
    };
  }

  // A second finger turns the drag into a pinch, from where the box is now.
  function startPinch() {
    const rect = drag.moved ? dragTo(drag.last) : { ...drag.rect };
    const g = pinchGeometry();
    const scale = frameSize().width / frame.clientWidth;
    const bounds = frame.getBoundingClientRect();
    drag = {
      mode: "pinch",
      rect,
      scale,
      distance: g.distance,
      startCx: g.cx,
      startCy: g.cy,
      cx: (g.cx - bounds.left) * scale, // the pinch's centre in source pixels
      cy: (g.cy - bounds.top) * scale,
      moved: drag.moved,
    };
  }

  box.addEventListener("pointerdown", (event) => {
    if (!clip() || event.button !== 0) return;
    event.preventDefault();
    if (!drag) pointers.clear(); // a finger left from a pinch (or one never seen up) is done
    pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
    box.setPointerCapture(event.pointerId);
    if (pointers.size === 2 && drag && drag.mode !== "pinch") {
      startPinch();
      return;
    }
    if (pointers.size > 1) return; // a third finger
    video.pause();
    box.focus({ preventScroll: true });
    drag = {
      mode: event.target.closest(".crop-handle-se") ? "resize" : "move",
      startX: event.clientX,
      startY: event.clientY,
      rect: { ...shown },
      scale: frameSize().width / frame.clientWidth,
      moved: false,
      pointerId: event.pointerId,
      last: event,
    };
    box.classList.add("dragging");
  });

  box.addEventListener("pointermove", (event) => {
    if (!pointers.has(event.pointerId)) return;
    pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
    if (!drag) return;
    if (drag.mode === "pinch") {
      if (pointers.size < 2) return;
      drag.moved = true;
      show(pinchTo());
      return;
    }
    if (event.pointerId !== drag.pointerId) return;
    if (event.clientX !== drag.startX || event.clientY !== drag.startY) drag.moved = true;
    drag.last = event;
    show(dragTo(event));
  });

  // The first finger up ends a pinch (one keyframe); the other is ignored from then on.
  function endDrag(event, cancelled) {
    if (!pointers.delete(event.pointerId) || !drag) return;
    if (drag.mode !== "pinch" && event.pointerId !== drag.pointerId) return;
    const { moved } = drag;
    const rect = moved && !cancelled ? (drag.mode === "pinch" ? shown : dragTo(event)) : null;
    drag = null;
    box.classList.remove("dragging");
    if (rect) commit({ ...rect });
    else show(path.at(video.currentTime));
  }
  box.addEventListener("pointerup", (event) => endDrag(event, false));
  box.addEventListener("pointercancel", (event) => endDrag(event, true));

  // The keyframe is written on key up.
  box.addEventListener("keydown", (event) => {
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (!clip() || !moves[event.key]) return;
    event.preventDefault();
    event.stopPropagation(); // not the player's keys
    video.pause();
    const { width: W, height: H } = frameSize();
    const step = (event.shiftKey ? 10 : 1) * Math.max(1, W / 200);
    const [mx, my] = moves[event.key];
    show({
      ...shown,
      x: clamp(shown.x + mx * step, 0, W - shown.width),
      y: clamp(shown.y + my * step, 0, H - shown.height),
    });
    keyMoved = true;
  });
  box.addEventListener("keyup", (event) => {
    if (keyMoved && event.key.startsWith("Arrow")) {
      keyMoved = false;
      commit(shown);
    }
  });

  return {
    layout,
    /** Build the path again from the clip's keyframes (after every change to them). */
    rebuild() {
      const { width, height } = frameSize();
      path = new CropPath(clip().crop_keyframes, width, height, aspect);
    },
    /** What the box shows now (source pixels), or null before it shows anything. */
    shown: () => (shown ? { ...shown } : null),
    /** Show the crop at time t (not while it is being dragged). */
    showAt(t) {
      if (!drag) show(path.at(t));
    },
  };
}
