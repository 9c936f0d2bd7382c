import { f16ToF32, f32ToBf16, f32ToF16 } from '../../safetensors/index.ts';
import { ExportError } from '../errors.ts';
import { BLOCK, type GgmlTypeName } from './format.ts';

/*
 * ggml's reference quantisers (ggml-quants.c: quantize_row_q8_0_ref, quantize_row_q5_0_ref,
 * quantize_row_q4_K_ref with make_qkx2_quants, quantize_row_q6_K_ref with make_qx_quants), which is what
 * llama-quantize runs without an importance matrix. Every float operation is rounded to float32 as C does
 * (`fr`), so the bytes match llama.cpp's bit for bit; the dequantisers mirror dequantize_row_*.
 */

const fr = Math.fround;

const nearestScratch = new Float32Array(1);
const nearestBits = new Int32Array(nearestScratch.buffer);
/** ggml's nearest_int: round half to even through the 1.5·2²³ trick, on a float32. */
function nearestInt(value: number): number {
  nearestScratch[0] = value + 12582912;
  return (nearestBits[0] & 0x007fffff) - 0x00400000;
}

const halfScratch = new Float32Array(1);
const halfOut = new Uint16Array(1);
function toHalf(value: number): number {
  halfScratch[0] = value;
  halfOut[0] = f32ToF16(halfScratch)[0];
  return halfOut[0];
}
function fromHalf(bits: number): number {
  halfOut[0] = bits;
  return f16ToF32(halfOut)[0];
}

function setHalf(out: Uint8Array, at: number, bits: number): void {
  out[at] = bits & 0xff;
  out[at + 1] = bits >>> 8;
}
function getHalf(bytes: Uint8Array, at: number): number {
  return fromHalf(bytes[at] | (bytes[at + 1] << 8));
}

function roundAway(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

function quantizeQ8_0(x: Float32Array, out: Uint8Array): void {
  for (let b = 0, o = 0; b < x.length; b += 32, o += 34) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b + j]));
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    setHalf(out, o, toHalf(d));
    for (let j = 0; j < 32; j++) out[o + 2 + j] = roundAway(fr(x[b + j] * id)) & 0xff;
  }
}

function dequantizeQ8_0(bytes: Uint8Array, out: Float32Array): void {
  for (let b = 0, o = 0; b < out.length; b += 32, o += 34) {
    const d = getHalf(bytes, o);
    for (let j = 0; j < 32; j++) out[b + j] = fr((((bytes[o + 2 + j] << 24) >> 24) as number) * d);
  }
}

function quantizeQ5_0(x: Float32Array, out: Uint8Array): void {
  for (let b = 0, o = 0; b < x.length; b += 32, o += 22) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[b + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = fr(max / -16);
    const id = d ? fr(1 / d) : 0;
    setHalf(out, o, toHalf(d));
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const xi0 = Math.min(31, Math.trunc(fr(fr(x[b + j] * id) + 16.5)));
      const xi1 = Math.min(31, Math.trunc(fr(fr(x[b + 16 + j] * id) + 16.5)));
      out[o + 6 + j] = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
      qh |= ((xi0 & 0x10) >>> 4) << j;
      qh |= ((xi1 & 0x10) >>> 4) << (j + 16);
    }
    out[o + 2] = qh & 0xff;
    out[o + 3] = (qh >>> 8) & 0xff;
    out[o + 4] = (qh >>> 16) & 0xff;
    out[o + 5] = (qh >>> 24) & 0xff;
  }
}

function dequantizeQ5_0(bytes: Uint8Array, out: Float32Array): void {
  for (let b = 0, o = 0; b < out.length; b += 32, o += 22) {
    const d = getHalf(bytes, o);
    const qh = (bytes[o + 2] | (bytes[o + 3] << 8) | (bytes[o + 4] << 16) | (bytes[o + 5] << 24)) >>> 0;
    for (let j = 0; j < 16; j++) {
      const xh0 = ((qh >>> j) << 4) & 0x10;
      const xh1 = (qh >>> (j + 12)) & 0x10;
      const x0 = ((bytes[o + 6 + j] & 0x0f) | xh0) - 16;
      const x1 = ((bytes[o + 6 + j] >>> 4) | xh1) - 16;
      out[b + j] = fr(x0 * d);
      out[b + j + 16] = fr(x1 * d);
    }
  }
}

