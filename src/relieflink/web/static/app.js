/* RelieFlink web pages: the dashboard map (Leaflet, vendored). No inline scripts (CSP). */
(function () {
  "use strict";

  var TILE_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";
  var TILE_PROBE = "https://tile.openstreetmap.org/0/0/0.png";
  var COLORS = { open: "#2e7d32", controlled: "#e0a100", sealed: "#c62828" };

  // Add OpenStreetMap tiles only if the browser can reach them; else keep the plain background.
  function probeTiles(done) {
    var finished = false;
    function finish(ok) { if (!finished) { finished = true; done(ok); } }
    var img = new Image();
    var timer = setTimeout(function () { finish(false); }, 4000);
    img.onload = function () { clearTimeout(timer); finish(true); };
    img.onerror = function () { clearTimeout(timer); finish(false); };
    img.src = TILE_PROBE;
  }

  function escapeHtml(text) {
    var div = document.createElement("div");
    div.textContent = text == null ? "" : String(text);
    return div.innerHTML;
  }

  function initMap(el) {
    if (typeof L === "undefined") { return; }
    var labels = JSON.parse(el.getAttribute("data-labels") || "{}");
    var zh = el.getAttribute("data-lang") === "zh_CN";
    var map = L.map(el, { preferCanvas: true }).setView([31.23, 121.47], 10);
    el.classList.add("map-plain");
    el.setAttribute("data-tiles", "probing");
    probeTiles(function (ok) {
      if (ok) {
        L.tileLayer(TILE_URL, {
          maxZoom: 19,
          attribution: '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
        }).addTo(map);
        el.classList.remove("map-plain");
      }
      el.setAttribute("data-tiles", ok ? "osm" : "none");
    });
    fetch(el.getAttribute("data-src"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("map data: HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        var bounds = [];
        data.communities.forEach(function (c) {
          var name = zh ? c.name_zh : c.name;
          L.circleMarker([c.lat, c.lon], {
            radius: 7, color: "#ffffff", weight: 1, fillColor: COLORS[c.status] || "#777", fillOpacity: 0.9
          }).bindTooltip(escapeHtml(name) + " · " + escapeHtml(labels[c.status] || c.status))
            .bindPopup("<strong>" + escapeHtml(name) + "</strong><br>" + escapeHtml(labels[c.status] || c.status) +
                       "<br>" + escapeHtml(labels.households) + ": " + escapeHtml(c.households))
            .addTo(map);
          bounds.push([c.lat, c.lon]);
        });
        data.warehouses.forEach(function (w) {
          var name = zh ? w.name_zh : w.name;
          L.marker([w.lat, w.lon], {
            icon: L.divIcon({ className: "wh-icon", iconSize: [14, 14] }),
            title: name, alt: labels.warehouse + ": " + name, keyboard: true
          }).bindPopup("<strong>" + escapeHtml(name) + "</strong><br>" + escapeHtml(labels.warehouse)).addTo(map);
          bounds.push([w.lat, w.lon]);
        });
        if (bounds.length) {
          map.fitBounds(bounds, { padding: [24, 24], maxZoom: 15, animate: false });
        } else {
          var note = L.control({ position: "topright" });
          note.onAdd = function () {
            var div = L.DomUtil.create("div", "leaflet-bar");
            div.style.background = "#fff"; div.style.padding = "4px 8px";
            div.textContent = labels.empty || "";
            return div;
          };
          note.addTo(map);
        }
        el.setAttribute("data-points", String(bounds.length));
      })
      .catch(function (error) {
        el.setAttribute("data-points", "error");
        if (window.console) { console.error(error); }
      });
  }

  // On a narrow screen the header links scroll sideways: bring the current page's into view.
  function showCurrentNav() {
    var nav = document.querySelector(".main-nav");
    var current = nav && nav.querySelector("[aria-current=page]");
    if (current && nav.scrollWidth > nav.clientWidth) {
      nav.scrollLeft = current.offsetLeft - (nav.clientWidth - current.offsetWidth) / 2;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    showCurrentNav();
    var el = document.getElementById("map");
    if (el && !el.hasAttribute("data-map")) { initMap(el); }  // data-map: static/map.js draws it
  });
})();
