// The engine's replay loop: a decode step's plan of hundreds of dispatches is encoded here,
// in one Go→JS call, instead of three Go→JS calls per dispatch. An ES module: the worker
// imports it and hands it to the engine object's load as `replay` (wasm/main.go), which
// gives it to the kernels (kernels.SetReplayer); without it the engine encodes from Go
// (slower, same result). Plans are compiled once by the engine into {pipelines, groups,
// dims} (the kernels' plan.go). It lives in web/, the one copy: the page serves it as is
// and the engine's browser tests import this same file (wasm/kernels/kernelstest).

/**
 * run encodes plan into one compute pass and submits it. With readback ({src, srcOffset,
 * staging}), it also copies 4 bytes of src into the mappable staging buffer and resolves
 * to them as a u32 (the next token id); otherwise it returns null.
 */
export function run(device, plan, readback) {
  const enc = device.createCommandEncoder({ label: 'step' });
  const pass = enc.beginComputePass({ label: 'step' });
  const { pipelines, groups, dims } = plan;
  for (let i = 0; i < pipelines.length; i++) {
    pass.setPipeline(pipelines[i]);
    pass.setBindGroup(0, groups[i]);
    pass.dispatchWorkgroups(dims[3 * i], dims[3 * i + 1], dims[3 * i + 2]);
  }
  pass.end();
  if (readback) {
    enc.copyBufferToBuffer(readback.src, readback.srcOffset, readback.staging, 0, 4);
  }
  device.queue.submit([enc.finish()]);
  if (!readback) {
    return null;
  }
  return readback.staging.mapAsync(GPUMapMode.READ).then(() => {
    const value = new Uint32Array(readback.staging.getMappedRange(0, 4))[0];
    readback.staging.unmap();
    return value;
  });
}
