import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { ExportError } from '../errors.ts';

/** GGUF v3 as llama.cpp's gguf-py writes it (constants.py, gguf_writer.py): little-endian, 32-byte alignment. */
export const GGUF_MAGIC = 0x46554747;
export const GGUF_VERSION = 3;
export const GGUF_ALIGNMENT = 32;
/** `general.quantization_version` (GGML_QNT_VERSION). */
export const GGML_QUANT_VERSION = 2;

export const ValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
export type ValueType = (typeof ValueType)[keyof typeof ValueType];

/** ggml tensor types this studio writes or reads, with their GGMLQuantizationType numbers. */
export const GgmlType = { F32: 0, F16: 1, Q5_0: 6, Q8_0: 8, Q4_K: 12, Q6_K: 14, BF16: 30 } as const;
export type GgmlTypeName = keyof typeof GgmlType;

/** Values per block and bytes per block (GGML_QUANT_SIZES). */
export const BLOCK: Record<GgmlTypeName, { size: number; bytes: number }> = {
  F32: { size: 1, bytes: 4 },
  F16: { size: 1, bytes: 2 },
  BF16: { size: 1, bytes: 2 },
  Q5_0: { size: 32, bytes: 22 },
  Q8_0: { size: 32, bytes: 34 },
  Q4_K: { size: 256, bytes: 144 },
  Q6_K: { size: 256, bytes: 210 },
};

export function ggmlTypeName(id: number): GgmlTypeName | null {
  for (const [name, value] of Object.entries(GgmlType)) if (value === id) return name as GgmlTypeName;
  return null;
}

/** Bytes of a tensor of `shape` (PyTorch order, last dimension innermost) stored as `type`. */
export function tensorBytes(type: GgmlTypeName, shape: readonly number[]): number {
  const { size, bytes } = BLOCK[type];
  const row = shape.length === 0 ? 1 : shape[shape.length - 1];
  if (row % size !== 0) {
    throw new ExportError(`a ${type} tensor needs rows that are a multiple of ${size}, got [${shape}]`);
  }
  const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  return rows * (row / size) * bytes;
}

export function pad(n: number, align = GGUF_ALIGNMENT): number {
  return Math.ceil(n / align) * align;
}

/** A metadata value with its GGUF type spelled out, so integers keep the width llama.cpp's loader expects. */
export type GgufValue =
  | {
      type: Exclude<ValueType, typeof ValueType.ARRAY | typeof ValueType.STRING | typeof ValueType.BOOL>;
      value: number;
    }
  | { type: typeof ValueType.BOOL; value: boolean }
  | { type: typeof ValueType.STRING; value: string }
  | { type: typeof ValueType.ARRAY; itemType: ValueType; value: (number | string | boolean)[] };

export const u32 = (value: number): GgufValue => ({ type: ValueType.UINT32, value });
export const i32 = (value: number): GgufValue => ({ type: ValueType.INT32, value });
export const f32 = (value: number): GgufValue => ({ type: ValueType.FLOAT32, value });
export const str = (value: string): GgufValue => ({ type: ValueType.STRING, value });
export const bool = (value: boolean): GgufValue => ({ type: ValueType.BOOL, value });
export const arr = (itemType: ValueType, value: (number | string | boolean)[]): GgufValue => ({
  type: ValueType.ARRAY,
  itemType,
  value,
});

/** A tensor as the file's tensor-info table lists it: `shape` in PyTorch order (written reversed, as ggml's ne). */
export interface GgufTensorInfo {
  name: string;
  shape: number[];
  type: GgmlTypeName;
}