/** make_qkx2_quants(32, 15, x, weights, L, &min, Laux, -1, 0.1, 20, false): returns [scale, −min]. */
function makeQkx2(
  x: Float32Array,
  at: number,
  weights: Float32Array,
  L: Uint8Array,
  lAt: number,
  aux: Uint8Array,
): [number, number] {
  const n = 32;
  const nmax = 15;
  const rmin = -1;
  const rdelta = fr(0.1);
  const nstep = 20;
  let min = x[at];
  let max = x[at];
  let sumW = weights[0];
  let sumX = fr(sumW * x[at]);
  for (let i = 1; i < n; i++) {
    if (x[at + i] < min) min = x[at + i];
    if (x[at + i] > max) max = x[at + i];
    const w = weights[i];
    sumW = fr(sumW + w);
    sumX = fr(sumX + fr(w * x[at + i]));
  }
  if (min > 0) min = 0;
  if (max === min) {
    for (let i = 0; i < n; i++) L[lAt + i] = 0;
    return [0, -min];
  }
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = nearestInt(fr(iscale * fr(x[at + i] - min)));
    L[lAt + i] = Math.max(0, Math.min(nmax, l));
    const diff = fr(fr(fr(scale * L[lAt + i]) + min) - x[at + i]);
    bestError = fr(bestError + fr(weights[i] * fr(diff * diff)));
  }
  for (let is = 0; is <= nstep; is++) {
    iscale = fr(fr(fr(rmin + fr(rdelta * is)) + nmax) / fr(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      let l = nearestInt(fr(iscale * fr(x[at + i] - min)));
      l = Math.max(0, Math.min(nmax, l));
      aux[i] = l;
      const w = weights[i];
      sumL = fr(sumL + fr(w * l));
      sumL2 = fr(sumL2 + fr(fr(w * l) * l));
      sumXL = fr(sumXL + fr(fr(w * l) * x[at + i]));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fr(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        const diff = fr(fr(fr(thisScale * aux[i]) + thisMin) - x[at + i]);
        curError = fr(curError + fr(weights[i] * fr(diff * diff)));
      }
      if (curError < bestError) {
        for (let i = 0; i < n; i++) L[lAt + i] = aux[i];
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return [scale, -min];
}

function scaleMinK4(j: number, q: Uint8Array, at: number): [number, number] {
  if (j < 4) return [q[at + j] & 63, q[at + j + 4] & 63];
  return [
    (q[at + j + 4] & 0xf) | ((q[at + j - 4] >> 6) << 4),
    (q[at + j + 4] >> 4) | ((q[at + j] >> 6) << 4),
  ];
}

function quantizeQ4_K(x: Float32Array, out: Uint8Array): void {
  const L = new Uint8Array(256);
  const aux = new Uint8Array(32);
  const weights = new Float32Array(32);
  const mins = new Float32Array(8);
  const scales = new Float32Array(8);
  for (let b = 0, o = 0; b < x.length; b += 256, o += 144) {
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 8; j++) {
      let sumX2 = 0;
      for (let l = 0; l < 32; l++) sumX2 = fr(sumX2 + fr(x[b + 32 * j + l] * x[b + 32 * j + l]));
      const avX = fr(Math.sqrt(fr(sumX2 / 32)));
      for (let l = 0; l < 32; l++) weights[l] = fr(avX + Math.abs(x[b + 32 * j + l]));
      const [scale, min] = makeQkx2(x, b + 32 * j, weights, L, 32 * j, aux);
      scales[j] = scale;
      mins[j] = min;
      if (scales[j] > maxScale) maxScale = scales[j];
      if (mins[j] > maxMin) maxMin = mins[j];
    }
    const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
    const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
    const sc = o + 4;
    out.fill(0, sc, sc + 12);
    for (let j = 0; j < 8; j++) {
      const ls = Math.min(63, nearestInt(fr(invScale * scales[j])) & 0xff);
      const lm = Math.min(63, nearestInt(fr(invMin * mins[j])) & 0xff);
      if (j < 4) {
        out[sc + j] = ls;
        out[sc + j + 4] = lm;
      } else {
        out[sc + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
        out[sc + j - 4] |= (ls >> 4) << 6;
        out[sc + j] |= (lm >> 4) << 6;
      }
    }
    const dBits = toHalf(fr(maxScale / 63));
    const dminBits = toHalf(fr(maxMin / 63));
    setHalf(out, o, dBits);
    setHalf(out, o + 2, dminBits);
    const dAll = fromHalf(dBits);
    const dminAll = fromHalf(dminBits);
    for (let j = 0; j < 8; j++) {
      const [s, m] = scaleMinK4(j, out, sc);
      const d = fr(dAll * s);
      if (!d) continue;
      const dm = fr(dminAll * m);
      for (let ii = 0; ii < 32; ii++) {
        const l = nearestInt(fr(fr(x[b + 32 * j + ii] + dm) / d));
        L[32 * j + ii] = Math.max(0, Math.min(15, l));
      }
    }
    let q = o + 16;
    for (let j = 0; j < 256; j += 64) {
      for (let l = 0; l < 32; l++) out[q + l] = L[j + l] | (L[j + l + 32] << 4);
      q += 32;
    }
  }
}

function dequantizeQ4_K(bytes: Uint8Array, out: Float32Array): void {
  for (let b = 0, o = 0; b < out.length; b += 256, o += 144) {
    const d = getHalf(bytes, o);
    const min = getHalf(bytes, o + 2);
    let q = o + 16;
    let y = b;
    let is = 0;
    for (let j = 0; j < 256; j += 64) {
      const [s1, m1s] = scaleMinK4(is, bytes, o + 4);
      const [s2, m2s] = scaleMinK4(is + 1, bytes, o + 4);
      const d1 = fr(d * s1);
      const m1 = fr(min * m1s);
      const d2 = fr(d * s2);
      const m2 = fr(min * m2s);
      for (let l = 0; l < 32; l++) out[y++] = fr(fr(d1 * (bytes[q + l] & 0xf)) - m1);
      for (let l = 0; l < 32; l++) out[y++] = fr(fr(d2 * (bytes[q + l] >> 4)) - m2);
      q += 32;
      is += 2;
    }
  }
}

const GROUP_MAX_EPS = fr(1e-15);

/** make_qx_quants(16, 32, x, L, rmse_type = 1, NULL): L holds l + nmax in [0, 2·nmax). */
function makeQx(x: Float32Array, at: number, L: Int8Array, lAt: number): number {
  const n = 16;
  const nmax = 32;
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[at + i]);
    if (ax > amax) {
      amax = ax;
      max = x[at + i];
    }
  }
  if (amax < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[lAt + i] = 0;
    return 0;
  }
  let iscale = fr(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    let l = nearestInt(fr(iscale * x[at + i]));
    l = Math.max(-nmax, Math.min(nmax - 1, l));
    L[lAt + i] = l + nmax;
    const w = fr(x[at + i] * x[at + i]);
    sumlx = fr(sumlx + fr(fr(w * x[at + i]) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  let scale = suml2 ? fr(sumlx / suml2) : 0;
  let best = fr(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = fr(-fr(nmax + fr(fr(0.1) * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      let l = nearestInt(fr(iscale * x[at + i]));
      l = Math.max(-nmax, Math.min(nmax - 1, l));
      const w = fr(x[at + i] * x[at + i]);
      sumlx = fr(sumlx + fr(fr(w * x[at + i]) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      for (let i = 0; i < n; i++) {
        const l = nearestInt(fr(iscale * x[at + i]));
        L[lAt + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, l));
      }
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

function quantizeQ6_K(x: Float32Array, out: Uint8Array): void {
  const L = new Int8Array(256);
  const scales = new Float32Array(16);
  for (let b = 0, o = 0; b < x.length; b += 256, o += 210) {
    let maxScale = 0;
    let maxAbsScale = 0;
    for (let ib = 0; ib < 16; ib++) {
      const scale = makeQx(x, b + 16 * ib, L, 16 * ib);
      scales[ib] = scale;
      const absScale = Math.abs(scale);
      if (absScale > maxAbsScale) {
        maxAbsScale = absScale;
        maxScale = scale;
      }
    }
    out.fill(0, o, o + 210);
    if (maxAbsScale < GROUP_MAX_EPS) continue;
    const iscale = fr(-128 / maxScale);
    const dBits = toHalf(fr(1 / iscale));
    setHalf(out, o + 208, dBits);
    const sc = o + 192;
    for (let ib = 0; ib < 16; ib++) out[sc + ib] = Math.min(127, nearestInt(fr(iscale * scales[ib]))) & 0xff;
    const dAll = fromHalf(dBits);
    for (let j = 0; j < 16; j++) {
      const d = fr(dAll * ((out[sc + j] << 24) >> 24));
      if (!d) continue;
      for (let ii = 0; ii < 16; ii++) {
        let l = nearestInt(fr(x[b + 16 * j + ii] / d));
        l = Math.max(-32, Math.min(31, l));
        L[16 * j + ii] = l + 32;
      }
    }
    let ql = o;
    let qh = o + 128;
    for (let j = 0; j < 256; j += 128) {
      for (let l = 0; l < 32; l++) {
        const q1 = L[j + l] & 0xf;
        const q2 = L[j + l + 32] & 0xf;
        const q3 = L[j + l + 64] & 0xf;
        const q4 = L[j + l + 96] & 0xf;
        out[ql + l] = q1 | (q3 << 4);
        out[ql + l + 32] = q2 | (q4 << 4);
        out[qh + l] =
          (L[j + l] >> 4) |
          ((L[j + l + 32] >> 4) << 2) |
          ((L[j + l + 64] >> 4) << 4) |
          ((L[j + l + 96] >> 4) << 6);
      }
      ql += 64;
      qh += 32;
    }
  }
}

function dequantizeQ6_K(bytes: Uint8Array, out: Float32Array): void {
  for (let b = 0, o = 0; b < out.length; b += 256, o += 210) {
    const d = getHalf(bytes, o + 208);
    let ql = o;
    let qh = o + 128;
    let sc = o + 192;
    let y = b;
    for (let n = 0; n < 256; n += 128) {
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const q1 = ((bytes[ql + l] & 0xf) | (((bytes[qh + l] >> 0) & 3) << 4)) - 32;
        const q2 = ((bytes[ql + l + 32] & 0xf) | (((bytes[qh + l] >> 2) & 3) << 4)) - 32;
        const q3 = ((bytes[ql + l] >> 4) | (((bytes[qh + l] >> 4) & 3) << 4)) - 32;
        const q4 = ((bytes[ql + l + 32] >> 4) | (((bytes[qh + l] >> 6) & 3) << 4)) - 32;
        const s = (i: number) => (bytes[sc + i] << 24) >> 24;
        out[y + l] = fr(fr(d * s(is)) * q1);
        out[y + l + 32] = fr(fr(d * s(is + 2)) * q2);
        out[y + l + 64] = fr(fr(d * s(is + 4)) * q3);
        out[y + l + 96] = fr(fr(d * s(is + 6)) * q4);
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

function asBytes(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** `values` (row-major, rows of the tensor's last dimension) encoded as a ggml type. */
export function quantize(type: GgmlTypeName, values: Float32Array): Uint8Array {
  const { size, bytes } = BLOCK[type];
  if (values.length % size !== 0) {
    throw new ExportError(`${type} needs a multiple of ${size} values, got ${values.length}`);
  }
  switch (type) {
    case 'F32':
      return asBytes(Float32Array.from(values));
    case 'F16':
      return asBytes(f32ToF16(values));
    case 'BF16':
      return asBytes(f32ToBf16(values));
  }
  const out = new Uint8Array((values.length / size) * bytes);
  if (type === 'Q8_0') quantizeQ8_0(values, out);
  else if (type === 'Q5_0') quantizeQ5_0(values, out);
  else if (type === 'Q4_K') quantizeQ4_K(values, out);
  else quantizeQ6_K(values, out);
  return out;
}

/** The float32 values a ggml-typed buffer of `count` values stands for (as llama.cpp dequantises it). */
export function dequantize(type: GgmlTypeName, bytes: Uint8Array, count: number): Float32Array {
  const copy = bytes.slice();
  switch (type) {
    case 'F32':
      return new Float32Array(copy.buffer, 0, count);
    case 'F16':
      return f16ToF32(new Uint16Array(copy.buffer, 0, count));
    case 'BF16': {
      const out = new Float32Array(count);
      const bits = new Uint32Array(out.buffer);
      const half = new Uint16Array(copy.buffer, 0, count);
      for (let i = 0; i < count; i++) bits[i] = half[i] << 16;
      return out;
    }
  }
  const out = new Float32Array(count);
  if (type === 'Q8_0') dequantizeQ8_0(copy, out);
  else if (type === 'Q5_0') dequantizeQ5_0(copy, out);
  else if (type === 'Q4_K') dequantizeQ4_K(copy, out);
  else dequantizeQ6_K(copy, out);
  return out;
}

/**
 * The largest |dequantised − exact| a type allows for values whose largest magnitude is `amax`: half a unit in
 * the last place for F16/BF16 (relative), half a step for Q8_0 (amax/127, f16 scale), a step for Q5_0 (whose
 * top is clipped), and loose bounds for the K-quants, whose exactness the byte comparison checks.
 */
export function dequantBound(type: GgmlTypeName, amax: number): number {
  switch (type) {
    case 'F32':
      return 0;
    case 'F16':
      return Math.max(amax * 2 ** -11, 2 ** -25);
    case 'BF16':
      return amax * 2 ** -8;
    case 'Q8_0':
      return (amax / 127) * 0.5 * 1.01 + amax * 2 ** -11;
    case 'Q5_0':
      // the positive end is clipped at 15 steps of max/16, so a value can be a whole step off
      return (amax / 16) * 1.01 + amax * 2 ** -11;
    case 'Q6_K':
      return amax / 16;
    case 'Q4_K':
      return amax / 4;
  }
}
