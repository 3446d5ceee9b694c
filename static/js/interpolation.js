// Smooth, never-jumping interpolation of keyframed values (crop rectangles, ellipses).
//
// The browser preview's copy of exports/interpolation.py, operation for operation, so
// the preview shows exactly what the export renders: each component is a monotone cubic
// Hermite spline (Fritsch-Carlson, Fritsch-Butland interior tangents) that never
// overshoots its keyframes; the first keyframe is held before it, the last after it.
// Both are checked against exports/interpolation_vectors.json.
//
// An ES module: `import { CropPath } from "/static/js/interpolation.js"` in a page,
// or the same from node.

export const CROP_KEYS = ["x", "y", "width", "height"];
export const ELLIPSE_KEYS = ["x", "y", "rx", "ry"];

function secantSlopes(times, values) {
  const slopes = [];
  for (let i = 0; i < times.length - 1; i++) {
    slopes.push((values[i + 1] - values[i]) / (times[i + 1] - times[i]));
  }
  return slopes;
}

// Fritsch-Carlson tangents: zero at local extrema, limited so the curve is monotone.
export function tangents(times, values) {
  const n = times.length;
  if (n < 2) return new Array(n).fill(0);
  const d = secantSlopes(times, values);
  const m = new Array(n).fill(0);
  m[0] = d[0];
  m[n - 1] = d[d.length - 1];
  for (let i = 1; i < n - 1; i++) {
    if (d[i - 1] * d[i] <= 0) {
      m[i] = 0;
    } else {
      // Weighted harmonic mean (Fritsch-Butland), monotone for uneven spacing.
      const h0 = times[i] - times[i - 1];
      const h1 = times[i + 1] - times[i];
      const w0 = 2 * h1 + h0;
      const w1 = h1 + 2 * h0;
      m[i] = (w0 + w1) / (w0 / d[i - 1] + w1 / d[i]);
    }
  }
  if (m[0] * d[0] <= 0) m[0] = 0;
  if (m[n - 1] * d[d.length - 1] <= 0) m[n - 1] = 0;
  return m;
}

// Index of the last time <= t (Python's bisect_right(times, t) - 1).
function segmentIndex(times, t) {
  let lo = 0;
  let hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (t < times[mid]) hi = mid;
    else lo = mid + 1;
  }
  return lo - 1;
}

// One keyframed component, prepared once and evaluated at many times.
export class Track {
  constructor(times, values) {
    this.times = Array.from(times, Number);
    this.values = Array.from(values, Number);
    this.tangents = tangents(this.times, this.values);
  }

  at(t) {
    const { times, values } = this;
    if (t <= times[0]) return values[0];
    if (t >= times[times.length - 1]) return values[values.length - 1];
    const i = segmentIndex(times, t);
    const h = times[i + 1] - times[i];
    const s = (t - times[i]) / h;
    const s2 = s * s;
    const s3 = s * s * s;
    return (
      (2 * s3 - 3 * s2 + 1) * values[i] +
      (s3 - 2 * s2 + s) * h * this.tangents[i] +
      (-2 * s3 + 3 * s2) * values[i + 1] +
      (s3 - s2) * h * this.tangents[i + 1]
    );
  }
}

// Keyframes [{time, <keys>...}] (sorted by time, at least one) as a function of time.
export class KeyframePath {
  constructor(keyframes, keys) {
    if (!keyframes || keyframes.length === 0) {
      throw new Error("a path needs at least one keyframe");
    }
    const times = keyframes.map((k) => Number(k.time));
    this.keys = Array.from(keys);
    this.tracks = {};
    for (const key of this.keys) {
      this.tracks[key] = new Track(
        times,
        keyframes.map((k) => Number(k[key])),
      );
    }
  }

  at(t) {
    const out = {};
    for (const key of this.keys) out[key] = this.tracks[key].at(t);
    return out;
  }
}

// The largest centred window of `aspect` (width / height) in the frame.
export function defaultCrop(frameWidth, frameHeight, aspect) {
  let width = Number(frameWidth);
  let height = Number(frameHeight);
  if (width / height > aspect) {
    width = height * aspect;
  } else {
    height = width / aspect;
  }
  return {
    x: (frameWidth - width) / 2,
    y: (frameHeight - height) / 2,
    width,
    height,
  };
}

// Keep a rectangle inside the frame (keyframes are inside; rounding may not be).
export function clampRect(rect, frameWidth, frameHeight) {
  const width = Math.min(Math.max(rect.width, 1), frameWidth);
  const height = Math.min(Math.max(rect.height, 1), frameHeight);
  const x = Math.min(Math.max(rect.x, 0), frameWidth - width);
  const y = Math.min(Math.max(rect.y, 0), frameHeight - height);
  return { x, y, width, height };
}

// Where the crop window is at each source time of one clip.
export class CropPath {
  constructor(keyframes, frameWidth, frameHeight, aspect) {
    this.frameWidth = frameWidth;
    this.frameHeight = frameHeight;
    const any = keyframes && keyframes.length > 0;
    this.fixed = any ? null : defaultCrop(frameWidth, frameHeight, aspect);
    this.path = any ? new KeyframePath(keyframes, CROP_KEYS) : null;
  }

  at(t) {
    if (this.fixed !== null) return { ...this.fixed };
    return clampRect(this.path.at(t), this.frameWidth, this.frameHeight);
  }
}
