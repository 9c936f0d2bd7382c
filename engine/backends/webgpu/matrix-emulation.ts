import type { SubgroupMatrixConfig } from './types.ts';

/**
 * Test support: the subgroup-matrix GEMM's WGSL with the four subgroup-matrix builtins replaced by plain WGSL that
 * follows Dawn's definitions (left<T, K, M>: M×K; right<T, N, K>: K×N; result<T, N, M>: M×N; element (r, c) at
 * offset + r·stride + c, or c·stride + r when column-major), so the GEMM runs on adapters without subgroup
 * matrices. A loaded left or right matrix is a view of workgroup memory (which the GEMM leaves unchanged until
 * the products are done); a result is spread over the emulated subgroup's lanes, lane l holding elements
 * l, l + S, l + 2S… of it in row-major order.
 */
export function emulated(source: string, cfg: SubgroupMatrixConfig, subgroup: number): string {
  const { M, N, K } = cfg;
  const per = Math.ceil((M * N) / subgroup);
  const helpers = `struct EmuView { off: u32, colMajor: bool, stride: u32 }
struct EmuC { v: array<f32, ${per}> }
var<private> emuLane: u32;
fn at(v: EmuView, r: u32, c: u32) -> u32 { return v.off + select(r * v.stride + c, c * v.stride + r, v.colMajor); }
fn emuLoad(off: u32, colMajor: bool, stride: u32) -> EmuView { return EmuView(off, colMajor, stride); }
fn emuMma(l: EmuView, r: EmuView, acc: EmuC) -> EmuC {
  var o = acc;
  for (var j = 0u; j < ${per}u; j++) {
    let e = emuLane + j * ${subgroup}u;
    if (e >= ${M * N}u) { break; }
    let row = e / ${N}u;
    let col = e % ${N}u;
    var s = 0.0;
    for (var k = 0u; k < ${K}u; k++) { s += f32(As[at(l, row, k)]) * f32(Bs[at(r, k, col)]); }
    o.v[j] += s;
  }
  return o;
}
fn emuStore(off: u32, m: EmuC, colMajor: bool, stride: u32) {
  let v = EmuView(off, colMajor, stride);
  for (var j = 0u; j < ${per}u; j++) {
    let e = emuLane + j * ${subgroup}u;
    if (e < ${M * N}u) { Cs[at(v, e / ${N}u, e % ${N}u)] = m.v[j]; }
  }
}
`;
  const out = source
    .replace('enable subgroups;\n', '')
    .replace('enable chromium_experimental_subgroup_matrix;\n', '')
    .replace('diagnostic(off, chromium.subgroup_matrix_uniformity);\n', '')
    .replaceAll(`subgroupMatrixLoad<subgroup_matrix_left<f16, ${K}, ${M}>>(&As,`, 'emuLoad(')
    .replaceAll(`subgroupMatrixLoad<subgroup_matrix_right<f16, ${N}, ${K}>>(&Bs,`, 'emuLoad(')
    .replaceAll('subgroupMatrixStore(&Cs,', 'emuStore(')
    .replaceAll('subgroupMatrixMultiplyAccumulate(', 'emuMma(')
    .replaceAll(`subgroup_matrix_left<f16, ${K}, ${M}>`, 'EmuView')
    .replaceAll(`subgroup_matrix_right<f16, ${N}, ${K}>`, 'EmuView')
    .replaceAll(`subgroup_matrix_result<f32, ${N}, ${M}>`, 'EmuC')
    .replace(
      /,\s*@builtin\(subgroup_id\) sg: u32\) \{/,
      `) {\n  let sg = li / ${subgroup}u;\n  emuLane = li % ${subgroup}u;`,
    )
    .replace('@compute', `${helpers}@compute`);
  if (/subgroupMatrix|subgroup_matrix|subgroup_id/.test(out)) {
    throw new Error('emulation left a subgroup-matrix builtin in place');
  }
  return out;
}
