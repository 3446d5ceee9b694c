// The one way pages talk to the JSON API.
//
//   import { api, ApiError } from "/static/js/api.js";
//   const project = await api.get(`/api/projects/${id}`);
//   try { await api.patch(url, body); } catch (err) { show(err.error); }  // err.code too
//
// Every response's X-Sync-Status header is announced to the sync badge (a
// "reeleditor:sync-status" event on document), so "was my edit saved?" is answered
// by every request a page makes, not only by the badge's own polling.
//
// Import it by this absolute URL ("/static/js/api.js") from every page script so the
// browser loads one instance of the module.

/** The event name announced on `document` with `detail: {status}`. */
export const SYNC_EVENT = "reeleditor:sync-status";

const SYNC_STATUSES = new Set(["ok", "pending", "failed", "conflict"]);

/**
 * A failed API call. `error` is the sentence to show, `code` the machine-readable
 * reason (the API's `{error, code}` body; "network" when the server was not reached,
 * "http_<status>" when the body was not the API's JSON).
 */
export class ApiError extends Error {
  /**
   * @param {string} error
   * @param {string} code
   * @param {number} status HTTP status, 0 when no response came
   * @param {object|null} data the decoded body, if any (may hold `field`)
   */
  constructor(error, code, status, data = null) {
    super(error);
    this.name = "ApiError";
    this.error = error;
    this.code = code;
    this.status = status;
    this.data = data;
    this.field = data && data.field ? data.field : null;
  }
}

/** The value of the `csrftoken` cookie ("" if the page did not set it). */
export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

/**
 * Tell the sync badge (and anyone listening) the sync status a response reported.
 * Unknown or empty values are ignored.
 * @param {string|null} status ok | pending | failed | conflict
 */
export function reportSyncStatus(status) {
  if (!status || !SYNC_STATUSES.has(status)) return;
  document.dispatchEvent(new CustomEvent(SYNC_EVENT, { detail: { status } }));
}

/**
 * Listen to sync statuses reported by any API response.
 * @param {(status: string) => void} listener
 * @returns {() => void} call to stop listening
 */
export function onSyncStatus(listener) {
  const handler = (event) => listener(event.detail.status);
  document.addEventListener(SYNC_EVENT, handler);
  return () => document.removeEventListener(SYNC_EVENT, handler);
}

function errorFromBody(status, data, fallbackText) {
  if (data && typeof data.error === "string") {
    return new ApiError(data.error, data.code || `http_${status}`, status, data);
  }
  const text = status === 413 ? "That file is too large." : fallbackText || `The server answered ${status}.`;
  return new ApiError(text, `http_${status}`, status, data);
}

/**
 * Call the API. Sends and receives JSON; adds the CSRF header on unsafe methods.
 * Resolves with the decoded body (null for an empty one, e.g. 204); rejects with an
 * ApiError for a non-2xx answer or a network failure.
 * @param {string} method GET | POST | PATCH | PUT | DELETE
 * @param {string} url e.g. "/api/projects/3"
 * @param {object} [body] sent as JSON when given (a FormData is sent as is)
 * @param {{signal?: AbortSignal}} [options]
 * @returns {Promise<any>}
 */
export async function request(method, url, body, options = {}) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin", signal: options.signal };
  if (!["GET", "HEAD", "OPTIONS"].includes(method)) headers["X-CSRFToken"] = csrfToken();
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError("Could not reach the server. Check the connection and try again.", "network", 0);
  }
  reportSyncStatus(response.headers.get("X-Sync-Status"));
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) throw errorFromBody(response.status, data);
  return data;
}

/** Shorthands: `api.get(url)`, `api.post(url, body)`, `api.patch`, `api.put`, `api.del`. */
export const api = {
  /** @param {string} url @param {{signal?: AbortSignal}} [options] */
  get: (url, options) => request("GET", url, undefined, options),
  /** @param {string} url @param {object} [body] */
  post: (url, body, options) => request("POST", url, body === undefined ? {} : body, options),
  /** @param {string} url @param {object} body */
  patch: (url, body, options) => request("PATCH", url, body, options),
  /** @param {string} url @param {object} body */
  put: (url, body, options) => request("PUT", url, body, options),
  /** @param {string} url */
  del: (url, options) => request("DELETE", url, undefined, options),
};

/**
 * Upload a file with progress (fetch cannot report upload progress): a multipart POST
 * of `fields` plus the file under `fieldName`.
 * @param {string} url
 * @param {File|Blob} file
 * @param {{fieldName?: string, fields?: object, onProgress?: (fraction: number) => void}} [options]
 *   onProgress gets 0..1 as the bytes go out
 * @returns {{promise: Promise<any>, abort: () => void}} promise resolves with the JSON
 *   body, rejects with an ApiError (code "aborted" after abort())
 */
export function upload(url, file, options = {}) {
  const xhr = new XMLHttpRequest();
  const form = new FormData();
  for (const [key, value] of Object.entries(options.fields || {})) form.append(key, value);
  form.append(options.fieldName || "file", file);
  const promise = new Promise((resolve, reject) => {
    xhr.open("POST", url);
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable && options.onProgress) options.onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      reportSyncStatus(xhr.getResponseHeader("X-Sync-Status"));
      let data = null;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        data = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(errorFromBody(xhr.status, data));
    });
    xhr.addEventListener("error", () =>
      reject(new ApiError("The upload failed: could not reach the server.", "network", 0)),
    );
    xhr.addEventListener("abort", () => reject(new ApiError("Upload cancelled.", "aborted", 0)));
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}
