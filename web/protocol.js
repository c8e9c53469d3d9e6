// The worker protocol, both ends (STYLE.md, after WebLLM): the page sends {kind, id,
// content}; every request is answered once, by {kind: 'return', id, content: result} or
// {kind: 'throw', id, content: {code, message}}. While a request runs the worker may send
// events with the same id. worker.js (the engine) and convert-worker.js (the converter)
// serve it; cogvlm.js and convert.js are their pages' ends.

import { CogVLMError, asCogVLMError, fromWire, toWire } from './errors.js';

/**
 * WorkerClient is the page's end: one module worker. lost(message) makes the error every
 * call gets once the worker dies (message is the browser's, or null when the worker could
 * not be started); ended() the one terminate gives the calls still running.
 */
export class WorkerClient {
  #worker;
  #nextId = 1;
  #pending = new Map(); // id → {resolve, reject, onEvent, cleanup}
  #broken = null;
  #ended;

  constructor(url, { name, lost, ended }) {
    this.#ended = ended;
    this.#worker = new Worker(url, { type: 'module', name });
    this.#worker.onmessage = ({ data }) => this.#receive(data);
    this.#worker.onerror = (event) => {
      event.preventDefault();
      this.#fail(lost(event.message || null));
    };
  }

  /** request sends one request and resolves with its answer; onEvent gets its events. */
  request(kind, content, { onEvent, signal, transfer = [] } = {}) {
    if (this.#broken) return Promise.reject(this.#broken);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const abort = () => this.#worker.postMessage({ kind: 'abort', id: this.#nextId++, content: { id } });
      signal?.addEventListener('abort', abort, { once: true });
      const cleanup = () => signal?.removeEventListener('abort', abort);
      this.#pending.set(id, { resolve, reject, onEvent, cleanup });
      this.#worker.postMessage({ kind, id, content }, transfer);
      if (signal?.aborted) abort();
    });
  }

  #receive({ kind, id, content }) {
    const call = this.#pending.get(id);
    if (!call) return; // the answer to an abort, which nobody awaits
    if (kind === 'return' || kind === 'throw') {
      this.#pending.delete(id);
      call.cleanup();
      if (kind === 'return') call.resolve(content);
      else call.reject(fromWire(content));
      return;
    }
    try {
      call.onEvent?.(kind, content);
    } catch (err) {
      reportError(err); // a throwing callback must not stop the stream
    }
  }

  #fail(err) {
    this.#broken ??= err;
    for (const call of this.#pending.values()) {
      call.cleanup();
      call.reject(err);
    }
    this.#pending.clear();
  }

  terminate() {
    this.#worker.terminate();
    this.#fail(this.#ended());
  }
}

/**
 * serve is the worker's end: it answers each request with handlers[kind](content, {emit,
 * signal}). what names the worker in the error for an unknown kind. running, when given,
 * maps the id of each request running to the AbortController of its signal (for an
 * abort({id}) handler).
 */
export function serve(handlers, what, running = new Map()) {
  self.onmessage = async ({ data }) => {
    const { kind, id, content } = data ?? {};
    const post = (k, c) => self.postMessage({ kind: k, id, content: c });
    const controller = new AbortController();
    running.set(id, controller);
    try {
      const handler = Object.hasOwn(handlers, kind) ? handlers[kind] : null;
      if (!handler) throw new CogVLMError('bad-input', `${what}: unknown request "${kind}" (known: ${Object.keys(handlers).join(', ')})`);
      post('return', await handler(content ?? {}, { emit: post, signal: controller.signal }));
    } catch (err) {
      post('throw', toWire(asCogVLMError(err)));
    } finally {
      running.delete(id);
    }
  };
}
