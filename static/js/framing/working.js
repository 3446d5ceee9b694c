// The framing export and the working video it makes: the export button and its
// progress (exportprogress.js), the video under the editor, the overlay tab it opens,
// and "edits since this export" once the clips change again. Also the AI upscaling
// option: offered, with an estimate of the time it adds, when the server has a model
// (GET /api/exports/options?project=<id>); otherwise a line says why it is not.

import { api } from "/static/js/api.js";
import { createExportProgress } from "/static/js/exportprogress.js";
import { $ } from "/static/js/util.js";

/**
 * @param {object} options
 *   projectId; data: the page's project data; autosave (autosave.js)
 *   hasClips(): whether there is anything to export
 */
export function createWorking({ projectId, data, autosave, hasClips }) {
  const section = $("working-section");
  const video = $("working-video");
  const overlayTab = $("tab-overlay");
  const exportButton = $("export-button");

  function show(info) {
    if (video.getAttribute("src") !== info.url) video.src = info.url;
    const size = info.size_bytes ? ` · ${(info.size_bytes / 1048576).toFixed(1)} MB` : "";
    $("working-meta").textContent = `${info.width}×${info.height} · ${info.duration.toFixed(1)} s${size}`;
    section.hidden = false;
    markStale(false);
    $("export-result").hidden = false;
    overlayTab.href = `/projects/${projectId}/overlay/`;
    overlayTab.classList.remove("disabled");
    overlayTab.removeAttribute("aria-disabled");
    overlayTab.removeAttribute("title");
  }

  /** Edits since the working video was made: exporting is the next step again. */
  function markStale(stale) {
    $("working-stale").hidden = !stale;
    exportButton.classList.toggle("primary", stale);
    exportButton.textContent = "Export again";
  }

  async function load() {
    try {
      show(await api.get(`/api/projects/${projectId}/working-video`));
    } catch (err) {
      autosave.show(err.error || "The working video could not be loaded.", "error");
    }
  }

  const upscale = createUpscaleOption(projectId);

  const exporter = createExportProgress({
    container: $("export-slot"),
    projectId,
    kind: "framing",
    button: exportButton,
    startBody: () => upscale.body(),
    beforeStart: async () => {
      if (!hasClips()) throw new Error("Upload a clip before exporting.");
      if (!(await autosave.flush())) {
        throw new Error(`Your edits are not saved yet: ${autosave.error}`);
      }
    },
    onComplete: () => {
      load();
      upscale.refresh(); // an upscaled export measured the model: a better estimate
    },
  });

  return {
    /** Show the working video the page came with, and pick up a running export. */
    start() {
      if (data.working_video) {
        show(data.working_video);
        if (data.clips_in_progress > 0) markStale(true);
      }
      exporter.resume();
      upscale.refresh();
    },
    /** A clip was edited: a working video on the page is out of date now. */
    edited() {
      if (!section.hidden) markStale(true);
      upscale.refreshSoon(); // trims and slow motion change the frames to upscale
    },
  };
}

function formatSeconds(seconds) {
  const s = Math.max(1, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** The upscaling checkbox (when the server has a model) or the line saying why not. */
function createUpscaleOption(projectId) {
  const option = $("upscale-option");
  const checkbox = $("upscale-checkbox");
  const label = $("upscale-label");
  const estimate = $("upscale-estimate");
  const unavailable = $("upscale-unavailable");
  let available = false;
  let timer = null;

  function show(data) {
    const info = data.upscale || {};
    available = Boolean(info.available && info.model);
    option.hidden = !available;
    checkbox.disabled = !available;
    unavailable.hidden = available;
    if (!available) {
      checkbox.checked = false;
      const reason = info.reason || "no model is configured";
      unavailable.textContent = /^AI upscaling/i.test(reason)
        ? `${reason}.`
        : `AI upscaling is unavailable: ${reason}.`;
      return;
    }
    const model = info.model;
    label.textContent = `AI upscaling (${model.scale}x ${model.architecture}, ${model.name})`;
    const est = data.estimate;
    estimate.textContent = est
      ? `Adds about ${formatSeconds(est.seconds)} for ${est.frames} frames. ` +
        `An estimate: ${est.method}.`
      : "No estimate yet: upload a clip first.";
    if (data.mode === "mock") estimate.textContent += " (Mock mode: the test export is not upscaled.)";
  }

  async function refresh() {
    if (timer) clearTimeout(timer);
    timer = null;
    try {
      show(await api.get(`/api/exports/options?project=${encodeURIComponent(projectId)}`));
    } catch {
      /* keep what is shown; the next edit or export asks again */
    }
  }

  checkbox.addEventListener("change", () => {
    if (checkbox.checked) refresh();
  });
  // Clips uploaded, removed or reordered change the work too (the list is re-rendered).
  const list = $("clip-list");
  if (list) new MutationObserver(() => refreshSoon()).observe(list, { childList: true });

  function refreshSoon() {
    if (timer) clearTimeout(timer);
    timer = setTimeout(refresh, 2000);
  }

  return {
    refresh,
    /** After edits: once they have had time to save (the estimate reads saved clips). */
    refreshSoon,
    body: () => (available && checkbox.checked ? { upscale: true } : {}),
  };
}
