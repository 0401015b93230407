/* Homing storefront widget. Embed with one tag:
 *   <script src="https://HOST/static/widget.js" data-token="BUYER_JWT" data-server="https://HOST"></script>
 * Optional: data-lang="en", data-product='{"product_id","title","category","price_cents"}'.
 * Opens a floating chat panel in a shadow root (the shop's CSS cannot reach in, ours cannot
 * leak out). Everything people typed is put on the page with textContent.
 *
 * This file is only the loader: a classic script, so it can read its own tag
 * (document.currentScript, which module scripts do not have) and the embedding line stays
 * one plain tag. The widget itself is the ES modules under widget/ (entry widget/main.js),
 * imported from next to this file; they are served as they are, no build step. */
(function () {
  "use strict";
  const script = document.currentScript;
  if (!script || window.HomingWidget) return;
  import(new URL("widget/main.js", script.src).href)
    .then((widget) => widget.start(script))
    .catch((err) => console.error("Homing widget failed to load", err));
})();
