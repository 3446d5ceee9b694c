// The gallery: share links of each final video (make, copy, revoke), sharing/api.py.
//
// A link opens the video's public page for anyone who has it, without an account,
// until it expires or is revoked; a revoked link answers 404 everywhere at once.

import { api } from "/static/js/api.js";
import { $, el } from "/static/js/util.js";

const projectId = JSON.parse($("gallery-project").textContent);

function linkItem(box, link) {
  const live = link.status === "live";
  const url = el("input", { value: link.url, readonly: true, "aria-label": "Share link", "data-testid": "share-url" });
  const until = link.expires_at ? `until ${new Date(link.expires_at).toLocaleString()}` : "no expiry";
  return el(
    "li",
    { "data-testid": "share-link", "data-status": link.status },
    url,
    el("span", { class: "muted", text: live ? until : link.status }),
    live
      ? el("button", {
          type: "button", class: "link", text: "Copy", "data-testid": "share-copy",
          onclick: () => navigator.clipboard?.writeText(link.url).catch(() => url.select()),
        })
      : null,
    live
      ? el("button", {
          type: "button", class: "link danger", text: "Revoke", "data-testid": "share-revoke",
          onclick: async () => {
            const error = box.querySelector(".share-error");
            error.hidden = true;
            try {
              await api.del(`/api/share-links/${link.id}`);
              await load(box);
            } catch (err) {
              // The link still works: say so rather than look revoked.
              error.textContent = `Not revoked: ${err.error || String(err)}`;
              error.hidden = false;
            }
          },
        })
      : null,
  );
}

async function load(box) {
  const url = `/api/projects/${projectId}/final-videos/${box.dataset.videoId}/share-links`;
  const { links } = await api.get(url);
  box.querySelector(".share-links").replaceChildren(...links.map((link) => linkItem(box, link)));
}

for (const box of document.querySelectorAll("[data-testid=share]")) {
  const error = box.querySelector(".share-error");
  box.querySelector(".share-create").addEventListener("click", async () => {
    error.hidden = true;
    const days = box.querySelector(".share-expiry").value;
    try {
      await api.post(`/api/projects/${projectId}/final-videos/${box.dataset.videoId}/share-links`, {
        expires_in_days: days ? Number(days) : null,
      });
      await load(box);
    } catch (err) {
      error.textContent = err.error || String(err);
      error.hidden = false;
    }
  });
  load(box).catch((err) => {
    error.textContent = `The share links could not be loaded: ${err.error || String(err)}`;
    error.hidden = false;
  });
}
