/** Safetensors dtype names, as written in the header. */
export const DTYPES = [
  'F64',
  'F32',
  'F16',
  'BF16',
  'I64',
  'I32',
  'I16',
  'I8',
  'U64',
  'U32',
  'U16',
  'U8',
  'BOOL',
] as const;

export type Dtype = (typeof DTYPES)[number];

/** Bytes per element for each dtype. */
export const DTYPE_SIZE: Record<Dtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
};

export function isDtype(value: unknown): value is Dtype {
  return typeof value === 'string' && (DTYPES as readonly string[]).includes(value);
}

// Typed arrays are read in host byte order; safetensors is little-endian, like every host Node runs on
// in practice. A big-endian host would silently misread, so it is refused once here.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('safetensors: big-endian hosts are not supported');
}

/** Rounds each float32 to bfloat16 (round to nearest, ties to even); NaN stays NaN, ±Inf stays ±Inf. */
export function f32ToBf16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const b = bits[i];
    if ((b & 0x7fffffff) > 0x7f800000) {
      // NaN: keep the sign and top payload bits, force a quiet bit so truncation cannot produce Inf.
      out[i] = (b >>> 16) | 0x0040;
    } else {
      out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
    }
  }
  return out;
}

export function bf16ToF32(values: Uint16Array): Float32Array {
  const out = new Float32Array(values.length);
  widenInto('BF16', values, 0, values.length, out, 0);
  return out;
}

/** Converts one float32 bit pattern to IEEE half (round to nearest, ties to even, subnormals kept). */
function f32BitsToF16(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x0200 | (mant >>> 13) : 0);
  // Unbiased exponent rebased to half's bias of 15.
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): shift the implicit-one mantissa right, rounding ties to even.
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let r = m >>> shift;
    if (rest > half || (rest === half && (r & 1) === 1)) r += 1;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent, up to Inf.
  if (rest > 0x1000 || (rest === 0x1000 && (r & 1) === 1)) r += 1;
  return sign | r;
}

export function f32ToF16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f32BitsToF16(bits[i]);
  return out;
}

function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

let f16Table: Float32Array | null = null;

/** The float32 value of every f16 bit pattern (256 KiB), so widening is one lookup per element. */
function f16Lookup(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32(h);
  }
  return f16Table;
}

export function f16ToF32(values: Uint16Array): Float32Array {
  const out = new Float32Array(values.length);
  widenInto('F16', values, 0, values.length, out, 0);
  return out;
}

/** out[o + i] = float32(values[from + i]) for i < count, for bf16 or f16 bit patterns (exact). */
export function widenInto(
  dtype: 'BF16' | 'F16',
  values: Uint16Array,
  from: number,
  count: number,
  out: Float32Array,
  o: number,
): void {
  if (count <= 0) return;
  if (dtype === 'BF16') {
    const bits = new Uint32Array(out.buffer, out.byteOffset + o * 4, count);
    const start = values.byteOffset + from * 2;
    // two values per 32-bit read (little-endian: the first is the low half): 0.55 instead of 0.83 ns a value over
    // a 1 GiB weight streamed from memory; an unaligned first value and an odd last one go alone
    const lead = start % 4 === 0 ? 0 : 1;
    if (lead) bits[0] = values[from] << 16;
    const pairs = new Uint32Array(values.buffer, start + lead * 2, (count - lead) >> 1);
    for (let p = 0, j = lead; p < pairs.length; p++, j += 2) {
      const v = pairs[p];
      bits[j] = v << 16;
      bits[j + 1] = v & 0xffff0000;
    }
    for (let j = lead + 2 * pairs.length; j < count; j++) bits[j] = values[from + j] << 16;
    return;
  }
  const table = f16Lookup();
  for (let i = 0; i < count; i++) out[o + i] = table[values[from + i]];
}

/**
 * Decodes raw little-endian bytes of any dtype to float32. F32 input is viewed, not copied, so the result
 * shares memory with `bytes`; unaligned input is copied first.
 */
export function decodeToFloat32(dtype: Dtype, bytes: Uint8Array): Float32Array {
  const size = DTYPE_SIZE[dtype];
  const aligned = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  const n = aligned.byteLength / size;
  const { buffer, byteOffset } = aligned;
  switch (dtype) {
    case 'F32':
      return new Float32Array(buffer, byteOffset, n);
    case 'F64':
      return Float32Array.from(new Float64Array(buffer, byteOffset, n));
    case 'F16':
      return f16ToF32(new Uint16Array(buffer, byteOffset, n));
    case 'BF16':
      return bf16ToF32(new Uint16Array(buffer, byteOffset, n));
    case 'I64':
      return Float32Array.from(new BigInt64Array(buffer, byteOffset, n), Number);
    case 'U64':
      return Float32Array.from(new BigUint64Array(buffer, byteOffset, n), Number);
    case 'I32':
      return Float32Array.from(new Int32Array(buffer, byteOffset, n));
    case 'U32':
      return Float32Array.from(new Uint32Array(buffer, byteOffset, n));
    case 'I16':
      return Float32Array.from(new Int16Array(buffer, byteOffset, n));
    case 'U16':
      return Float32Array.from(new Uint16Array(buffer, byteOffset, n));
    case 'I8':
      return Float32Array.from(new Int8Array(buffer, byteOffset, n));
    case 'U8':
      return Float32Array.from(new Uint8Array(buffer, byteOffset, n));
    case 'BOOL':
      return Float32Array.from(new Uint8Array(buffer, byteOffset, n), (v) => (v !== 0 ? 1 : 0));
  }
}

/** Encodes float32 values into the bytes of a float dtype (F32, F16, BF16, F64). */
export function encodeFromFloat32(dtype: 'F32' | 'F16' | 'BF16' | 'F64', values: Float32Array): Uint8Array {
  switch (dtype) {
    case 'F32':
      return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    case 'F16': {
      const h = f32ToF16(values);
      return new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
    }
    case 'BF16': {
      const h = f32ToBf16(values);
      return new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
    }
    case 'F64': {
      const d = Float64Array.from(values);
      return new Uint8Array(d.buffer);
    }
  }
}
