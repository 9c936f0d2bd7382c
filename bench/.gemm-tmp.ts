import { loadOrtGemm } from '../engine/backends/ort-gemm.ts';
import { loadBlasGemm } from '../engine/backends/blas-gemm.ts';
const which = process.argv[2] ?? 'ort';
const threads = Number(process.argv[3] ?? 2);
const g = which === 'ort' ? loadOrtGemm({ threads }) : loadBlasGemm({ threads });
const n = Number(process.argv[4] ?? 1024);
const a = Float32Array.from({ length: n * n }, () => Math.random());
const b = Float32Array.from({ length: n * n }, () => Math.random());
const c = new Float32Array(n * n);
for (const tb of [false, true]) {
  for (let i = 0; i < 3; i++) g.sgemm(false, tb, n, n, n, a, b, c);
  const times: number[] = [];
  for (let i = 0; i < 15; i++) { const t = performance.now(); g.sgemm(false, tb, n, n, n, a, b, c); times.push(performance.now() - t); }
  times.sort((x, y) => x - y);
  console.log(which, threads, n, tb ? 'A·Bᵀ' : 'A·B', 'best', (2 * n ** 3 / times[0] / 1e6).toFixed(1), 'median', (2 * n ** 3 / times[7] / 1e6).toFixed(1), 'GFLOP/s');
}
