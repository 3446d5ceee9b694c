// Overlay mode's pointer layer: the selected highlight's ellipse and its handles over
// the video. Dragging the ellipse moves it, its handles resize it (width, height, both),
// mouse, pen or finger alike (Pointer Events); two fingers on it pinch it bigger or
// smaller (rx and ry together) and carry it with their centre, one keyframe at the end;
// with the focus, the arrow keys move it (Shift: 10 px) and + and - resize it. Every
// change sets a keyframe at the playhead. A click elsewhere on the stage selects the
// topmost highlight drawn there, or clears the selection.

import { editableAt } from "/static/js/overlay/model.js";
import { clamp, round } from "/static/js/util.js";

const DRAG_THRESHOLD_PX = 2; // a smaller move is a click, not an edit
const RESIZE_STEP = 1.05; // + and - scale the ellipse by this

/**
 * @param {object} options
 *   layer: the handles' element over the video; frame: the video frame (sized to the video)
 *   width, height: the working video's size; model: overlay/model.js; video; now(): the playhead
 *   moved(): redraw after a change in progress (a drag)
 *   changed(options): a change is done (a keyframe set): save it, redraw everything, an
 *     undo step (options.coalesce: a held key's repeats are merged into one)
 *   select(key): select a highlight (null: none)
 */
