// The framing export and the working video it makes: the export button and its
// progress (exportprogress.js), the video under the editor, the overlay tab it opens,
// and "edits since this export" once the clips change again.

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

  const exporter = createExportProgress({
    container: $("export-slot"),
    projectId,
    kind: "framing",
    button: exportButton,
    beforeStart: async () => {
      if (!hasClips()) throw new Error("Upload a clip before exporting.");
      if (!(await autosave.flush())) {
        throw new Error(`Your edits are not saved yet: ${autosave.error}`);
      }
    },
    onComplete: () => load(),
  });

  return {
    /** Show the working video the page came with, and pick up a running export. */
    start() {
      if (data.working_video) {
        show(data.working_video);
        if (data.clips_in_progress > 0) markStale(true);
      }
      exporter.resume();
    },
    /** A clip was edited: a working video on the page is out of date now. */
    edited() {
      if (!section.hidden) markStale(true);
    },
  };
}
