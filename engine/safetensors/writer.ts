import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomicWith, writeJsonAtomic } from '../io/atomic.ts';
import { DTYPE_SIZE, type Dtype, isDtype } from './dtypes.ts';
import { SafetensorsError } from './header.ts';
import { INDEX_FILE, SINGLE_FILE } from './reader.ts';

export interface TensorData {
  dtype: Dtype;
  shape: number[];
  data: ArrayBufferView;
}

/** A tensor's description for the streaming writer; its bytes are produced later, on demand. */
export interface TensorEntry {
  name: string;
  dtype: Dtype;
  shape: number[];
}

export function tensorByteLength(dtype: Dtype, shape: number[], file: string, name: string): number {
  if (!isDtype(dtype))
    throw new SafetensorsError(file, `tensor "${name}": unknown dtype ${JSON.stringify(dtype)}`);
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new SafetensorsError(
        file,
        `tensor "${name}": invalid dimension ${d} in shape ${JSON.stringify(shape)}`,
      );
    }
    n *= d;
  }
  return n * DTYPE_SIZE[dtype];
}

/**
 * Builds the header bytes: `__metadata__` first, tensors in sorted name order, compact JSON, padded with
 * spaces to a multiple of 8 so the data section is 8-byte aligned. Returns the header and the byte
 * offsets (in the same sorted order).
 */
export function encodeHeader(
  entries: TensorEntry[],
  metadata: Record<string, string> | undefined,
  file: string,
): { header: Uint8Array; order: TensorEntry[]; dataLength: number } {
  const order = [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const json: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    const meta: Record<string, string> = {};
    for (const key of Object.keys(metadata).sort()) {
      if (typeof metadata[key] !== 'string') {
        throw new SafetensorsError(file, `metadata value for "${key}" is not a string`);
      }
      meta[key] = metadata[key];
    }
    json.__metadata__ = meta;
  }
  let offset = 0;
  let previous: string | null = null;
  for (const e of order) {
    if (e.name === previous) throw new SafetensorsError(file, `duplicate tensor name "${e.name}"`);
    if (e.name === '__metadata__')
      throw new SafetensorsError(file, 'a tensor cannot be named "__metadata__"');
    previous = e.name;
    const bytes = tensorByteLength(e.dtype, e.shape, file, e.name);
    json[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const text = JSON.stringify(json);
  const raw = new TextEncoder().encode(text);
  const padded = Math.ceil(raw.length / 8) * 8;
  const header = new Uint8Array(8 + padded);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(raw, 8);
  header.fill(0x20, 8 + raw.length);
  return { header, order, dataLength: offset };
}

function asBytes(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** Node's file writes take at most 2 GiB per call; big tensors go out in chunks. */
const IO_CHUNK = 1 << 30;

async function writeAll(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, done, Math.min(IO_CHUNK, bytes.byteLength - done));
    done += bytesWritten;
  }
}

/**
 * Streams a safetensors file: the header is written first from shapes and dtypes alone, then each
 * tensor's bytes are requested from `produce` in file order and written before the next is requested, so
 * only one tensor is in memory at a time. Written through a temp file and renamed into place.
 */
export async function writeSafetensorsStreaming(
  path: string,
  entries: TensorEntry[],
  produce: (entry: TensorEntry) => Promise<ArrayBufferView> | ArrayBufferView,
  metadata?: Record<string, string>,
): Promise<{ bytes: number }> {
  const { header, order, dataLength } = encodeHeader(entries, metadata, path);
  await writeFileAtomicWith(path, header.byteLength + dataLength, async (handle) => {
    await writeAll(handle, header);
    for (const entry of order) {
      const data = asBytes(await produce(entry));
      const expected = tensorByteLength(entry.dtype, entry.shape, path, entry.name);
      if (data.byteLength !== expected) {
        throw new SafetensorsError(
          path,
          `tensor "${entry.name}": got ${data.byteLength} bytes, shape ${JSON.stringify(entry.shape)} × ${entry.dtype} needs ${expected}`,
        );
      }
      await writeAll(handle, data);
    }
  });
  return { bytes: header.byteLength + dataLength };
}

/** Writes a whole safetensors file from in-memory tensors (sorted keys, padded header, atomic). */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, TensorData>,
  metadata?: Record<string, string>,
): Promise<{ bytes: number }> {
  const entries = Object.entries(tensors).map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape }));
  return writeSafetensorsStreaming(path, entries, (e) => tensors[e.name].data, metadata);
}

export interface ShardOptions {
  /** Largest shard in bytes of tensor data (the Hugging Face default is 5 GB). */
  maxShardBytes?: number;
  /** Write an index even when everything fits in one file. */
  forceIndex?: boolean;
  metadata?: Record<string, string>;
  /** File name stem: `model` gives `model.safetensors` or `model-00001-of-00003.safetensors`. */
  stem?: string;
}

export interface ShardedWriteResult {
  files: string[];
  bytes: number;
  sharded: boolean;
}

const DEFAULT_SHARD_BYTES = 5_000_000_000;

/**
 * Writes tensors into `dir` as one `<stem>.safetensors`, or, when their total exceeds `maxShardBytes`
 * (or `forceIndex`), as `<stem>-0000i-of-0000n.safetensors` shards plus `<stem>.safetensors.index.json`
 * in the Hugging Face layout. Tensors are split greedily in the given order and streamed one at a time.
 */
export async function writeShardedSafetensors(
  dir: string,
  entries: TensorEntry[],
  produce: (entry: TensorEntry) => Promise<ArrayBufferView> | ArrayBufferView,
  options: ShardOptions = {},
): Promise<ShardedWriteResult> {
  const stem = options.stem ?? 'model';
  const maxShard = options.maxShardBytes ?? DEFAULT_SHARD_BYTES;
  const singleName = stem === 'model' ? SINGLE_FILE : `${stem}.safetensors`;
  const indexName = stem === 'model' ? INDEX_FILE : `${stem}.safetensors.index.json`;
  const sizes = entries.map((e) => tensorByteLength(e.dtype, e.shape, join(dir, singleName), e.name));
  const total = sizes.reduce((a, b) => a + b, 0);
  if (total <= maxShard && !options.forceIndex) {
    const path = join(dir, singleName);
    const { bytes } = await writeSafetensorsStreaming(path, entries, produce, options.metadata);
    return { files: [path], bytes, sharded: false };
  }
  const groups: TensorEntry[][] = [];
  let current: TensorEntry[] = [];
  let currentBytes = 0;
  entries.forEach((e, i) => {
    if (current.length > 0 && currentBytes + sizes[i] > maxShard) {
      groups.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(e);
    currentBytes += sizes[i];
  });
  if (current.length > 0 || groups.length === 0) groups.push(current);
  const n = groups.length;
  const pad = (k: number) => String(k).padStart(5, '0');
  const weightMap: Record<string, string> = {};
  const files: string[] = [];
  let bytes = 0;
  for (let g = 0; g < n; g++) {
    const name = `${stem}-${pad(g + 1)}-of-${pad(n)}.safetensors`;
    const path = join(dir, name);
    const written = await writeSafetensorsStreaming(path, groups[g], produce, options.metadata);
    for (const e of groups[g]) weightMap[e.name] = name;
    files.push(path);
    bytes += written.bytes;
  }
  const sortedMap: Record<string, string> = {};
  for (const key of Object.keys(weightMap).sort()) sortedMap[key] = weightMap[key];
  const indexPath = join(dir, indexName);
  await writeJsonAtomic(indexPath, { metadata: { total_size: total }, weight_map: sortedMap });
  files.push(indexPath);
  return { files, bytes, sharded: true };
}
