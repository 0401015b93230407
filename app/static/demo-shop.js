/* The demo product page: its "contact us" button opens the storefront widget (a shop's
 * own button would do the same). A file, not an onclick attribute: the page's CSP runs
 * no inline script. */
(function () {
  "use strict";
  const contact = document.getElementById("contact");
  if (contact) contact.addEventListener("click", () => window.HomingWidget && window.HomingWidget.open());
})();
