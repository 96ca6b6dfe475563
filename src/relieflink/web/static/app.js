/* RelieFlink web pages: small behaviour shared by every page. No inline scripts (CSP).
 * The maps (Leaflet, vendored) are drawn by static/map.js on the pages that have one. */
(function () {
  "use strict";

  // On a narrow screen the header links scroll sideways: bring the current page's into view.
  function showCurrentNav() {
    var nav = document.querySelector(".main-nav");
    var current = nav && nav.querySelector("[aria-current=page]");
    if (current && nav.scrollWidth > nav.clientWidth) {
      nav.scrollLeft = current.offsetLeft - (nav.clientWidth - current.offsetWidth) / 2;
    }
  }

  document.addEventListener("DOMContentLoaded", showCurrentNav);
})();
