// Overlay mode's highlights: the regions, which one is selected, and the geometry of
// their keyframed ellipses. Regions are stored in working-video pixels and seconds:
//   {key, start, end, effect, color, stroke_width, keyframes: [{time, x, y, rx, ry}]}
// (`key` is this page's own id; the server's list has none and is saved as a whole).

import { ELLIPSE_KEYS, KeyframePath } from "/static/js/interpolation.js";
import { clamp, round } from "/static/js/util.js";

export const EFFECT_NAMES = { dim_outside: "Spotlight", brighten_inside: "Brighten" };
export const MAX_STROKE = 40; // px, as the API accepts
const DEFAULT_SPAN = 1.5; // seconds a new region lasts
const DEFAULT_COLOR = "#ffd400";
const DEFAULT_STROKE = 4;

// The render draws a region on frames with start <= t < end.
export const activeAt = (region, t) => region.start <= t && t < region.end;
// Its ellipse can be edited anywhere in its span, end included.
export const editableAt = (region, t) => region.start - 1e-3 <= t && t <= region.end + 1e-3;

/** The highlights of a working video of `width` x `height` px, `duration` s at `fps`. */
export function createModel({ width: W, height: H, duration, fps }) {
  const pathCache = new WeakMap(); // keyframes array -> KeyframePath (arrays are replaced on edit)
  let nextKey = 1;

  const model = {
    regions: [],
    selectedKey: null,

    selected() {
      return model.regions.find((r) => r.key === model.selectedKey) || null;
    },

    /** The region's ellipse as a function of time ({x, y, rx, ry} = pathOf(r).at(t)). */
    pathOf(region) {
      let path = pathCache.get(region.keyframes);
      if (!path) {
        path = new KeyframePath(region.keyframes, ELLIPSE_KEYS);
        pathCache.set(region.keyframes, path);
      }
      return path;
    },

    /** The regions drawn at t, with their ellipses: [{region, ellipse}]. */
    activeShapes(t) {
      return model.regions
        .filter((r) => activeAt(r, t))
        .map((region) => ({ region, ellipse: model.pathOf(region).at(t) }));
    },

    load(serverRegions) {
      model.regions = serverRegions.map((region) => ({
        key: nextKey++,
        start: region.start,
        end: region.end,
        effect: region.effect,
        color: region.color,
        stroke_width: region.stroke_width,
        keyframes: region.keyframes.map((k) => ({ time: k.time, x: k.x, y: k.y, rx: k.rx, ry: k.ry })),
      }));
    },

    /** The body of PUT /api/projects/<id>/highlights. */
    toServer() {
      return {
        regions: model.regions.map((region) => ({
          start: region.start,
          end: region.end,
          effect: region.effect,
          color: region.color,
          stroke_width: region.stroke_width,
          keyframes: region.keyframes,
        })),
      };
    },

    /** A new spotlight at t (DEFAULT_SPAN long, inside the video), added last. */
    add(t) {
      let start = round(clamp(t, 0, duration), 3);
      const end = round(Math.min(duration, start + DEFAULT_SPAN), 3);
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
      model.regions.push(region);
      return region;
    },

    /** Remove a region; a selected one passes the selection to its neighbour. */
    remove(key) {
      const index = model.regions.findIndex((r) => r.key === key);
      if (index < 0) return false;
      model.regions.splice(index, 1);
      if (model.selectedKey === key) {
        const neighbour = model.regions[Math.min(index, model.regions.length - 1)];
        model.selectedKey = neighbour ? neighbour.key : null;
      }
      return true;
    },

    /** The keyframe at t (one within half a frame counts as "at t"), if any. */
    keyframeAt(region, t) {
      return region.keyframes.find((k) => Math.abs(k.time - t) <= 0.5 / fps);
    },

    /** Create or update the keyframe at time t. */
    setKeyframe(region, t, shape) {
      const time = round(clamp(t, region.start, region.end), 3);
      const keyframes = region.keyframes.slice();
      const index = keyframes.findIndex((k) => Math.abs(k.time - time) <= 0.5 / fps);
      if (index >= 0) {
        keyframes[index] = { time: keyframes[index].time, ...cleanShape(shape) };
      } else {
        keyframes.push({ time, ...cleanShape(shape) });
        keyframes.sort((a, b) => a.time - b.time);
      }
      region.keyframes = keyframes;
    },

    // Change a region's span and keep its keyframes inside it: keyframes outside are
    // replaced by one at the new boundary holding what the path showed there, so the
    // motion inside the span does not change.
    setSpan(region, start, end) {
      const path = model.pathOf(region);
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
    },

    /** Move a whole region (keyframes included) by `shift` seconds. */
    shift(region, shift) {
      region.keyframes = region.keyframes.map((k) => ({ ...k, time: round(k.time + shift, 3) }));
      region.start = round(region.start + shift, 3);
      region.end = round(region.end + shift, 3);
    },
  };

  function cleanShape(shape) {
    return {
      x: round(clamp(shape.x, 0, W), 2),
      y: round(clamp(shape.y, 0, H), 2),
      rx: round(clamp(shape.rx, 1, W), 2),
      ry: round(clamp(shape.ry, 1, H), 2),
    };
  }

  return model;
}