export function createHandles({ layer, frame, width: W, height: H, model, video, now, moved, changed, select }) {
  let dragging = null;
  const pointers = new Map(); // pointerId -> {x, y} in video px: the fingers on the ellipse
  let nudges = 0; // key presses on the ellipse: a held key's repeats are one undo step

  const cssScale = () => frame.clientWidth / W; // CSS px per video px

  function toVideo(event) {
    const box = frame.getBoundingClientRect();
    const scale = box.width / W;
    return { x: (event.clientX - box.left) / scale, y: (event.clientY - box.top) / scale };
  }

  // The selected region's playhead, inside its span, for a keyframe.
  const editTime = (region) => round(clamp(now(), region.start, region.end), 3);

  function createEllipse() {
    const ellipse = document.createElement("div");
    ellipse.className = "ov-ellipse";
    ellipse.dataset.testid = "region-ellipse";
    ellipse.tabIndex = 0;
    ellipse.setAttribute("role", "group");
    ellipse.setAttribute("aria-label", "Highlight ellipse: drag to move, arrow keys move it, + and - resize it");
    ellipse.innerHTML = `
      <span class="ov-handle ov-handle-e" data-handle="rx" data-testid="region-ellipse-handle-rx" title="Width"></span>
      <span class="ov-handle ov-handle-s" data-handle="ry" data-testid="region-ellipse-handle-ry" title="Height"></span>
      <span class="ov-handle ov-handle-corner" data-handle="both" data-testid="region-ellipse-handle" title="Resize"></span>`;
    ellipse.addEventListener("pointerdown", startDrag);
    ellipse.addEventListener("keydown", ellipseKey);
    layer.append(ellipse);
    return ellipse;
  }

  /** Show the selected region's ellipse at time t (none when t is outside its span). */
  function render(t) {
    const region = model.selected();
    let ellipse = layer.querySelector(".ov-ellipse");
    if (!region || !editableAt(region, t)) {
      if (ellipse) ellipse.remove();
      return;
    }
    if (!ellipse) ellipse = createEllipse();
    const e = model.pathOf(region).at(t);
    ellipse.style.left = `${((e.x - e.rx) / W) * 100}%`;
    ellipse.style.top = `${((e.y - e.ry) / H) * 100}%`;
    ellipse.style.width = `${((2 * e.rx) / W) * 100}%`;
    ellipse.style.height = `${((2 * e.ry) / H) * 100}%`;
    ellipse.style.setProperty("--region-color", region.color);
    ellipse.classList.toggle("on-keyframe", Boolean(model.keyframeAt(region, t)));
    ellipse.dataset.x = round(e.x, 2);
    ellipse.dataset.y = round(e.y, 2);
    ellipse.dataset.rx = round(e.rx, 2);
    ellipse.dataset.ry = round(e.ry, 2);
  }

  function startDrag(event) {
    if (event.button !== 0) return;
    const region = model.selected();
    if (!region) return;
    event.preventDefault();
    event.stopPropagation();
    const target = event.currentTarget;
    target.setPointerCapture(event.pointerId);
    if (!dragging) pointers.clear(); // a finger left from a pinch (or one never seen up) is done
    pointers.set(event.pointerId, toVideo(event));
    if (dragging && pointers.size === 2 && dragging.mode !== "pinch") {
      startPinch();
      return;
    }
    if (pointers.size > 1) return; // a third finger
    video.pause();
    const t = editTime(region);
    target.focus({ preventScroll: true });
    dragging = {
      region,
      t,
      mode: event.target.dataset.handle || "move",
      origin: toVideo(event),
      shape: model.pathOf(region).at(t),
      moved: false,
      pointerId: event.pointerId,
    };
    target.addEventListener("pointermove", dragMove);
    target.addEventListener("pointerup", endDrag);
    target.addEventListener("pointercancel", endDrag);
  }

  function pinchGeometry() {
    const [a, b] = [...pointers.values()];
    return { distance: Math.max(1, Math.hypot(b.x - a.x, b.y - a.y)), x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
  }

  // A second finger: from the shape as it is now, scale by the fingers' spread, move with
  // their centre.
  function startPinch() {
    const { region, t } = dragging;
    dragging = {
      region,
      t,
      mode: "pinch",
      shape: model.pathOf(region).at(t),
      start: pinchGeometry(),
      moved: dragging.moved,
    };
  }

  function pinchMove() {
    const { shape, start, region, t } = dragging;
    const g = pinchGeometry();
    const factor = g.distance / start.distance;
    if (!dragging.moved && Math.abs(g.distance - start.distance) * cssScale() < DRAG_THRESHOLD_PX &&
        Math.hypot(g.x - start.x, g.y - start.y) * cssScale() < DRAG_THRESHOLD_PX) return;
    dragging.moved = true;
    const next = { ...shape, x: shape.x + g.x - start.x, y: shape.y + g.y - start.y };
    next.rx = clamp(shape.rx * factor, 2, W);
    next.ry = clamp(shape.ry * factor, 2, H);
    model.setKeyframe(region, t, next);
    moved();
  }

  function dragMove(event) {
    if (!dragging || !pointers.has(event.pointerId)) return;
    pointers.set(event.pointerId, toVideo(event));
    if (dragging.mode === "pinch") {
      if (pointers.size >= 2) pinchMove();
      return;
    }
    if (event.pointerId !== dragging.pointerId) return;
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
    model.setKeyframe(region, t, next);
    moved();
  }

  // The first finger up ends a pinch (one change); the others are ignored from then on.
  function endDrag(event) {
    const target = event.currentTarget;
    if (target.hasPointerCapture(event.pointerId)) target.releasePointerCapture(event.pointerId);
    pointers.delete(event.pointerId);
    if (!pointers.size) {
      target.removeEventListener("pointermove", dragMove);
      target.removeEventListener("pointerup", endDrag);
      target.removeEventListener("pointercancel", endDrag);
    }
    if (!dragging || (dragging.mode !== "pinch" && event.pointerId !== dragging.pointerId)) return;
    const wasMoved = dragging.moved;
    dragging = null;
    if (wasMoved) changed();
  }

  function ellipseKey(event) {
    const region = model.selected();
    if (!region) return;
    const step = event.shiftKey ? 10 : 1;
    const t = editTime(region);
    const shape = model.pathOf(region).at(t);
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (moves[event.key]) {
      shape.x += moves[event.key][0];
      shape.y += moves[event.key][1];
    } else if (event.key === "+" || event.key === "=") {
      shape.rx *= RESIZE_STEP;
      shape.ry *= RESIZE_STEP;
    } else if (event.key === "-") {
      shape.rx /= RESIZE_STEP;
      shape.ry /= RESIZE_STEP;
    } else {
      return;
    }
    event.preventDefault();
    event.stopPropagation(); // not the player's keys
    video.pause();
    model.setKeyframe(region, t, shape);
    if (!event.repeat) nudges += 1;
    changed({ coalesce: `nudge-${nudges}` });
  }

  layer.addEventListener("click", (event) => {
    if (event.target !== layer) return;
    const p = toVideo(event);
    const t = now();
    const hit = model.regions
      .filter((r) => editableAt(r, t))
      .reverse()
      .find((r) => {
        const e = model.pathOf(r).at(t);
        return ((p.x - e.x) / e.rx) ** 2 + ((p.y - e.y) / e.ry) ** 2 <= 1;
      });
    select(hit ? hit.key : null);
  });

  return { render };
}
