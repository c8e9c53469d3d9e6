// Typed errors of the JS API (DESIGN.md "JS API"): every failure is a CogVLMError whose
// `code` says what went wrong, so a page can react (offer a retry, a new chat, a reload)
// without parsing messages. Messages carry the numbers at fault (sizes, limits, counts).

/** The codes of DESIGN.md, plus `internal` for a bug in the engine (never a user error). */
export const ErrorCodes = Object.freeze([
  'no-webgpu', // the browser has no WebGPU (or no adapter)
  'limits', // the GPU's limits or the browser's storage are too small for the package
  'out-of-memory', // the GPU ran out of memory
  'device-lost', // the GPU device was lost, or the engine stopped: reload the page
  'integrity', // bytes that do not match the manifest's size or SHA-256
  'network', // a download failed or the server refused it
  'bad-input', // an argument, an image or a package folder the engine cannot use
  'context-length', // prompt + new tokens exceed the model's context
  'aborted', // the caller stopped it (signal)
  'internal',
]);

export class CogVLMError extends Error {
  /**
   * @param {string} code one of ErrorCodes
   * @param {string} message one line, naming the file, tensor, value or limit at fault
   */
  constructor(code, message, options) {
    super(message, options);
    this.name = 'CogVLMError';
    this.code = ErrorCodes.includes(code) ? code : 'internal';
  }
}

/**
 * asCogVLMError turns anything thrown (a CogVLMError, an engine Error with `.code`, a
 * DOMException from fetch or the storage APIs) into a CogVLMError. `fallback` is the code
 * for an error that carries none.
 */
export function asCogVLMError(err, fallback = 'internal') {
  if (err instanceof CogVLMError) return err;
  const message = String(err?.message ?? err);
  if (err?.name === 'AbortError') return new CogVLMError('aborted', message, { cause: err });
  return new CogVLMError(typeof err?.code === 'string' ? err.code : fallback, message, { cause: err });
}

/** toWire is what crosses postMessage: structured clone keeps an Error's message, not its code. */
export function toWire(err) {
  const e = asCogVLMError(err);
  return { code: e.code, message: e.message };
}

export function fromWire(content) {
  return new CogVLMError(content?.code, String(content?.message ?? 'unknown error'));
}

/** abortError is what an operation stopped by an AbortSignal rejects with. */
export function abortError(what) {
  return new CogVLMError('aborted', `${what} aborted`);
}
