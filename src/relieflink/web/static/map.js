/* RelieFlink operations maps (Leaflet, vendored; no inline scripts under the CSP).
 *
 * [data-map=day]   the coordinator's map: communities filled by unmet need and ringed by
 *                  lockdown status, warehouses, and the day's routes as polylines. Data from
 *                  data-src (JSON); reloaded when a job finishes (the relieflink-refresh event).
 * [data-map=route] one route for its courier: depot and numbered stops in order, from the
 *                  JSON in data-route.
 * Both work offline: OpenStreetMap tiles are added only if the browser can reach them.
 * The day's map fits the communities served; a depot far from them (another city) is an arrow
 * at the map's edge with its name and distance. Districts are outlined around their
 * communities, so the city is recognisable without tiles.
 * Attributes for tests and assistive tech: data-tiles (probing|osm|none), data-points
 * (communities + warehouses), data-far (depots shown as edge arrows), data-districts,
 * data-routes, data-stops.
 */
(function () {
  "use strict";

  var TILE_URL = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";
  var TILE_PROBE = "https://tile.openstreetmap.org/0/0/0.png";
  var RING = { open: "#2e7d32", controlled: "#e0a100", sealed: "#c62828" };
  var NEED = ["#f2f0f7", "#cbc9e2", "#9e9ac8", "#54278f"];
  var ROUTE_COLORS = ["#0b5cad", "#d95f02", "#1b9e77", "#e7298a", "#66a61e", "#7570b3", "#a6761d", "#e6ab02"];

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

  function baseMap(el) {
    var map = L.map(el, { preferCanvas: true, zoomSnap: 0.25 }).setView([31.23, 121.47], 11);
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
    return map;
  }

  function note(map, text) {
    var control = L.control({ position: "topright" });
    control.onAdd = function () {
      var div = L.DomUtil.create("div", "leaflet-bar ops-map-note");
      div.textContent = text || "";
      return div;
    };
    control.addTo(map);
    return control;
  }

  function placeName(place, zh) { return zh ? (place.name_zh || place.name) : place.name; }

  function routeLine(route, color) {
    var points = [[route.depot.lat, route.depot.lon]];
    route.stops.forEach(function (s) { points.push([s.lat, s.lon]); });
    points.push([route.depot.lat, route.depot.lon]);
    return L.polyline(points, {
      color: color, weight: 4, opacity: 0.85,
      dashArray: route.status === "planned" ? "8 6" : null
    });
  }

  function warehouseMarker(w, labels, zh) {
    var name = placeName(w, zh);
    return L.marker([w.lat, w.lon], {
      icon: L.divIcon({ className: "wh-icon", iconSize: [14, 14] }),
      title: name, alt: labels.warehouse + ": " + name, keyboard: true
    }).bindPopup("<strong>" + escapeHtml(name) + "</strong><br>" + escapeHtml(labels.warehouse));
  }

  // Districts outlined around their communities: the city's shape when no tiles load.
  function drawDistricts(layer, districts, zh) {
    var labelled = districts.length <= 40;
    districts.forEach(function (d) {
      var pts = d.outline.map(function (p) { return L.latLng(p[0], p[1]); });
      if (!pts.length) { return; }
      var style = { color: "#7a8699", weight: 1, dashArray: "4 4", fillColor: "#c9d3df", fillOpacity: 0.35, interactive: false };
      var shape = pts.length >= 3 ? L.polygon(pts, style) : L.circle(L.latLngBounds(pts).getCenter(), L.extend({ radius: 1500 }, style));
      shape.addTo(layer);
      if (labelled) {
        L.tooltip({ permanent: true, direction: "top", offset: [0, -10], className: "ops-district-label", interactive: false })
          .setLatLng(shape.getBounds().getCenter()).setContent(escapeHtml(placeName(d, zh))).addTo(layer);
      }
    });
  }

  // The area the map fits: the communities served, grown by half their span (at least ~5 km).
  function servedArea(communities) {
    if (!communities.length) { return null; }
    var b = L.latLngBounds(communities.map(function (c) { return [c.lat, c.lon]; }));
    var dLat = Math.max((b.getNorth() - b.getSouth()) / 2, 0.05);
    var dLon = Math.max((b.getEast() - b.getWest()) / 2, 0.05);
    return L.latLngBounds([b.getSouth() - dLat, b.getWest() - dLon], [b.getNorth() + dLat, b.getEast() + dLon]);
  }

  // A depot far from the communities (another city): an arrow at the map's edge pointing at it,
  // with its name and distance; it follows the view.
  function edgeArrow(map, layer, w, labels, zh) {
    var target = L.latLng(w.lat, w.lon);
    var name = placeName(w, zh);
    var marker = L.marker(target, { keyboard: true, title: name, alt: labels.warehouse + ": " + name });
    function place() {
      var size = map.getSize();
      var c = L.point(size.x / 2, size.y / 2);
      var p = map.latLngToContainerPoint(target);
      var dx = p.x - c.x, dy = p.y - c.y;
      var margin = 28;
      var k = Math.min(Math.abs((c.x - margin) / (dx || 1e-9)), Math.abs((c.y - margin) / (dy || 1e-9)), 1);
      var at = L.point(c.x + dx * k, c.y + dy * k);
      var km = Math.round(map.getCenter().distanceTo(target) / 1000);
      var angle = Math.atan2(dy, dx) * 180 / Math.PI;
      marker.setLatLng(map.containerPointToLatLng(at));
      marker.setIcon(L.divIcon({
        className: "ops-far-depot", iconSize: [24, 24],
        html: '<span class="ops-far-arrow" style="transform: rotate(' + angle.toFixed(0) + 'deg)">&#10148;</span>'
      }));
      marker.unbindTooltip().bindTooltip(escapeHtml(name) + " · " + escapeHtml(labels.warehouse) + " · " + km + " km",
                                        { permanent: true, direction: at.x > c.x ? "left" : "right", className: "ops-far-label" });
    }
    marker.addTo(layer);
    place();
    map.on("moveend zoomend resize", place);
    return function () { map.off("moveend zoomend resize", place); };
  }

  // --- the coordinator's map of the day ---------------------------------------------------

  function initDay(el) {
    var labels = JSON.parse(el.getAttribute("data-labels") || "{}");
    var zh = el.getAttribute("data-lang") === "zh_CN";
    var map = baseMap(el);
    var layer = L.layerGroup().addTo(map);
    var empty = null;
    var fitted = false;

    var unfollow = [];

    function draw(data) {
      layer.clearLayers();
      unfollow.forEach(function (off) { off(); });
      unfollow = [];
      if (empty) { empty.remove(); empty = null; }
      var area = servedArea(data.communities);
      var bounds = [];
      var far = [];
      drawDistricts(layer, data.districts || [], zh);
      data.communities.forEach(function (c) {
        var name = placeName(c, zh);
        var status = labels[c.status] || c.status;
        var need = (labels.need || [])[c.need] || "";
        L.circleMarker([c.lat, c.lon], {
          radius: 8, color: RING[c.status] || "#555", weight: 3, opacity: 1,
          fillColor: NEED[c.need] || NEED[0], fillOpacity: 0.95
        }).bindTooltip(escapeHtml(name) + " · " + escapeHtml(status) + " · " + escapeHtml(need))
          .bindPopup("<strong>" + escapeHtml(name) + "</strong><br>" + escapeHtml(status) +
                     "<br>" + escapeHtml(labels.households) + ": " + escapeHtml(c.households) +
                     "<br>" + escapeHtml(labels.waiting) + ": " + escapeHtml(c.waiting) +
                     "<br>" + escapeHtml(labels.units) + ": " + escapeHtml(c.units))
          .addTo(layer);
        bounds.push([c.lat, c.lon]);
      });
      data.warehouses.forEach(function (w) {
        if (area && !area.contains([w.lat, w.lon])) { far.push(w); return; }
        warehouseMarker(w, labels, zh).addTo(layer);
        bounds.push([w.lat, w.lon]);
      });
      data.routes.forEach(function (r, i) {
        var kind = (labels.kinds || {})[r.kind] || r.kind;
        var status = (labels.statuses || {})[r.status] || r.status;
        routeLine(r, ROUTE_COLORS[i % ROUTE_COLORS.length])
          .bindTooltip(escapeHtml(labels.route) + " #" + r.id + " · " + escapeHtml(kind) + " · " +
                       escapeHtml(status) + " · " + escapeHtml(labels.stops) + ": " + r.stops.length +
                       " · " + escapeHtml(labels.delivered) + ": " + r.parcels.delivered + "/" + r.total)
          .addTo(layer);
      });
      if (bounds.length && !fitted) {
        map.fitBounds(bounds, { padding: [24, 24], maxZoom: 15, animate: false });
        fitted = true;
      } else if (!bounds.length) {
        empty = note(map, labels.empty);
      }
      far.forEach(function (w) { unfollow.push(edgeArrow(map, layer, w, labels, zh)); });
      el.setAttribute("data-points", String(data.communities.length + data.warehouses.length));
      el.setAttribute("data-far", String(far.length));
      el.setAttribute("data-districts", String((data.districts || []).length));
      el.setAttribute("data-routes", String(data.routes.length));
    }

    function load() {
      el.setAttribute("aria-busy", "true");
      return fetch(el.getAttribute("data-src"), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) { throw new Error("map data: HTTP " + response.status); }
          return response.json();
        })
        .then(function (data) { draw(data); el.removeAttribute("aria-busy"); })
        .catch(function (error) {
          el.setAttribute("data-points", "error");
          el.removeAttribute("aria-busy");
          if (window.console) { console.error(error); }
        });
    }

    load();
    document.body.addEventListener("relieflink-refresh", load);
  }

  // --- one route, for its courier ---------------------------------------------------------

  function initRoute(el) {
    var labels = JSON.parse(el.getAttribute("data-labels") || "{}");
    var zh = el.getAttribute("data-lang") === "zh_CN";
    var route = JSON.parse(el.getAttribute("data-route") || "null");
    var map = baseMap(el);
    if (!route) { note(map, labels.empty); return; }
    var bounds = [[route.depot.lat, route.depot.lon]];
    routeLine(route, ROUTE_COLORS[0]).addTo(map);
    warehouseMarker(route.depot, labels, zh).addTo(map);
    route.stops.forEach(function (s) {
      var name = placeName(s, zh);
      L.marker([s.lat, s.lon], {
        icon: L.divIcon({ className: "ops-stop-icon", html: String(s.seq), iconSize: [26, 26] }),
        title: labels.stop + " " + s.seq + ": " + name, alt: labels.stop + " " + s.seq + ": " + name,
        keyboard: true
      }).bindPopup("<strong>" + s.seq + ". " + escapeHtml(name) + "</strong>")
        .on("click", function () {
          var target = document.getElementById("stop-" + s.id);
          if (target) { target.scrollIntoView({ block: "start" }); }
        })
        .addTo(map);
      bounds.push([s.lat, s.lon]);
    });
    map.fitBounds(bounds, { padding: [28, 28], maxZoom: 16, animate: false });
    el.setAttribute("data-stops", String(route.stops.length));
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (typeof L === "undefined") { return; }
    Array.prototype.forEach.call(document.querySelectorAll("[data-map]"), function (el) {
      var kind = el.getAttribute("data-map");
      if (kind === "day") { initDay(el); } else if (kind === "route") { initRoute(el); }
    });
  });
})();
