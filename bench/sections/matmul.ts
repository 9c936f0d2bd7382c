import { execFileSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs-core';
import { loadGemm, nativeGemmOrder } from '../../engine/backends/gemm.ts';
import { setMatMulRoute } from '../../engine/backends/matmul.ts';
import type { MatMulPath, NativeGemm } from '../../engine/backends/types.ts';
import { initWasmBackend } from '../../engine/backends/wasm.ts';
import { initWebGpuBackend, probeWebGpu } from '../../engine/backends/webgpu.ts';
import { type BenchContext, type BenchRow, type BenchSection, timeMs, timeMsAsync } from '../types.ts';

interface Shape {
  name: string;
  a: number[];
  b: number[];
  transposeA: boolean;
  transposeB: boolean;
}

function flopsOf(s: Shape): number {
  const ra = s.a.length;
  const m = s.transposeA ? s.a[ra - 1] : s.a[ra - 2];
  const k = s.transposeA ? s.a[ra - 2] : s.a[ra - 1];
  const n = s.transposeB ? s.b[s.b.length - 2] : s.b[s.b.length - 1];
  const batch = Math.max(tf.util.sizeFromShape(s.a.slice(0, -2)), tf.util.sizeFromShape(s.b.slice(0, -2)));
  return 2 * batch * m * n * k;
}

function shapes(quick: boolean): Shape[] {
  const sizes = quick ? [256, 512, 1024] : [256, 512, 1024, 2048];
  const out: Shape[] = [];
  for (const n of sizes) {
    out.push({ name: `${n}² A·B`, a: [n, n], b: [n, n], transposeA: false, transposeB: false });
    out.push({ name: `${n}² A·Bᵀ`, a: [n, n], b: [n, n], transposeA: false, transposeB: true });
  }
  out.push({ name: '1024² Aᵀ·B', a: [1024, 1024], b: [1024, 1024], transposeA: true, transposeB: false });
  out.push({
    name: 'attention scores [48,128,64]·[48,128,64]ᵀ',
    a: [48, 128, 64],
    b: [48, 128, 64],
    transposeA: false,
    transposeB: true,
  });
  out.push({
    name: 'batched [16,256,256]ᵀ·[16,256,256]',
    a: [16, 256, 256],
    b: [16, 256, 256],
    transposeA: true,
    transposeB: false,
  });
  out.push({
    name: 'c_attn [512,768]·[768,2304]',
    a: [512, 768],
    b: [768, 2304],
    transposeA: false,
    transposeB: false,
  });
  out.push({
    name: 'c_attn weight grad [512,768]ᵀ·[512,2304]',
    a: [512, 768],
    b: [512, 2304],
    transposeA: true,
    transposeB: false,
  });
  out.push({
    name: 'LoRA x·A [512,768]·[768,8]',
    a: [512, 768],
    b: [768, 8],
    transposeA: false,
    transposeB: false,
  });
  return out;
}

/** The stock kernel's scalar loop runs at ~0.5 GFLOP/s: keep its transposed and batched rows short. */
function stockTooSlow(s: Shape): boolean {
  const batched = s.a.length > 2 || s.b.length > 2;
  return (s.transposeA || s.transposeB || batched) && flopsOf(s) > 3e8;
}

function measureSync(s: Shape): number {
  const a = tf.randomUniform(s.a, -1, 1);
  const b = tf.randomUniform(s.b, -1, 1);
  // wasm kernels are synchronous: the product is done when matMul returns
  const ms = timeMs(() => tf.matMul(a, b, s.transposeA, s.transposeB).dispose(), {
    warmup: 1,
    maxReps: flopsOf(s) > 5e9 ? 5 : 30,
  });
  tf.dispose([a, b]);
  return ms;
}

function row(s: Shape, config: string, ms: number): BenchRow {
  return {
    name: s.name,
    config,
    value: Number((flopsOf(s) / ms / 1e6).toFixed(1)),
    unit: 'GFLOP/s',
    details: { ms: Number(ms.toFixed(3)) },
  };
}

/** numpy on the same machine, as a yardstick for what this CPU can do. */
function numpyRows(list: Shape[], ctx: BenchContext): BenchRow[] {
  const simple = list.filter((s) => s.a.length === 2 && s.b.length === 2);
  const script = `
import json, sys, time
import numpy as np
out = []
for name, a, b, ta, tb in json.loads(sys.argv[1]):
    x = np.random.rand(*a).astype(np.float32); y = np.random.rand(*b).astype(np.float32)
    f = (lambda: (x.T if ta else x) @ (y.T if tb else y))
    f(); ts = []
    start = time.perf_counter()
    while len(ts) < 30 and (len(ts) < 3 or time.perf_counter() - start < 0.6):
        t = time.perf_counter(); f(); ts.append((time.perf_counter() - t) * 1000)
    ts.sort(); out.append(ts[len(ts) // 2])
print(json.dumps({"ms": out, "numpy": np.__version__}))
`;
  try {
    const arg = JSON.stringify(simple.map((s) => [s.name, s.a, s.b, s.transposeA, s.transposeB]));
    const result = JSON.parse(execFileSync('python3', ['-c', script, arg], { encoding: 'utf8' })) as {
      ms: number[];
      numpy: string;
    };
    return simple.map((s, i) => row(s, `numpy ${result.numpy} (reference)`, result.ms[i]));
  } catch (error) {
    ctx.log(`matmul: numpy reference skipped (${(error as Error).message.split('\n')[0]})`);
    return [];
  }
}

async function webgpuRows(ctx: BenchContext, allowSoftware: boolean): Promise<BenchRow[]> {
  const probe = await probeWebGpu();
  if (!probe.available || (probe.software && !allowSoftware)) {
    ctx.log(
      `matmul: webgpu skipped (${probe.reason}${probe.software ? '; --allow-software-gpu to time it' : ''})`,
    );
    return [];
  }
  await initWebGpuBackend();
  const config = `webgpu${probe.software ? ' (software)' : ''} ${probe.adapter?.device ?? ''}`.trim();
  const rows: BenchRow[] = [];
  for (const n of probe.software ? [256, 512] : [256, 512, 1024, 2048]) {
    for (const transposeB of [false, true]) {
      const s: Shape = {
        name: `${n}² A·B${transposeB ? 'ᵀ' : ''}`,
        a: [n, n],
        b: [n, n],
        transposeA: false,
        transposeB,
      };
      const a = tf.randomUniform(s.a, -1, 1);
      const b = tf.randomUniform(s.b, -1, 1);
      // a 1-element read forces completion without timing a full readback
      const ms = await timeMsAsync(async () => {
        const y = tf.matMul(a, b, false, transposeB);
        const probeValue = tf.slice(y, [0, 0], [1, 1]);
        await probeValue.data();
        tf.dispose([y, probeValue]);
      });
      tf.dispose([a, b]);
      rows.push(row(s, config, ms));
      ctx.log(`matmul: ${config} ${s.name} ${rows[rows.length - 1].value} GFLOP/s`);
    }
  }
  await tf.setBackend('wasm');
  return rows;
}

export const section: BenchSection = {
  name: 'matmul',
  title: 'matmul throughput per backend and route (median of repeats)',
  async run(ctx) {
    await initWasmBackend();
    const list = shapes(ctx.quick);
    const routes: { path: MatMulPath; gemm: NativeGemm | null }[] = [];
    for (const path of nativeGemmOrder) {
      try {
        routes.push({ path, gemm: loadGemm(path) });
      } catch (error) {
        ctx.log(`matmul: ${path} skipped (${(error as Error).message})`);
      }
    }
    routes.push({ path: 'js-relayout', gemm: null }, { path: 'wasm-stock', gemm: null });
    const rows: BenchRow[] = [];
    for (const route of routes) {
      setMatMulRoute(route.path, route.gemm);
      for (const s of list) {
        if (route.path === 'wasm-stock' && stockTooSlow(s)) continue;
        const r = row(s, `wasm/${route.path}`, measureSync(s));
        rows.push(r);
        ctx.log(`matmul: ${r.config} ${s.name} ${r.value} GFLOP/s`);
      }
    }
    await tf.setBackend('cpu');
    const small: Shape = {
      name: '256² A·B',
      a: [256, 256],
      b: [256, 256],
      transposeA: false,
      transposeB: false,
    };
    rows.push(row(small, 'cpu (tfjs JS kernels)', measureSync(small)));
    await tf.setBackend('wasm');
    rows.push(...numpyRows(list, ctx));
    rows.push(...(await webgpuRows(ctx, ctx.options.allowSoftwareGpu)));
    return rows;
  },
};
