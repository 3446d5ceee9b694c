// The highlight effects' arithmetic, from the constants the final render reads too.
//
// One source for the numbers: static/js/highlight_effects.json (`fx` below), fetched by
// the overlay editor and read by exports/overlay.py. These are pure functions of it:
// the canvas preview (overlay/preview.js) draws with them, and under node they are
// checked against exports/highlight_effects_vectors.json, the table the Python render
// is checked against as well (exports/tests/test_highlight_effects.py).
//
//   spotlight (dim_outside)    outside: c * factor        = a black layer at alpha 1 - factor
//   brighten_inside            inside:  c + (255 - c) * amount = a white layer at alpha amount
//   soft edge                  a linear ramp `featherPx` px either side of the ellipse
//   outline                    `stroke_width` px in the region's colour
//
// In YUV (the render works on yuv420p planes) the same affine maps move Y towards black
// or white and U, V towards grey: no colour conversion per pixel.

export const DIM_OUTSIDE = "dim_outside";
export const BRIGHTEN_INSIDE = "brighten_inside";

/** The constants, as the page serves them (`url`: the static file's URL). */
export async function loadHighlightEffects(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return response.json();
}

/** Python's round(): a half goes to the even neighbour (round(2.5) == 2, round(3.5) == 4). */
export function roundHalfEven(v) {
  const floor = Math.floor(v);
  const rest = v - floor;
  if (rest !== 0.5) return Math.round(v);
  return floor % 2 === 0 ? floor : floor + 1;
}

/** The soft edge of a working video of width x height, px either side of the ellipse. */
export function featherPx(fx, width, height) {
  const { min_px: minPx, divisor } = fx.feather;
  return Math.max(minPx, roundHalfEven(Math.min(width, height) / divisor));
}

/** The preview's layers: black over the whole frame, cut out inside each spotlight... */
export const dimLayerAlpha = (fx) => 1 - fx.dim_outside.factor;
/** ...and white inside each brightened ellipse. */
export const brightenLayerAlpha = (fx) => fx.brighten_inside.amount;

/** A layer of `value` (0..255) at `alpha` over `c`: canvas source-over compositing. */
export const over = (c, value, alpha) => c * (1 - alpha) + value * alpha;

/**
 * The soft edge as the preview's radial gradient draws it, in the ellipse's own scale
 * (1 = on the ellipse): full strength up to `inner` of `radius`, nothing from `radius`.
 */
export function edgeStops(shape, feather) {
  const f = feather / Math.sqrt(shape.rx * shape.ry);
  return { radius: 1 + f, inner: Math.max(0, (1 - f) / (1 + f)) };
}

/** How much of the inside the pixel at (x, y) is: 1 inside, 0 outside, a ramp between. */
export function edgeWeight(shape, feather, x, y) {
  const { radius, inner } = edgeStops(shape, feather);
  const p = Math.hypot((x - shape.x) / shape.rx, (y - shape.y) / shape.ry) / radius;
  if (p <= inner) return 1;
  if (p >= 1) return 0;
  return (1 - p) / (1 - inner);
}

/** An RGB pixel after `effect`, `weight` inside its ellipse (edgeWeight), as composited. */
export function rgbAfter(fx, effect, weight, rgb) {
  if (effect === DIM_OUTSIDE) {
    const alpha = dimLayerAlpha(fx) * (1 - weight); // the cut-out layer
    return rgb.map((c) => over(c, 0, alpha));
  }
  if (effect === BRIGHTEN_INSIDE) {
    const alpha = brightenLayerAlpha(fx) * weight;
    return rgb.map((c) => over(c, 255, alpha));
  }
  throw new Error(`unknown effect ${effect}`);
}

/**
 * A Y, U, V pixel of a `range` ("limited" or "full") frame after `effect`, `weight`
 * inside its ellipse: the render's per-plane map v -> anchor + (v - anchor) * factor,
 * blended with the original through the mask (the render rounds to uint8).
 */
export function yuvAfter(fx, effect, weight, range, yuv) {
  const { black, white } = fx.yuv.ranges[range];
  const grey = fx.yuv.grey;
  let anchors;
  let factor;
  let strength;
  if (effect === DIM_OUTSIDE) {
    [anchors, factor, strength] = [[black, grey, grey], fx.dim_outside.factor, 1 - weight];
  } else if (effect === BRIGHTEN_INSIDE) {
    [anchors, factor, strength] = [[white, grey, grey], 1 - fx.brighten_inside.amount, weight];
  } else {
    throw new Error(`unknown effect ${effect}`);
  }
  return yuv.map((v, i) => {
    const mapped = anchors[i] + (v - anchors[i]) * factor;
    return v + (mapped - v) * strength;
  });
}

/** The outline's width in px on the luma plane and on the chroma planes; null: none. */
export function strokePx(fx, strokeWidth) {
  if (!(strokeWidth > 0)) return null;
  const { chroma_scale: scale, chroma_min_px: minPx } = fx.stroke;
  return { luma: strokeWidth, chroma: Math.max(minPx, roundHalfEven(strokeWidth * scale)) };
}

/** A "#rrggbb" stroke colour as the render's Y, U, V (matrix "bt709" or "bt601"). */
export function colorToYuv(fx, color, matrix, range) {
  const { kr, kb } = fx.yuv.matrices[matrix];
  const { black, luma_scale: lumaScale, chroma_scale: chromaScale } = fx.yuv.ranges[range];
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(color.slice(i, i + 2), 16) / 255);
  const y = kr * r + (1 - kr - kb) * g + kb * b;
  const pb = (b - y) / (2 * (1 - kb));
  const pr = (r - y) / (2 * (1 - kr));
  const grey = fx.yuv.grey;
  return [black + lumaScale * y, grey + chromaScale * pb, grey + chromaScale * pr].map((v) =>
    Math.min(Math.max(roundHalfEven(v), 0), 255),
  );
}
