import { type BackendReport, selectBackend } from '../../backends/index.ts';
import type { GpuCapabilities } from '../../backends/webgpu/types.ts';
import { describeDawnMessages } from '../../backends/webgpu-quiet.ts';
import { CliError, type Command, jsonOption, stringArg } from '../command.ts';

function formatReport(report: BackendReport): string {
  const rows = report.candidates.map((c) => [
    c.used ? '*' : ' ',
    c.name,
    c.available ? 'yes' : 'no',
    c.reason,
  ]);
  const header = ['', 'backend', 'available', 'why'];
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.slice(0, 3).map((r) => (i < 3 ? r[i].length : 0))),
  );
  const line = (r: string[]) =>
    r
      .map((cell, i) => (i < 3 ? cell.padEnd(widths[i]) : cell))
      .join('  ')
      .trimEnd();
  const out = [
    `chosen: ${report.chosen}${report.matmul ? ` (matmul: ${report.matmul})` : ''}`,
    `reason: ${report.reason}`,
    '',
    line(header),
    ...rows.map(line),
  ];
  // the native GEMM libraries behind the chosen CPU backend (native, else wasm)
  const cpuSide =
    report.candidates.find((c) => c.name === 'native' && c.used) ??
    report.candidates.find((c) => c.name === 'wasm');
  const routes = cpuSide?.details.matmulCandidates as
    | { path: string; available: boolean; reason: string }[]
    | undefined;
  if (routes?.length) {
    out.push('', 'native matmul libraries:');
    for (const r of routes) out.push(`  ${r.path.padEnd(18)}${r.available ? 'loaded' : r.reason}`);
    const gemm = cpuSide?.details.gemm as Record<string, unknown> | undefined;
    if (gemm)
      out.push(
        `  in use: ${Object.entries(gemm)
          .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
          .join(', ')}`,
      );
  }
  const gpu = report.candidates.find((c) => c.name === 'webgpu');
  const attempts = gpu?.details.attempts as string[] | undefined;
  if (attempts?.length) out.push('', `webgpu adapters tried: ${attempts.join('; ')}`);
  const dawn = describeDawnMessages((gpu?.details.dawnMessages as string[] | undefined) ?? []);
  if (dawn) out.push(`webgpu notes: ${dawn}`);
  const caps = gpu?.details.capabilities as GpuCapabilities | null | undefined;
  if (caps) out.push('', ...formatCapabilities(caps));
  return out.join('\n');
}

const mib = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MiB`;

/** The WebGPU device: adapter, features, limits, and which kernel paths it runs and why. */
function formatCapabilities(caps: GpuCapabilities): string[] {
  const a = caps.adapter;
  const configs = caps.subgroupMatrixConfigs.map(
    (c) => `${c.M}×${c.N}×${c.K} ${c.componentType}→${c.resultComponentType}`,
  );
  const path = (name: string, p: { used: boolean; reason: string }) =>
    `  ${name.padEnd(16)}${p.used ? 'used' : 'not used'}: ${p.reason}`;
  return [
    `webgpu device: ${[a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ')}`,
    `  features      ${caps.features.join(', ') || 'none'}`,
    `  limits        maxBufferSize ${mib(caps.limits.maxBufferSize)}, maxStorageBufferBindingSize ${mib(caps.limits.maxStorageBufferBindingSize)}, ${caps.limits.maxStorageBuffersPerShaderStage} storage buffers per stage, ${caps.limits.maxComputeWorkgroupStorageSize} bytes of workgroup memory`,
    `  subgroups     ${caps.subgroupMaxSize ? `${caps.subgroupMinSize}–${caps.subgroupMaxSize} lanes` : 'none'}; subgroup-matrix configs: ${configs.join(', ') || 'none'}`,
    'kernel paths:',
    path('f16 weights', caps.f16),
    path('subgroups', caps.subgroups),
    path('subgroup matrix', caps.subgroupMatrix),
  ];
}

export const command: Command = {
  name: 'backends',
  summary: 'List compute backends, the one chosen and why the others were skipped.',
  usage: '[--backend <name>] [--allow-software-gpu] [--json]',
  options: {
    backend: {
      type: 'string',
      value: '<name>',
      description:
        'auto, cuda, webgpu, native, wasm, cpu, native:<onnxruntime-mlas|koffi-blas> or wasm:<onnxruntime-mlas|koffi-blas|js-relayout|wasm-stock> (default: STUDIO_BACKEND, then auto)',
    },
    'allow-software-gpu': {
      type: 'boolean',
      description: 'let automatic choice take a software WebGPU adapter (llvmpipe, lavapipe, SwiftShader)',
    },
    json: jsonOption,
  },
  async run(args, io) {
    const prefer = stringArg(args, 'backend');
    let report: BackendReport;
    try {
      // a report for the user: every candidate is probed, not only the requested one
      report = await selectBackend({
        prefer,
        allowSoftwareGpu: Boolean(args.values['allow-software-gpu']),
        survey: true,
      });
    } catch (error) {
      throw new CliError((error as Error).message);
    }
    io.out(args.values.json ? JSON.stringify(report, null, 2) : formatReport(report));
    return 0;
  },
};
