// The page: pick and load a model, ask about an image, watch the answer stream. All the
// work happens in cogvlm.js's worker; this file only draws state and routes events.
//
// document.body.dataset.state is the page's one state, which the CSS and the end-to-end
// tests read: starting → idle (no model) → loading → ready ⇄ answering, or no-webgpu and
// lost (device lost: only a reload helps).

import { AnswerView, BoxOverlay } from './boxes.js';
import { CogVLM, deleteStoredPackage, storedPackages } from './cogvlm.js';
import * as fmt from './format.js';
import { setupGetModel } from './getmodel.js';
import { groundingPrompts, isGroundingModel } from './grounding.js';
import { sniffFormat } from './image.js';
import { estimate } from './store.js';

const $ = (id) => document.getElementById(id);
const ui = {
  connection: $('connection'),
  app: $('app'),
  fatal: $('fatal'),
  fatalTitle: $('fatal-title'),
  fatalText: $('fatal-text'),
  gpu: $('gpu'),
  modelSelect: $('model-select'),
  load: $('load'),
  cancelLoad: $('cancel-load'),
  folderButton: $('folder-button'),
  folderInput: $('folder-input'),
  progressBox: $('progress-box'),
  progress: $('progress'),
  progressText: $('progress-text'),
  modelStatus: $('model-status'),
  loadError: $('load-error'),
  loadErrorText: $('load-error-text'),
  loadErrorAction: $('load-error-action'),
  notes: $('notes'),
  demoNote: $('demo-note'),
  dropzone: $('dropzone'),
  imageBox: $('image-box'),
  preview: $('preview'),
  imageCaption: $('image-caption'),
  imageHint: $('image-hint'),
  imageButton: $('image-button'),
  imageInput: $('image-input'),
  imageRemove: $('image-remove'),
  imageError: $('image-error'),
  conversation: $('conversation'),
  chatError: $('chat-error'),
  chatErrorText: $('chat-error-text'),
  chatErrorAction: $('chat-error-action'),
  ask: $('ask'),
  query: $('query'),
  send: $('send'),
  stop: $('stop'),
  newChat: $('new-chat'),
  template: $('template'),
  maxTokens: $('max-tokens'),
  temperature: $('temperature'),
  topP: $('top-p'),
  topK: $('top-k'),
  seed: $('seed'),
  resetSettings: $('reset-settings'),
  statVision: $('stat-vision'),
  statPrefill: $('stat-prefill'),
  statDecode: $('stat-decode'),
  storageEstimate: $('storage-estimate'),
  stored: $('stored'),
  storedEmpty: $('stored-empty'),
};

const app = {
  state: 'starting',
  model: null, // CogVLM
  loading: null, // AbortController of the running load
  answering: null, // AbortController of the running answer
  lastSource: null, // what the last load loaded, for Retry
  image: null, // the Blob of this conversation's image
  imageURL: null,
  turns: [], // {query, answer, status: 'answering'|'done'|'stopped'|'failed', el}
};

function setState(state) {
  app.state = state;
  document.body.dataset.state = state;
  const ready = state === 'ready';
  ui.modelSelect.disabled = state === 'loading' || state === 'answering' || ui.modelSelect.options.length === 0;
  ui.load.disabled = ui.modelSelect.disabled;
  ui.load.hidden = state === 'loading';
  ui.cancelLoad.hidden = state !== 'loading';
  ui.folderButton.disabled = state === 'loading' || state === 'answering';
  ui.query.disabled = !(ready || state === 'answering');
  ui.query.placeholder = app.model ? 'Ask about the image… (Enter sends, Shift+Enter for a new line)' : 'Load a model to ask a question';
  ui.send.disabled = !ready;
  ui.send.hidden = state === 'answering';
  ui.stop.hidden = state !== 'answering';
}

// ---- errors that end the page ----------------------------------------------------------

/** fatal shows a state no button on the page can fix (no WebGPU, a lost device). */
function fatal(state, title, text, { reload = true } = {}) {
  app.answering?.abort();
  app.loading?.abort();
  setState(state);
  ui.fatalTitle.textContent = title;
  ui.fatalText.textContent = text;
  ui.fatal.querySelector('button').hidden = !reload;
  ui.fatal.hidden = false;
  ui.app.inert = true; // never a half-working page behind the message
  if (reload) ui.fatal.querySelector('button').focus();
}

