// The service worker keeps the app shell — the page, its scripts and the engine — so that a
// reload with no network (or no server) still starts the app. Models are not its business:
// the engine's worker keeps their verified copies in Cache Storage itself (store.js), and
// requests under /models/ pass straight through.
//
// Network first: whenever the server answers, the page gets (and the cache keeps) the
// current build, so the shell's files always come from one build; the cache answers only
// when the server cannot be reached.

const shellCache = 'cogvlm-shell-v1';
const shell = [
  './',
  'index.html',
  'style.css',
  'app.js',
  'cogvlm.js',
  'errors.js',
  'protocol.js',
  'body.js',
  'format.js',
  'grounding.js',
  'boxes.js',
  'image.js',
  'loader.js',
  'store.js',
  'hub.js',
  'convert.js',
  'convert-worker.js',
  'getmodel.js',
  'worker.js',
  'wasm_exec.js',
  'cogvlm-replay.js',
  'cogvlm.wasm',
  'icon.svg',
].map((path) => new URL(path, self.registration.scope).href);

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(shellCache);
      await cache.addAll(shell);
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith('cogvlm-shell-') && name !== shellCache) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  url.search = '';
  if (event.request.method !== 'GET' || !shell.includes(url.href)) return;
  event.respondWith(networkFirst(event, url.href));
});

async function networkFirst(event, key) {
  try {
    const response = await fetch(event.request);
    if (response.ok) {
      const copy = response.clone();
      event.waitUntil(caches.open(shellCache).then((cache) => cache.put(key, copy)));
    }
    return response;
  } catch (err) {
    const stored = await caches.match(key, { cacheName: shellCache });
    if (stored) return stored;
    throw err;
  }
}
