// @ts-check
/* HTTP as this buyer: the token in the Authorization header (never cookies), so the API
 * answers from any shop's origin. */

/**
 * @typedef {Error & {code?: string, status?: number}} ApiError
 * @typedef {(method: string, path: string, body?: any) => Promise<any>} Api
 */

/**
 * An `api(method, path, body)` for this buyer; an answer other than 2xx throws its error
 * (an ApiError with the server's `code`), no answer at all throws `offline`.
 * @param {import("./config.js").Config} config
 * @param {() => string} offlineText the words for "no connection", in the words of the moment
 * @returns {Api}
 */
export function buyerApi(config, offlineText) {
  return async function api(method, path, body) {
    /** @type {Record<string, string>} */
    const headers = { Authorization: `Bearer ${config.token || ""}` };
    let data = body;
    if (body !== undefined && !(body instanceof FormData)) {
      headers["Content-Type"] = "application/json";
      data = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(`${config.server}/api/v1${path}`, { method, headers, body: data });
    } catch (err) {
      throw Object.assign(new Error(offlineText()), { code: "offline" });
    }
    const answer = res.status === 204 ? null : await res.json().catch(() => null);
    if (!res.ok) {
      const e = (answer && answer.error) || {};
      throw Object.assign(new Error(e.message || `HTTP ${res.status}`), { code: e.code, status: res.status });
    }
    return answer;
  };
}

/**
 * Where an uploaded image loads from: an <img> on the shop's page cannot send our headers,
 * so the buyer token goes in the URL.
 * @param {import("./config.js").Config} config
 * @param {string} uploadId
 * @returns {string}
 */
export function imageUrl(config, uploadId) {
  return `${config.server}/api/v1/uploads/${encodeURIComponent(uploadId)}?token=${encodeURIComponent(config.token || "")}`;
}

/**
 * What to tell the buyer about a failed call (what `api` threw).
 * @param {unknown} err
 * @returns {string}
 */
export function errorText(err) {
  return /** @type {ApiError} */ (err).message;
}
