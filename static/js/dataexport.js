// The account page's "Export my data": start an export, follow its progress, offer the
// download once the zip is ready (accounts/dataexport.py builds it in the background).
// Without JavaScript the form posts and the page lists the exports as they stand.

import { api, ApiError } from "/static/js/api.js";
import { $, el } from "/static/js/util.js";

const POLL_MS = 1000;
const UNFINISHED = new Set(["pending", "building"]);

const section = $("data-exports");
const list = $("data-export-list");
const form = $("data-export-form");

function statusUrl(id) {
  return `${section.dataset.startUrl}${id}`;
}

function rowFor(id) {
  let row = list.querySelector(`[data-id="${id}"]`);
  if (!row) {
    row = el(
      "li",
      { class: "data-export", "data-id": id },
      el("span", { class: "data-export-date", text: new Date().toLocaleString() }),
      el("progress", { max: "100", value: "0" }),
      el("span", { class: "data-export-message" }),
    );
    list.prepend(row);
  }
  return row;
}

/** Show `state` (the status endpoint's JSON) in its row. */
function show(state) {
  const row = rowFor(state.id);
  row.dataset.status = state.status;
  const bar = row.querySelector("progress");
  bar.value = state.percent;
  bar.hidden = !UNFINISHED.has(state.status);
  row.querySelector(".data-export-message").textContent = state.message;
  const link = row.querySelector(".data-export-download");
  if (state.status === "ready" && !link) {
    const size = (state.size / (1024 * 1024)).toFixed(1);
    row.append(
      el("a", {
        class: "data-export-download",
        href: `${statusUrl(state.id)}/download`,
        text: `Download (${size} MB)`,
        // Downloadable once: after the click the link says so instead of a second try.
        onclick: () => setTimeout(() => show({ ...state, status: "downloaded", message: "Downloaded" }), 0),
      }),
    );
  } else if (state.status !== "ready" && link) {
    link.remove();
  }
}

async function follow(id) {
  for (;;) {
    let state;
    try {
      state = await api.get(statusUrl(id));
    } catch (err) {
      if (!(err instanceof ApiError) || err.status === 404) return;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS * 3));
      continue;
    }
    show(state);
    if (!UNFINISHED.has(state.status)) return;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const state = await api.post(section.dataset.startUrl);
    show(state);
    await follow(state.id);
  } catch (err) {
    const message = err instanceof ApiError ? err.error : String(err);
    list.prepend(el("li", { class: "data-export form-error", text: message }));
  } finally {
    button.disabled = false;
  }
});

for (const row of list.querySelectorAll(".data-export")) {
  if (UNFINISHED.has(row.dataset.status)) follow(row.dataset.id);
}