function deviceLost(err) {
  app.model = null;
  fatal('lost', 'The GPU stopped working for this page', `${err.message}. This happens when the GPU driver resets, or when the system reclaims GPU memory. Reload the page to start again; the model loads from this browser's stored copy.`);
}

$('fatal-reload').addEventListener('click', () => location.reload());

function showMessage(box, textEl, actionEl, text, action) {
  textEl.textContent = text;
  actionEl.hidden = !action;
  if (action) {
    actionEl.textContent = action.label;
    actionEl.onclick = () => {
      box.hidden = true;
      action.run();
    };
  }
  box.hidden = false;
}

// ---- models: the server's list, the stored copies, loading ------------------------------

async function listModels() {
  const options = new Map(); // manifest URL → label
  let online = true;
  try {
    const res = await fetch('models/index.json', { cache: 'no-cache' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    for (const m of (await res.json()).models ?? []) {
      options.set(new URL(m.manifest, res.url).href, `${m.name} — ${fmt.bytes(m.bytes)}`);
    }
  } catch {
    online = false;
  }
  const stored = await storedPackages().catch(() => []);
  for (const s of stored) {
    const label = options.get(s.manifestURL) ?? `${s.name} — ${fmt.bytes(s.totalBytes)}`;
    options.set(s.manifestURL, s.complete ? `${label} (stored)` : `${label} (partly stored)`);
  }
  ui.connection.textContent = online ? 'Server connected' : 'Offline: stored models only';
  ui.connection.dataset.online = online;
  const previous = ui.modelSelect.value;
  ui.modelSelect.replaceChildren(
    ...[...options].map(([url, label]) => {
      const o = new Option(label, url);
      o.selected = url === previous || (!previous && /\/demo\/manifest\.json$/.test(url));
      return o;
    }),
  );
  if (options.size === 0) {
    ui.modelStatus.textContent = online
      ? 'The server offers no models: run ./build.sh (it makes the demo package) or convert one into models/.'
      : 'The server cannot be reached and no model is stored in this browser. Open a package folder instead.';
  }
  setState(app.state); // the list may have become empty, or not
  showDemoNote();
  renderStored(stored);
}

async function renderStored(stored) {
  const body = ui.stored.tBodies[0];
  body.replaceChildren(
    ...stored.map((s) => {
      const row = document.createElement('tr');
      row.insertCell().textContent = s.name;
      row.insertCell().textContent = s.complete ? fmt.bytes(s.storedBytes) : `${fmt.bytes(s.storedBytes)} of ${fmt.bytes(s.totalBytes)} (partial)`;
      const del = document.createElement('button');
      del.type = 'button';
      del.className = 'small-button';
      del.textContent = 'Delete';
      del.setAttribute('aria-label', `Delete the stored copy of ${s.name}`);
      del.addEventListener('click', async () => {
        del.disabled = true;
        await deleteStoredPackage(s.manifestURL);
        await listModels();
      });
      row.insertCell().append(del);
      return row;
    }),
  );
  ui.stored.hidden = stored.length === 0;
  ui.storedEmpty.hidden = stored.length > 0;
  const { quota, usage } = await estimate();
  ui.storageEstimate.textContent = Number.isFinite(quota) ? `This site uses ${fmt.bytes(usage)} of the ${fmt.bytes(quota)} the browser allows.` : '';
}

/**
 * showDemoNote says plainly that the demo answers noise, whenever the demo is the model
 * loaded or, with none loaded, the one selected.
 */
function showDemoNote() {
  const selected = ui.modelSelect.selectedOptions[0]?.value ?? '';
  const name = app.model ? app.model.info.name : /\/demo\/manifest\.json$/.test(selected) ? 'demo' : '';
  ui.demoNote.hidden = name !== 'demo';
}

function showProgress(p) {
  ui.progressBox.hidden = false;
  if (p.totalBytes > 0) {
    ui.progress.max = p.totalBytes;
    ui.progress.value = p.loadedBytes;
  } else {
    ui.progress.removeAttribute('value'); // indeterminate until the manifest says how much
  }
  ui.progressText.textContent = p.text;
}

function addNote(text) {
  const li = document.createElement('li');
  li.textContent = text;
  ui.notes.append(li);
}

/** load loads a package: a manifest URL, or a folder from disk (File[] or directory handle). */
async function load(source, label) {
  if (app.loading) return;
  app.loading = new AbortController();
  app.lastSource = { source, label };
  setState('loading');
  ui.loadError.hidden = true;
  ui.notes.replaceChildren();
  ui.modelStatus.textContent = `Loading ${label}…`;
  showProgress({ phase: 'probe', loadedBytes: 0, totalBytes: 0, text: 'Starting…' });
  // Ask the browser not to evict gigabytes of model under storage pressure.
  navigator.storage?.persist?.().catch(() => {});
  try {
    if (app.model) {
      const old = app.model;
      app.model = null;
      await old.dispose(); // one model on the GPU at a time
    }
    app.model = await CogVLM.load(source, { onProgress: showProgress, signal: app.loading.signal });
    const info = app.model.info;
    info.notes.forEach(addNote);
    ui.modelStatus.textContent = `${info.name} is ready — ${fmt.bytes(info.totalBytes)} (${info.encodings.join(', ')}), ${describeSource(info)}.`;
    showDemoNote();
    showDefaults({ all: false }); // the values an empty field stands for
    ui.progressBox.hidden = true;
    newChat({ keepImage: true }); // another model's answers are no history for this one
    setState('ready');
    ui.query.focus();
  } catch (err) {
    app.model = null;
    ui.progressBox.hidden = true;
    loadFailed(err, label);
  } finally {
    app.loading = null;
    showGroundingPrompts(app.model?.info);
    listModels();
  }
}

function describeSource(info) {
  if (info.source === 'folder') return 'read from a folder on disk';
  if (!info.stored) return 'not stored for offline use';
  return info.source === 'storage' ? 'from the copy stored in this browser (offline)' : 'stored in this browser for offline use';
}

function loadFailed(err, label) {
  if (app.state === 'lost' || app.state === 'no-webgpu') return;
  const retry = { label: 'Retry', run: () => load(app.lastSource.source, app.lastSource.label) };
  let text;
  let action = retry;
  switch (err.code) {
    case 'no-webgpu':
      noWebGPU(err.message);
      return;
    case 'device-lost':
      deviceLost(err);
      return;
    case 'aborted':
      text = `Loading ${label} was cancelled. What was downloaded is stored: loading again resumes.`;
      action = { label: 'Resume', run: retry.run };
      break;
    case 'network':
      text = `The download stopped: ${err.message}. What was downloaded is stored: Retry resumes where it stopped.`;
      break;
    case 'integrity':
      text = `The package is damaged: ${err.message}.`;
      break;
    case 'limits':
    case 'out-of-memory':
      text = `This device cannot hold ${label}: ${err.message}.`;
      action = null;
      break;
    default:
      text = `Loading ${label} failed: ${err.message}.`;
  }
  ui.modelStatus.textContent = 'No model loaded.';
  setState('idle');
  showMessage(ui.loadError, ui.loadErrorText, ui.loadErrorAction, text, action);
}

ui.load.addEventListener('click', () => {
  const option = ui.modelSelect.selectedOptions[0];
  if (option) load(option.value, option.textContent.split(' — ')[0]);
});
ui.cancelLoad.addEventListener('click', () => app.loading?.abort());
ui.modelSelect.addEventListener('change', showDemoNote);
ui.folderButton.addEventListener('click', async () => {
  if (window.showDirectoryPicker) {
    try {
      const dir = await window.showDirectoryPicker({ id: 'cogvlm-package', mode: 'read' });
      load(dir, dir.name);
    } catch (err) {
      if (err.name !== 'AbortError') showMessage(ui.loadError, ui.loadErrorText, ui.loadErrorAction, `Cannot open the folder: ${err.message}`);
    }
    return;
  }
  ui.folderInput.click();
});
ui.folderInput.addEventListener('change', () => {
  const files = Array.from(ui.folderInput.files);
  ui.folderInput.value = '';
  if (files.length === 0) return;
  const top = (files[0].webkitRelativePath || '').split('/')[0] || 'package folder';
  load(files, top);
});

// ---- the image ---------------------------------------------------------------------------

async function isImage(file) {
  if (file.type.startsWith('image/')) return true;
  return sniffFormat(new Uint8Array(await file.slice(0, 16).arrayBuffer())) !== null;
}

async function setImage(file) {
  ui.imageError.hidden = true;
  if (!(await isImage(file))) {
    ui.imageError.textContent = `“${file.name}” is not an image (${file.type || 'unknown type'}, ${fmt.bytes(file.size)}). Choose a PNG, JPEG, GIF or WebP file.`;
    ui.imageError.hidden = false;
    return;
  }
  newChat({ keepImage: false });
  app.image = file;
  app.imageURL = URL.createObjectURL(file);
  ui.preview.src = app.imageURL;
  ui.imageCaption.textContent = `${file.name || 'Pasted image'} · ${fmt.bytes(file.size)}`;
  ui.imageBox.hidden = false;
  ui.imageHint.hidden = true;
  ui.imageRemove.hidden = false;
  ui.dropzone.dataset.empty = 'false';
}

function clearImage() {
  if (app.imageURL) URL.revokeObjectURL(app.imageURL);
  app.image = null;
  app.imageURL = null;
  ui.preview.removeAttribute('src');
  ui.imageBox.hidden = true;
  ui.imageHint.hidden = false;
  ui.imageRemove.hidden = true;
  ui.dropzone.dataset.empty = 'true';
}

ui.preview.addEventListener('error', () => {
  if (!app.image) return;
  const name = app.image.name || 'the image';
  clearImage();
  ui.imageError.textContent = `${name} cannot be decoded by this browser. Choose a PNG, JPEG, GIF or WebP file.`;
  ui.imageError.hidden = false;
});
ui.imageButton.addEventListener('click', () => ui.imageInput.click());
ui.imageInput.addEventListener('change', () => {
  const file = ui.imageInput.files[0];
  ui.imageInput.value = '';
  if (file) setImage(file);
});
ui.imageRemove.addEventListener('click', () => newChat({ keepImage: false }));
for (const type of ['dragenter', 'dragover']) {
  ui.dropzone.addEventListener(type, (e) => {
    if (![...(e.dataTransfer?.types ?? [])].includes('Files')) return;
    e.preventDefault();
    ui.dropzone.dataset.over = 'true';
  });
}
ui.dropzone.addEventListener('dragleave', () => delete ui.dropzone.dataset.over);
ui.dropzone.addEventListener('drop', (e) => {
  e.preventDefault();
  delete ui.dropzone.dataset.over;
  const file = e.dataTransfer?.files?.[0];
  if (file) setImage(file);
});
document.addEventListener('paste', (e) => {
  const file = [...(e.clipboardData?.files ?? [])][0];
  if (!file) return; // pasted text goes into the question as usual
  e.preventDefault();
  setImage(file);
});

// ---- asking ------------------------------------------------------------------------------

// The generation settings live in the engine (model.DefaultSampling, greedy as upstream):
// an empty or invalid field is left out of the request and so means the model's default,
// never 0. Once a model is loaded, its defaults (info.defaults) are shown in the fields.
const defaultFields = { maxNewTokens: 'maxTokens', temperature: 'temperature', topP: 'topP', topK: 'topK', seed: 'seed' }; // option → ui field

function settings() {
  const num = (input) => {
    const v = input.value.trim() === '' ? NaN : Number(input.value);
    return Number.isFinite(v) ? v : undefined;
  };
  const clamp = (v, lo, hi, round) => (v === undefined ? undefined : Math.min(hi, Math.max(lo, round ? Math.round(v) : v)));
  return {
    template: ui.template.value || undefined, // auto: vicuna without an image, the model's own with one
    maxNewTokens: clamp(num(ui.maxTokens), 1, Infinity, true),
    temperature: clamp(num(ui.temperature), 0, Infinity, false),
    topP: clamp(num(ui.topP), 0, 1, false),
    topK: clamp(num(ui.topK), 0, Infinity, true),
    seed: clamp(num(ui.seed), 0, Number.MAX_SAFE_INTEGER, true),
  };
}

/** showDefaults writes the loaded model's defaults into the fields (all, or the empty ones). */
function showDefaults({ all }) {
  const defaults = app.model?.info.defaults ?? {};
  for (const [key, field] of Object.entries(defaultFields)) {
    const input = ui[field];
    if (all || input.value.trim() === '') input.value = defaults[key] ?? '';
  }
}

function resetSettings() {
  showDefaults({ all: true });
  ui.template.value = '';
}
ui.resetSettings.addEventListener('click', resetSettings);

function addTurn(query) {
  const el = document.createElement('li');
  el.className = 'turn';
  const q = document.createElement('p');
  q.className = 'question';
  q.textContent = query;
  const a = document.createElement('p');
  a.className = 'answer';
  a.dataset.status = 'answering';
  a.setAttribute('aria-busy', 'true');
  el.append(q, a);
  ui.conversation.append(el);
  const turn = { query, answer: '', status: 'answering', el, answerEl: a };
  app.turns.push(turn);
  return turn;
}

function finishTurn(turn, status, text = turn.answer) {
  turn.status = status;
  turn.answer = text;
  showAnswer(turn);
  turn.answerEl.dataset.status = status;
  turn.answerEl.removeAttribute('aria-busy');
  if (status === 'stopped') {
    const mark = document.createElement('span');
    mark.className = 'stopped';
    mark.textContent = ' (stopped)';
    turn.answerEl.append(mark);
  }
}

async function ask() {
  const query = ui.query.value.trim();
  if (!query || !app.model || app.state !== 'ready') return;
  ui.chatError.hidden = true;
  // This image's conversation so far; a failed turn is not part of it.
  const history = app.turns.filter((t) => t.status === 'done' || t.status === 'stopped').map((t) => [t.query, t.answer]);
  const turn = addTurn(query);
  ui.query.value = '';
  app.answering = new AbortController();
  setState('answering');
  ui.query.focus(); // the next question can be typed while this one is answered
  const started = performance.now();
  let firstToken = 0;
  let tokens = 0;
  try {
    const out = await app.model.generate({
      image: app.image,
      query,
      history,
      ...settings(),
      signal: app.answering.signal,
      onToken: (id, text) => {
        tokens++;
        if (tokens === 1) {
          firstToken = performance.now();
          ui.statPrefill.textContent = `${fmt.milliseconds(firstToken - started)} to the first token`;
        } else {
          ui.statDecode.textContent = fmt.tokensPerSecond(tokens - 1, performance.now() - firstToken);
        }
        turn.answer += text;
        showAnswer(turn);
      },
    });
    finishTurn(turn, 'done', out.text);
    showTurnStats(turn, out.stats);
    showStats(out.stats);
  } catch (err) {
    answerFailed(err, turn);
  } finally {
    app.answering = null;
    if (app.state === 'answering') {
      setState('ready');
      ui.query.focus();
    }
  }
}

function showStats(s) {
  ui.statVision.textContent = s.visionMs > 0 ? fmt.milliseconds(s.visionMs) : 'no image';
  const reused = s.reusedTokens > 0 ? ` (+${fmt.tokens(s.reusedTokens)} reused)` : '';
  ui.statPrefill.textContent = `${fmt.tokens(s.prefillTokens)}, ${fmt.tokensPerSecond(s.prefillTokens, s.prefillMs)}${reused}`;
  ui.statDecode.textContent = s.decodeTokens > 0 ? `${fmt.tokens(s.decodeTokens)}, ${fmt.tokensPerSecond(s.decodeTokens, s.decodeMs)}` : '–';
}

/**
 * showTurnStats puts under an answer its time to the first token and whether the
 * conversation so far was reused (its keys and values kept by the engine), e.g.
 * "first token 85 ms · reused 1,240 of 1,262 prompt tokens".
 */
function showTurnStats(turn, s) {
  const meta = document.createElement('small');
  meta.className = 'turn-stats';
  const prompt = s.prefillTokens + s.reusedTokens;
  meta.textContent = `first token ${fmt.milliseconds(s.firstTokenMs)} · ${s.reusedTokens > 0 ? `reused ${s.reusedTokens} of ${prompt} prompt tokens` : `${prompt} prompt tokens`}`;
  meta.dataset.reusedTokens = s.reusedTokens;
  meta.dataset.firstTokenMs = s.firstTokenMs;
  turn.el.append(meta);
}

function answerFailed(err, turn) {
  switch (err.code) {
    case 'aborted':
      finishTurn(turn, 'stopped');
      return;
    case 'device-lost':
      finishTurn(turn, 'failed');
      deviceLost(err);
      return;
    case 'context-length':
      finishTurn(turn, 'failed', '');
      showMessage(ui.chatError, ui.chatErrorText, ui.chatErrorAction, `The conversation no longer fits the model's context: ${err.message}. Start a new chat (or lower “Max new tokens” in Settings).`, {
        label: 'New chat',
        run: () => newChat({ keepImage: true }),
      });
      return;
    default:
      finishTurn(turn, 'failed', '');
      showMessage(ui.chatError, ui.chatErrorText, ui.chatErrorAction, err.code === 'bad-input' ? err.message : `The answer failed (${err.code}): ${err.message}`);
  }
}

/** newChat forgets the conversation (and the image, unless keepImage), and the engine's cache of it. */
function newChat({ keepImage }) {
  app.answering?.abort();
  app.model?.resetCache().catch((err) => console.warn('resetCache:', err.message));
  app.turns = [];
  ui.conversation.replaceChildren();
  boxOverlay.clear();
  ui.chatError.hidden = true;
  ui.imageError.hidden = true;
  if (!keepImage) clearImage();
}

ui.ask.addEventListener('submit', (e) => {
  e.preventDefault();
  ask();
});
ui.query.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    ui.ask.requestSubmit();
  }
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && app.answering) app.answering.abort();
});
ui.stop.addEventListener('click', () => app.answering?.abort());
ui.newChat.addEventListener('click', () => {
  newChat({ keepImage: false });
  ui.query.focus();
});

