// @ts-check
/* What the embedding tag says: the buyer token, the server, the language, the product on
 * the shop's page. Read once, from the tag that loaded widget.js. */

/**
 * @typedef {object} Config
 * @property {string | undefined} token the buyer JWT (`data-token`)
 * @property {string} server this server's origin, no trailing slash (`data-server`, or where widget.js came from)
 * @property {import("./strings.js").Lang} lang `data-lang`: "en", else Chinese
 * @property {import("./frames.js").ProductPayload | null} product `data-product` (JSON), the product on the page
 */

/**
 * @param {HTMLScriptElement} script the widget.js tag
 * @returns {Config}
 */
export function readConfig(script) {
  const data = script.dataset;
  /** @type {import("./frames.js").ProductPayload | null} */
  let product = null;
  try {
    product = data.product ? JSON.parse(data.product) : null;
  } catch (err) {
    product = null;
  }
  return {
    token: data.token,
    server: (data.server || new URL(script.src).origin).replace(/\/+$/, ""),
    lang: data.lang === "en" ? "en" : "zh",
    product,
  };
}
