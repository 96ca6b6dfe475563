// The field app's service worker (scope /field): keeps the app's shell on the phone so that it
// opens with no network. Pages and files: network first, the cached copy when offline. The API
// is never cached here: the app keeps the day and its queue in IndexedDB itself.
"use strict";

const CACHE = "relieflink-field-v1";
const SHELL = [
  "/field",
  "/field.webmanifest",
  "/static/app.css",
  "/static/field/field.css",
  "/static/field/field.js",
  "/static/field/icon.svg",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin || url.pathname.startsWith("/api/")) {
    return; // the browser fetches it as if there were no service worker
  }
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(event.request, copy));
        }
        return response;
      })
      .catch(() => caches.match(event.request, { ignoreSearch: true })
        .then((cached) => cached || Response.error())),
  );
});
