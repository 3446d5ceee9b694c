// The framing editor's clips: the list in reel order (select, move up and down,
// delete after a confirmation) and uploads (the button, or a file dropped on the stage).

import { api, upload } from "/static/js/api.js";
import { formatTime } from "/static/js/player.js";
import { $, el } from "/static/js/util.js";

function clipSummary(clip) {
  const bits = [];
  if (clip.crop_keyframes.length) {
    bits.push(`${clip.crop_keyframes.length} keyframe${clip.crop_keyframes.length === 1 ? "" : "s"}`);
  }
  if (clip.trim) bits.push("trimmed");
  if (clip.segments.some((s) => s.speed !== 1)) bits.push("slow-mo");
  return bits.join(" · ");
}

/**
 * @param {object} options
 *   projectId; clips: the project's, in any order; current(): the clip being edited
 *   select(clip): edit another clip (null: none); autosave (autosave.js)
 *   forget(id): a deleted clip has nothing left to save
 */
export function createClips({ projectId, clips: initial, current, select, autosave, forget }) {
  const list = $("clip-list");
  const dialog = $("confirm-dialog");
  let clips = [...initial].sort((a, b) => a.position - b.position);

  function confirmDelete(title, text) {
    dialog.querySelector("#confirm-title").textContent = title;
    dialog.querySelector(".confirm-text").textContent = text;
    dialog.returnValue = "";
    dialog.showModal();
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    });
  }

  const actionButton = (testid, label, title, text, onclick, extra = {}) =>
    el("button", { type: "button", class: "icon-button small-icon", "data-testid": testid, "aria-label": label, title, text, onclick, ...extra });

  function clipItem(clip, index) {
    const isCurrent = current() && clip.id === current().id;
    const length = clip.range ? clip.range.end - clip.range.start : clip.duration;
    const from = clip.range ? ` · play of a game at ${formatTime(clip.range.start)}` : "";
    const meta = `${clip.width}×${clip.height} · ${Math.round(clip.fps)} fps · ${length.toFixed(1)} s${from}`;
    return el(
      "li",
      {
        class: `clip-item${isCurrent ? " current" : ""}`,
        "data-testid": "clip-item",
        "data-clip-id": String(clip.id),
        "aria-current": isCurrent ? "true" : null,
      },
      el(
        "button",
        { type: "button", class: "clip-select", "aria-label": `Edit clip ${index + 1}: ${clip.name}`, onclick: () => select(clip) },
        el("span", { class: "clip-index", text: String(index + 1) }),
        el(
          "span",
          { class: "clip-text" },
          el("span", { class: "clip-name", text: clip.name, title: clip.name }),
          el("span", { class: "clip-meta", text: meta }),
          el("span", { class: "clip-edits", text: clipSummary(clip) }),
        ),
      ),
      el(
        "span",
        { class: "clip-actions" },
        actionButton("clip-up", `Move ${clip.name} up`, "Move up", "↑", () => move(index, -1), { disabled: index === 0 }),
        actionButton("clip-down", `Move ${clip.name} down`, "Move down", "↓", () => move(index, 1), {
          disabled: index === clips.length - 1,
        }),
        actionButton("clip-delete", `Delete ${clip.name}`, "Delete clip", "×", () => remove(clip), {
          class: "icon-button small-icon danger",
        }),
      ),
    );
  }

  function render() {
    list.replaceChildren(...clips.map(clipItem));
    if (!clips.length) list.append(el("li", { class: "muted small empty-line", text: "No clips yet." }));
  }

  async function move(index, direction) {
    const target = index + direction;
    if (target < 0 || target >= clips.length) return;
    const before = [...clips];
    [clips[index], clips[target]] = [clips[target], clips[index]];
    render();
    autosave.show("Saving…", "pending");
    try {
      await api.patch(`/api/projects/${projectId}`, { clip_order: clips.map((c) => c.id) });
      autosave.settled();
    } catch (err) {
      clips = before;
      render();
      autosave.show(err.error || "The new order could not be saved.", "error");
    }
  }

  async function remove(clip) {
    const ok = await confirmDelete("Delete this clip?", `“${clip.name}” and its framing edits will be deleted.`);
    if (!ok) return;
    try {
      await api.del(`/api/projects/${projectId}/clips/${clip.id}`);
    } catch (err) {
      if (err.status !== 404) {
        autosave.show(err.error || "The clip could not be deleted.", "error");
        return;
      }
    }
    forget(clip.id);
    clips = clips.filter((c) => c.id !== clip.id);
    if (current() && current().id === clip.id) select(clips[0] || null);
    else render();
  }

  // --- upload ------------------------------------------------------------------------

  const uploadBox = $("upload");
  const uploadBar = $("upload-progress");
  const uploadError = $("upload-error");

  function showUploadProgress(name, fraction, text) {
    const value = Math.round(fraction * 100);
    uploadBox.hidden = false;
    $("upload-name").textContent = name;
    $("upload-pct").textContent = text || `${value}%`;
    uploadBar.setAttribute("aria-valuenow", String(value));
    uploadBar.querySelector(".progress-fill").style.width = `${value}%`;
  }

  async function uploadFiles(files) {
    uploadError.hidden = true;
    for (const file of files) {
      showUploadProgress(file.name, 0);
      try {
        const clip = await upload(`/api/projects/${projectId}/clips`, file, {
          onProgress: (fraction) => showUploadProgress(file.name, fraction, fraction >= 1 ? "Checking the video…" : null),
        }).promise;
        showUploadProgress(file.name, 1, "Uploaded");
        clip.crop_keyframes = clip.crop_keyframes || [];
        clip.segments = clip.segments || [];
        clips.push(clip);
        select(clip);
      } catch (err) {
        uploadError.textContent = `${file.name}: ${err.error || "the upload failed."}`;
        uploadError.hidden = false;
      }
    }
    setTimeout(() => {
      if (uploadBar.getAttribute("aria-valuenow") === "100") uploadBox.hidden = true;
    }, 2500);
  }

  $("clip-upload").addEventListener("change", (event) => {
    const files = [...event.target.files];
    event.target.value = "";
    if (files.length) uploadFiles(files);
  });

  const stage = $("stage");
  stage.addEventListener("dragover", (event) => {
    if ([...event.dataTransfer.types].includes("Files")) {
      event.preventDefault();
      stage.classList.add("drop-target");
    }
  });
  stage.addEventListener("dragleave", () => stage.classList.remove("drop-target"));
  stage.addEventListener("drop", (event) => {
    event.preventDefault();
    stage.classList.remove("drop-target");
    const files = [...event.dataTransfer.files].filter((f) => f.type.startsWith("video/"));
    if (files.length) uploadFiles(files);
  });

  return {
    render,
    /** The clips in reel order. */
    all: () => clips,
    find: (id) => clips.find((c) => c.id === id),
  };
}
