// The page: start the Go/WASM engine and show what WebGPU this browser offers.
const status = document.getElementById('status');
const list = document.getElementById('gpu');

async function startEngine() {
  const ready = new Promise((resolve) => { globalThis.cogvlmEngineReady = resolve; });
  const go = new Go();
  const { instance } = await WebAssembly.instantiateStreaming(fetch('cogvlm.wasm'), go.importObject);
  go.run(instance);
  return ready;
}

function show(info) {
  const rows = {
    Adapter: `${info.vendor} ${info.architecture}${info.fallback ? ' (software fallback)' : ''}`,
    'shader-f16': info.shaderF16 ? 'yes' : 'no',
    subgroups: info.subgroups ? 'yes' : 'no',
    'timestamp-query': info.timestampQuery ? 'yes' : 'no',
    'Largest buffer': `${(info.maxBufferSize / 2 ** 30).toFixed(2)} GiB`,
    'Largest storage binding': `${(info.maxStorageBufferBindingSize / 2 ** 30).toFixed(2)} GiB`,
  };
  for (const [k, v] of Object.entries(rows)) {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    list.append(dt, dd);
  }
}

try {
  const engine = await startEngine();
  const info = await engine.probe();
  show(info);
  status.textContent = 'WebGPU is ready.';
  document.body.dataset.state = 'ready';
} catch (e) {
  status.textContent = e.code === 'no-webgpu'
    ? 'This browser has no WebGPU. Use Chrome or Edge 113 or newer (or Chromium with --enable-unsafe-webgpu).'
    : `The engine failed to start: ${e.message}`;
  document.body.dataset.state = 'error';
}
