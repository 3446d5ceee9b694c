// Overlay mode's live preview: every highlight drawn on a <canvas> over the video, with
// the same keyframe interpolation (interpolation.js) and the same constants and
// arithmetic (overlay/effects.js, highlight_effects.json) as the final render:
// compositing the preview's layers is exactly the render's blend, spotlights light up
// their union, brightening applies after dimming and outlines come last, as in the
// render.

import {
  BRIGHTEN_INSIDE,
  DIM_OUTSIDE,
  brightenLayerAlpha,
  dimLayerAlpha,
  edgeStops,
  featherPx,
  strokePx,
} from "/static/js/overlay/effects.js";

/**
 * @param {{canvas: HTMLCanvasElement, width: number, height: number}} options
 *   width, height: the working video's size (the regions' pixels)
 */
export function createPreview({ canvas, width, height }) {
  const ctx = canvas.getContext("2d");
  let fx = null; // the constants, once loaded
  let feather = 0;
  let dimLayer = null;

  // Fill an ellipse whose edge fades over `feather` px either side, like the render's mask.
  function softEllipse(context, shape, inner, outer) {
    const stops = edgeStops(shape, feather);
    context.save();
    context.translate(shape.x, shape.y);
    context.scale(shape.rx, shape.ry);
    const gradient = context.createRadialGradient(0, 0, 0, 0, 0, stops.radius);
    gradient.addColorStop(0, inner);
    gradient.addColorStop(stops.inner, inner);
    gradient.addColorStop(1, outer);
    context.fillStyle = gradient;
    context.beginPath();
    context.arc(0, 0, stops.radius, 0, Math.PI * 2);
    context.fill();
    context.restore();
  }

  // Dim everything on a layer, cut each spotlight out of it, lay it over the video.
  function drawSpotlights(spots, scale) {
    if (!dimLayer) dimLayer = document.createElement("canvas");
    if (dimLayer.width !== canvas.width || dimLayer.height !== canvas.height) {
      dimLayer.width = canvas.width;
      dimLayer.height = canvas.height;
    }
    const layer = dimLayer.getContext("2d");
    layer.setTransform(1, 0, 0, 1, 0, 0);
    layer.globalCompositeOperation = "source-over";
    layer.clearRect(0, 0, dimLayer.width, dimLayer.height);
    layer.fillStyle = `rgba(0, 0, 0, ${dimLayerAlpha(fx)})`;
    layer.fillRect(0, 0, dimLayer.width, dimLayer.height);
    layer.globalCompositeOperation = "destination-out";
    layer.setTransform(scale, 0, 0, scale, 0, 0);
    for (const { ellipse } of spots) softEllipse(layer, ellipse, "rgba(0,0,0,1)", "rgba(0,0,0,0)");
    ctx.drawImage(dimLayer, 0, 0);
  }

  return {
    /** The constants (highlight_effects.json); nothing is drawn before they come. */
    setEffects(effects) {
      fx = effects;
      feather = featherPx(fx, width, height);
    },

    /** Size the canvas to `cssWidth` x `cssHeight` CSS px at the screen's pixel ratio. */
    resize(cssWidth, cssHeight) {
      const ratio = window.devicePixelRatio || 1;
      canvas.width = Math.max(1, Math.round(cssWidth * ratio));
      canvas.height = Math.max(1, Math.round(cssHeight * ratio));
    },

    /** Draw the highlights active now: [{region, ellipse: {x, y, rx, ry}}], in list order. */
    draw(shapes) {
      const scale = canvas.width / width; // device px per video px
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      if (!fx || shapes.length === 0) return;
      const spots = shapes.filter(({ region }) => region.effect === DIM_OUTSIDE);
      if (spots.length) drawSpotlights(spots, scale);
      ctx.setTransform(scale, 0, 0, scale, 0, 0);
      const white = `rgba(255,255,255,${brightenLayerAlpha(fx)})`;
      for (const { region, ellipse } of shapes) {
        if (region.effect === BRIGHTEN_INSIDE) softEllipse(ctx, ellipse, white, "rgba(255,255,255,0)");
      }
      for (const { region, ellipse } of shapes) {
        const stroke = strokePx(fx, region.stroke_width);
        if (!stroke) continue;
        ctx.beginPath();
        ctx.ellipse(ellipse.x, ellipse.y, ellipse.rx, ellipse.ry, 0, 0, Math.PI * 2);
        ctx.lineWidth = stroke.luma;
        ctx.strokeStyle = region.color;
        ctx.stroke();
      }
    },
  };
}
