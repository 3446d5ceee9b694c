// The final video's export settings (templates/projects/_final_presets.html): resolution,
// quality and the title card. They are the project's (PATCH /api/projects/<id>), saved a
// moment after each change with their own save status; the export saves them first.
// The preview image is the server's drawing of the saved card (the one the export
// uses), so it is reloaded after each save.

import { api } from "/static/js/api.js";
import { createAutosave } from "/static/js/autosave.js";
import { $ } from "/static/js/util.js";

const RESOLUTION_TEXT = { "1080p": "1080p", "720p": "720p" };
const QUALITY_TEXT = { high: "high quality", standard: "standard quality", small: "smaller file" };
const CARD_FIELDS = ["enabled", "player", "team", "date", "primary", "accent"];

/**
 * @param {{projectId: number, data: object}} options data: the page's project data
 * @returns {{flush: () => Promise<boolean>, readonly error: string}}
 */
export function createPresets({ projectId, data }) {
  const form = $("presets-form");
  const summary = $("presets-summary");
  const preview = $("title-card-preview");
  const fields = Object.fromEntries(CARD_FIELDS.map((name) => [name, $(`card-${name}`)]));
  const resolution = $("preset-resolution");
  const quality = $("preset-quality");
  let previewRevision = 0;

  function fill(project) {
    resolution.value = project.final_resolution;
    quality.value = project.final_quality;
    const card = project.title_card;
    fields.enabled.checked = card.enabled;
    for (const name of ["player", "team", "date", "primary", "accent"]) fields[name].value = card[name];
  }

  function read() {
    return {
      final_resolution: resolution.value,
      final_quality: quality.value,
      title_card: {
        enabled: fields.enabled.checked,
        player: fields.player.value,
        team: fields.team.value,
        date: fields.date.value,
        primary: fields.primary.value,
        accent: fields.accent.value,
      },
    };
  }

  function describe() {
    const card = fields.enabled.checked ? "title card" : "no title card";
    summary.textContent = `${RESOLUTION_TEXT[resolution.value]} · ${QUALITY_TEXT[quality.value]} · ${card}`;
    for (const name of ["player", "team", "date", "primary", "accent"]) {
      fields[name].disabled = !fields.enabled.checked;
    }
  }

  function showPreview() {
    preview.hidden = !fields.enabled.checked;
    if (preview.hidden) return;
    previewRevision += 1;
    preview.src = `/projects/${projectId}/title-card.png?r=${previewRevision}`;
  }

  const autosave = createAutosave({
    status: $("presets-status"),
    save: async () => {
      const saved = await api.patch(`/api/projects/${projectId}`, read());
      showPreview();
      return saved;
    },
  });

  fill(data);
  describe();
  showPreview();
  autosave.show("");

  form.addEventListener("submit", (event) => event.preventDefault());
  form.addEventListener("input", (event) => {
    // Typing a name is saved once it pauses, like every other edit.
    describe();
    if (event.target.type === "text") autosave.edited();
  });
  form.addEventListener("change", (event) => {
    describe();
    if (event.target.type === "text") return;
    const named = fields.player.value.trim() || fields.team.value.trim();
    if (event.target === fields.enabled && fields.enabled.checked && !named) {
      // Nothing to draw yet: saved once a name or a team is typed.
      fields.player.focus();
      autosave.show("Type a player name or a team for the card.", "pending");
      return;
    }
    autosave.edited();
  });

  return {
    flush: () => autosave.flush(),
    get error() {
      return autosave.error;
    },
  };
}
