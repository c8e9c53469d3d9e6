// "Get a model": the page converts a published CogVLM checkpoint from the hub into
// browser storage (CogVLM.convert), for someone with a browser and a GPU but no CLI or
// server of their own. The hub is the one the server allows (/hub.json, server --hub); the
// section says, before anything starts, which hosts will be contacted and for what.

import { defaultHub, publishedRepos, repoProblem } from './hub.js';

const $ = (id) => document.getElementById(id);

/** hubOf asks the server which hub the page may use: a URL, or null (server --hub none). */
async function hubOf() {
  try {
    const res = await fetch('hub.json', { cache: 'no-cache' });
    if (res.ok) return (await res.json()).hub ?? null;
  } catch {
    // offline, or a static host without hub.json: the default hub, which the CSP allows or not
  }
  return defaultHub;
}

/**
 * setupGetModel wires the section; onConverted(manifestURL) runs when a model is stored
 * (the page lists and selects it).
 */
export async function setupGetModel({ onConverted }) {
  const section = $('get-model');
  if (!section) return;
  const hub = await hubOf();
  const select = $('convert-repo');
  select.replaceChildren(...publishedRepos.map((r) => new Option(r, r)), new Option('Another repository (owner/name)…', ''));
  const other = $('convert-other');
  select.addEventListener('change', () => {
    other.hidden = select.value !== '';
  });
  if (!hub) {
    $('convert-privacy').textContent = 'This server allows no hub (it was started with --hub none): convert with the CLI instead.';
    $('convert-start').disabled = true;
    return;
  }
  const host = new URL(hub).host;
  $('convert-privacy').textContent =
    `Converting downloads the checkpoint (about 35 GB for CogVLM-17B) from ${host} and its file hosts, and only from them, only after you press Convert; ` +
    `it keeps a 4-bit package (about 10 GB) in this browser. Your images and questions never leave this page.`;
  let running = null;
  const status = $('convert-status');
  const progress = $('convert-progress');
  const setRunning = (r) => {
    running = r;
    $('convert-start').hidden = Boolean(r);
    $('convert-pause').hidden = !r;
    $('convert-cancel').hidden = !r;
    select.disabled = other.disabled = Boolean(r);
  };
  $('convert-start').addEventListener('click', async () => {
    const repo = select.value || other.value.trim();
    const problem = repoProblem(repo);
    if (problem) {
      status.textContent = `The repository ${problem}.`;
      return;
    }
    const cancel = new AbortController();
    const pause = new AbortController();
    setRunning({ cancel, pause });
    progress.hidden = false;
    try {
      // convert.js's own entry (CogVLM.convert's implementation), for the pause signal.
      const { convertCheckpoint } = await import('./convert.js');
      const { manifestURL } = await convertCheckpoint({
        hub,
        repo,
        signal: cancel.signal,
        pause: pause.signal,
        onProgress: (p) => {
          status.textContent = p.text;
          if (p.totalBytes > 0) {
            progress.max = p.totalBytes;
            progress.value = p.loadedBytes;
          }
        },
      });
      await onConverted(manifestURL);
      status.textContent = `${repo} is converted and stored in this browser: it is selected in the list above; press Load.`;
    } catch (err) {
      status.textContent = err.message;
    } finally {
      setRunning(null);
      progress.hidden = true;
    }
  });
  $('convert-pause').addEventListener('click', () => running?.pause.abort());
  $('convert-cancel').addEventListener('click', () => running?.cancel.abort());
  section.hidden = false;
}