// ---- grounding: boxes in answers, drawn on the image ---------------------------------------

const boxOverlay = new BoxOverlay({
  layer: $('box-layer'),
  toggle: $('boxes-toggle'),
  checkbox: $('show-boxes'),
  count: $('boxes-count'),
  preview: ui.preview,
});

/** showAnswer shows turn.answer, its [[x0,y0,x1,y1]] groups as chips and on the image. */
function showAnswer(turn) {
  turn.view ??= new AnswerView(turn.answerEl, boxOverlay);
  turn.view.update(turn.answer);
}

/** showGroundingPrompts offers the two prompts of a grounding model (none for others). */
function showGroundingPrompts(info) {
  $('grounding-prompts').hidden = !isGroundingModel(info);
}

/** useQuery puts a prompt into the question box, selecting the part to replace, if any. */
function useQuery(text, select = '') {
  ui.query.value = text;
  ui.query.focus();
  const at = select ? text.indexOf(select) : text.length;
  ui.query.setSelectionRange(at, at + select.length);
}

$('prompt-where').addEventListener('click', () => useQuery(groundingPrompts.where('the object'), 'the object'));
$('prompt-describe').addEventListener('click', () => useQuery(groundingPrompts.describe));

// ---- start ---------------------------------------------------------------------------------

function noWebGPU(message) {
  fatal('no-webgpu', 'This browser cannot run the model', message, { reload: false });
}

async function start() {
  // The service worker keeps the app shell for offline use; the page works without it.
  navigator.serviceWorker?.register('sw.js').catch((err) => console.warn('service worker:', err.message));
  resetSettings();
  setState('starting');
  let adapter;
  try {
    adapter = await CogVLM.probe();
  } catch (err) {
    noWebGPU(err.message);
    return;
  }
  ui.gpu.textContent = `GPU: ${[adapter.vendor, adapter.architecture].filter(Boolean).join(' ') || 'unnamed adapter'}${adapter.fallback ? ' (software)' : ''} · largest buffer ${fmt.bytes(adapter.maxStorageBufferBindingSize)}`;
  await listModels();
  setState('idle');
  setupGetModel({ onConverted: showConverted });
}

/** showConverted lists a model converted in the page and selects it. */
async function showConverted(manifestURL) {
  await listModels();
  ui.modelSelect.value = manifestURL;
  showDemoNote();
}

start();