/** Growable little-endian byte buffer for the header, metadata and tensor-info sections. */
class ByteWriter {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private static encoder = new TextEncoder();

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number) {
    this.room(1);
    this.view.setUint8(this.length, v);
    this.length += 1;
  }
  u32(v: number) {
    this.room(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }
  u64(v: number) {
    this.room(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }
  string(s: string) {
    const bytes = ByteWriter.encoder.encode(s);
    this.u64(bytes.length);
    this.room(bytes.length);
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
  }
  scalar(type: ValueType, v: number | string | boolean) {
    this.room(8);
    const at = this.length;
    switch (type) {
      case ValueType.UINT8:
      case ValueType.BOOL:
        this.view.setUint8(at, Number(v));
        this.length += 1;
        return;
      case ValueType.INT8:
        this.view.setInt8(at, v as number);
        this.length += 1;
        return;
      case ValueType.UINT16:
        this.view.setUint16(at, v as number, true);
        this.length += 2;
        return;
      case ValueType.INT16:
        this.view.setInt16(at, v as number, true);
        this.length += 2;
        return;
      case ValueType.UINT32:
        this.view.setUint32(at, v as number, true);
        this.length += 4;
        return;
      case ValueType.INT32:
        this.view.setInt32(at, v as number, true);
        this.length += 4;
        return;
      case ValueType.FLOAT32:
        this.view.setFloat32(at, v as number, true);
        this.length += 4;
        return;
      case ValueType.UINT64:
        this.view.setBigUint64(at, BigInt(v as number), true);
        this.length += 8;
        return;
      case ValueType.INT64:
        this.view.setBigInt64(at, BigInt(v as number), true);
        this.length += 8;
        return;
      case ValueType.FLOAT64:
        this.view.setFloat64(at, v as number, true);
        this.length += 8;
        return;
      case ValueType.STRING:
        this.string(v as string);
        return;
      default:
        throw new ExportError(`GGUF: cannot write a nested value of type ${type}`);
    }
  }
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

function encodeHeader(metadata: [string, GgufValue][], tensors: GgufTensorInfo[]): Uint8Array {
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(tensors.length);
  w.u64(metadata.length);
  for (const [key, v] of metadata) {
    w.string(key);
    w.u32(v.type);
    if (v.type === ValueType.ARRAY) {
      if (v.value.length === 0) throw new ExportError(`GGUF metadata "${key}": empty arrays are not written`);
      w.u32(v.itemType);
      w.u64(v.value.length);
      for (const item of v.value) w.scalar(v.itemType, item);
    } else {
      w.scalar(v.type, v.value);
    }
  }
  let offset = 0;
  for (const t of tensors) {
    w.string(t.name);
    w.u32(t.shape.length);
    for (let j = t.shape.length - 1; j >= 0; j--) w.u64(t.shape[j]);
    w.u32(GgmlType[t.type]);
    w.u64(offset);
    offset += pad(tensorBytes(t.type, t.shape));
  }
  const header = w.bytes();
  const out = new Uint8Array(pad(header.length));
  out.set(header);
  return out;
}

/** Bytes of the whole file: header, metadata, tensor infos, aligned data. */
export function ggufFileBytes(metadata: [string, GgufValue][], tensors: GgufTensorInfo[]): number {
  let data = 0;
  for (const t of tensors) data += pad(tensorBytes(t.type, t.shape));
  return encodeHeader(metadata, tensors).length + data;
}

/**
 * Writes a GGUF file through `handle`, one tensor at a time: `produce` is asked for each tensor's bytes in
 * table order, so no more than one tensor is held at once. Every tensor's size is checked against its info.
 */
export async function writeGguf(
  handle: FileHandle,
  metadata: [string, GgufValue][],
  tensors: GgufTensorInfo[],
  produce: (tensor: GgufTensorInfo, index: number) => Promise<Uint8Array>,
): Promise<number> {
  const seen = new Set<string>();
  for (const [key] of metadata) {
    if (seen.has(key)) throw new ExportError(`GGUF metadata key "${key}" appears twice`);
    seen.add(key);
  }
  seen.clear();
  for (const t of tensors) {
    if (seen.has(t.name)) throw new ExportError(`GGUF tensor "${t.name}" appears twice`);
    seen.add(t.name);
  }
  const header = encodeHeader(metadata, tensors);
  let position = 0;
  const write = async (bytes: Uint8Array) => {
    await handle.write(bytes, 0, bytes.length, position);
    position += bytes.length;
  };
  await write(header);
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i];
    const bytes = await produce(t, i);
    const expected = tensorBytes(t.type, t.shape);
    if (bytes.length !== expected) {
      throw new ExportError(`GGUF tensor "${t.name}": ${bytes.length} bytes produced, ${expected} expected`);
    }
    await write(bytes);
    const padding = pad(bytes.length) - bytes.length;
    if (padding > 0) await write(new Uint8Array(padding));
  }
  return position;
}

export interface GgufReadTensor extends GgufTensorInfo {
  /** Absolute byte offset of the tensor's data in the file. */
  offset: number;
  bytes: number;
}

