/**
 * Child process of the `load` bench section: loads a model folder on the default backend and prints its peak
 * RSS as one JSON line. A separate process, so the peak belongs to the load alone.
 */
import { memoryUsage, resourceUsage } from 'node:process';
import { activateWasm } from '../engine/backends/wasm.ts';
import { loadModel } from '../engine/models/index.ts';

const dir = process.argv[2];
if (!dir) throw new Error('usage: load-child.ts <model-dir>');
// wasm with its native GEMM only: probing WebGPU would map a GPU driver (Mesa: LLVM) into the process
const setup = await activateWasm();
// the current RSS, not the high-water mark: probing the native GEMMs peaks higher and releases it
const baselineBytes = memoryUsage().rss;
const t0 = performance.now();
const model = await loadModel(dir);
const ms = performance.now() - t0;
const peakKb = resourceUsage().maxRSS;
console.log(
  JSON.stringify({
    backend: `wasm/${setup.matmul}`,
    baselineBytes,
    peakBytes: peakKb * 1024,
    rssAfterBytes: memoryUsage().rss,
    loadMs: ms,
    layers: model.layers.size,
  }),
);
model.dispose();
process.exit(0);
