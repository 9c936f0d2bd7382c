/**
 * Child process of the `load` bench section: loads a model folder on one backend (`native` unless told) and
 * prints its peak RSS and the bytes its frozen weights are held in as one JSON line. A separate process, so
 * the peak belongs to the load alone.
 *   load-child.mjs <model-dir> [backend]
 */
import { memoryUsage } from 'node:process';
import { selectBackend } from '../engine/backends/index.ts';
import { loadModel } from '../engine/models/index.ts';
import { frozenDtypes, peakRssBytes } from './memory.ts';

const [dir, backend = 'native'] = process.argv.slice(2);
if (!dir) throw new Error('usage: load-child.mjs <model-dir> [backend]');
// one backend probed: probing WebGPU would map a GPU driver (Mesa: LLVM) into the process
const report = await selectBackend({ prefer: backend });
// the current RSS, not the high-water mark: probing the native GEMMs peaks higher and releases it
const baselineBytes = memoryUsage().rss;
const t0 = performance.now();
const model = await loadModel(dir);
const ms = performance.now() - t0;
console.log(
  JSON.stringify({
    backend: report.matmul ? `${report.chosen}/${report.matmul}` : report.chosen,
    baselineBytes,
    peakBytes: peakRssBytes(),
    rssAfterBytes: memoryUsage().rss,
    loadMs: ms,
    layers: model.layers.size,
    parameters: model.spec.numParameters,
    frozen: frozenDtypes(model),
  }),
);
model.dispose();
process.exit(0);