/** A parsed GGUF file: metadata in file order and the tensor table; data is read on demand. */
export interface GgufFile {
  path: string;
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufReadTensor[];
  readRaw(name: string): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** Reads a GGUF file's header (v3, little-endian); malformed files are an error naming the file and byte. */
export async function readGguf(path: string): Promise<GgufFile> {
  const handle = await fs.open(path, 'r').catch((error: NodeJS.ErrnoException) => {
    throw new ExportError(`${path}: cannot open (${error.code ?? error.message})`);
  });
  try {
    const size = (await handle.stat()).size;
    let chunk = new Uint8Array(0);
    let chunkStart = 0;
    let pos = 0;
    const need = async (n: number) => {
      if (pos + n > size) throw new ExportError(`${path}: truncated GGUF header at byte ${pos}`);
      if (pos >= chunkStart && pos + n <= chunkStart + chunk.length) return;
      const length = Math.min(size - pos, Math.max(n, 1 << 20));
      chunk = new Uint8Array(length);
      await handle.read(chunk, 0, length, pos);
      chunkStart = pos;
    };
    const view = () => new DataView(chunk.buffer, chunk.byteOffset, chunk.length);
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const u32r = async () => {
      await need(4);
      const v = view().getUint32(pos - chunkStart, true);
      pos += 4;
      return v;
    };
    const u64r = async () => {
      await need(8);
      const v = view().getBigUint64(pos - chunkStart, true);
      pos += 8;
      if (v > BigInt(Number.MAX_SAFE_INTEGER))
        throw new ExportError(`${path}: 64-bit value too large at byte ${pos - 8}`);
      return Number(v);
    };
    const strr = async () => {
      const n = await u64r();
      await need(n);
      let s: string;
      try {
        s = decoder.decode(chunk.subarray(pos - chunkStart, pos - chunkStart + n));
      } catch {
        throw new ExportError(`${path}: invalid UTF-8 string at byte ${pos}`);
      }
      pos += n;
      return s;
    };
    const scalar = async (type: number): Promise<number | string | boolean> => {
      const widths: Record<number, number> = {
        0: 1,
        1: 1,
        2: 2,
        3: 2,
        4: 4,
        5: 4,
        6: 4,
        7: 1,
        10: 8,
        11: 8,
        12: 8,
      };
      if (type === ValueType.STRING) return strr();
      const w = widths[type];
      if (w === undefined)
        throw new ExportError(`${path}: unknown metadata value type ${type} at byte ${pos}`);
      await need(w);
      const d = view();
      const at = pos - chunkStart;
      pos += w;
      switch (type) {
        case ValueType.UINT8:
          return d.getUint8(at);
        case ValueType.INT8:
          return d.getInt8(at);
        case ValueType.UINT16:
          return d.getUint16(at, true);
        case ValueType.INT16:
          return d.getInt16(at, true);
        case ValueType.UINT32:
          return d.getUint32(at, true);
        case ValueType.INT32:
          return d.getInt32(at, true);
        case ValueType.FLOAT32:
          return d.getFloat32(at, true);
        case ValueType.BOOL:
          return d.getUint8(at) !== 0;
        case ValueType.UINT64:
          return Number(d.getBigUint64(at, true));
        case ValueType.INT64:
          return Number(d.getBigInt64(at, true));
        default:
          return d.getFloat64(at, true);
      }
    };
    if ((await u32r()) !== GGUF_MAGIC) throw new ExportError(`${path}: not a GGUF file (bad magic)`);
    const version = await u32r();
    if (version !== GGUF_VERSION)
      throw new ExportError(`${path}: GGUF version ${version}, this reader reads 3`);
    const nTensors = await u64r();
    const nKv = await u64r();
    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < nKv; i++) {
      const key = await strr();
      const type = (await u32r()) as ValueType;
      if (type === ValueType.ARRAY) {
        const itemType = (await u32r()) as ValueType;
        const n = await u64r();
        const value: (number | string | boolean)[] = [];
        for (let j = 0; j < n; j++) value.push(await scalar(itemType));
        metadata.set(key, { type, itemType, value });
      } else {
        metadata.set(key, { type, value: await scalar(type) } as GgufValue);
      }
    }
    const alignmentValue = metadata.get('general.alignment');
    const alignment =
      alignmentValue && typeof alignmentValue.value === 'number' ? alignmentValue.value : GGUF_ALIGNMENT;
    const infos: { name: string; shape: number[]; type: GgmlTypeName; rel: number }[] = [];
    for (let i = 0; i < nTensors; i++) {
      const name = await strr();
      const nDims = await u32r();
      const ne: number[] = [];
      for (let j = 0; j < nDims; j++) ne.push(await u64r());
      const typeId = await u32r();
      const rel = await u64r();
      const type = ggmlTypeName(typeId);
      if (!type)
        throw new ExportError(
          `${path}: tensor "${name}" has ggml type ${typeId}, which this reader does not decode`,
        );
      infos.push({ name, shape: ne.reverse(), type, rel });
    }
    const dataStart = pad(pos, alignment);
    const tensors: GgufReadTensor[] = infos.map((t) => {
      const bytes = tensorBytes(t.type, t.shape);
      const offset = dataStart + t.rel;
      if (offset + bytes > size) {
        throw new ExportError(`${path}: tensor "${t.name}" runs past the end of the file`);
      }
      return { name: t.name, shape: t.shape, type: t.type, offset, bytes };
    });
    const byName = new Map(tensors.map((t) => [t.name, t]));
    return {
      path,
      version,
      metadata,
      tensors,
      async readRaw(name) {
        const t = byName.get(name);
        if (!t) throw new ExportError(`${path}: no tensor "${name}"`);
        const out = new Uint8Array(t.bytes);
        await handle.read(out, 0, t.bytes, t.offset);
        return out;
      },
      close: () => handle.close(),
    };
  } catch (error) {
    await handle.close();
    throw error;
  }
}
