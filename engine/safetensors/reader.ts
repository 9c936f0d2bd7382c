import { promises as fs } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DTYPE_SIZE, type Dtype, decodeToFloat32 } from './dtypes.ts';
import {
  MAX_HEADER_BYTES,
  type ParsedHeader,
  parseHeader,
  parseStrictJson,
  SafetensorsError,
} from './header.ts';

export interface TensorMeta {
  dtype: Dtype;
  shape: number[];
  byteLength: number;
}

/** Read access to tensors by name; shared by a single file and a sharded checkpoint. */
export interface TensorSource {
  readonly path: string;
  readonly metadata: Record<string, string>;
  keys(): string[];
  has(key: string): boolean;
  info(key: string): TensorMeta;
  readRaw(key: string): Promise<Uint8Array>;
  /** Any dtype converted to float32 (F16/BF16 widened exactly; F64 and 64-bit ints rounded). */
  readFloat32(key: string): Promise<Float32Array>;
  /**
   * Streams a tensor into float32 storage owned by the caller, a bounded chunk at a time, so a tensor never
   * sits in memory twice. `dest()` is called again for every chunk: the caller's memory may move between
   * chunks (a WebAssembly heap that grows detaches its old views).
   */
  readFloat32Into(key: string, dest: () => Float32Array): Promise<void>;
  close(): Promise<void>;
}

export interface SafetensorsFile extends TensorSource {
  /** Byte offset of the data section in the file (8 + header length). */
  readonly dataStart: number;
}

export interface CheckpointReader extends TensorSource {
  /** The safetensors file holding `key`. */
  fileOf(key: string): string;
  /** Every file of the checkpoint, in index order (one for an unsharded checkpoint). */
  readonly files: string[];
  /** True when the checkpoint is sharded through `model.safetensors.index.json`. */
  readonly sharded: boolean;
  /** The index's own `metadata` (e.g. `total_size`), empty for a single file. */
  readonly indexMetadata: Record<string, unknown>;
}

/** Fills `out` from the file at `position`; a file that ends first is an error naming the byte. */
async function readInto(
  handle: FileHandle,
  out: Uint8Array,
  position: number,
  file: string,
): Promise<Uint8Array> {
  let done = 0;
  while (done < out.byteLength) {
    // Node's file reads take at most 2 GiB per call; big tensors come in chunks.
    const { bytesRead } = await handle.read(
      out,
      done,
      Math.min(1 << 30, out.byteLength - done),
      position + done,
    );
    if (bytesRead === 0)
      throw new SafetensorsError(file, `unexpected end of file at byte ${position + done}`);
    done += bytesRead;
  }
  return out;
}

function readExactly(
  handle: FileHandle,
  length: number,
  position: number,
  file: string,
): Promise<Uint8Array> {
  return readInto(handle, new Uint8Array(length), position, file);
}

/** Chunk size of `readFloat32Into`: large enough for full-speed reads, small beside any real weight. */
const STREAM_CHUNK_BYTES = 8 << 20;

class SingleFile implements SafetensorsFile {
  private closed = false;
  /** Reused across `readFloat32Into` calls (a new one only while another read holds it): no garbage per tensor. */
  private spareChunk: Uint8Array | null = null;

  constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    private readonly header: ParsedHeader,
    readonly dataStart: number,
  ) {}

  get metadata(): Record<string, string> {
    return this.header.metadata;
  }

  keys(): string[] {
    return [...this.header.tensors.keys()].sort();
  }

  has(key: string): boolean {
    return this.header.tensors.has(key);
  }

  info(key: string): TensorMeta {
    const t = this.header.tensors.get(key);
    if (!t) throw new SafetensorsError(this.path, `no tensor named "${key}"`);
    return { dtype: t.dtype, shape: [...t.shape], byteLength: t.byteLength };
  }

  async readRaw(key: string): Promise<Uint8Array> {
    if (this.closed) throw new SafetensorsError(this.path, `read of "${key}" after close`);
    const t = this.header.tensors.get(key);
    if (!t) throw new SafetensorsError(this.path, `no tensor named "${key}"`);
    return readExactly(this.handle, t.byteLength, this.dataStart + t.dataOffsets[0], this.path);
  }

  async readFloat32(key: string): Promise<Float32Array> {
    const raw = await this.readRaw(key);
    return decodeToFloat32(this.header.tensors.get(key)!.dtype, raw);
  }

  async readFloat32Into(key: string, dest: () => Float32Array): Promise<void> {
    if (this.closed) throw new SafetensorsError(this.path, `read of "${key}" after close`);
    const t = this.header.tensors.get(key);
    if (!t) throw new SafetensorsError(this.path, `no tensor named "${key}"`);
    const size = DTYPE_SIZE[t.dtype];
    const count = t.byteLength / size;
    if (dest().length !== count) {
      throw new SafetensorsError(
        this.path,
        `"${key}" has ${count} elements, the destination ${dest().length}`,
      );
    }
    const perChunk = Math.max(1, Math.floor(STREAM_CHUNK_BYTES / size));
    const chunk = this.spareChunk ?? new Uint8Array(STREAM_CHUNK_BYTES);
    this.spareChunk = null;
    for (let at = 0; at < count; at += perChunk) {
      const n = Math.min(perChunk, count - at);
      const bytes = await readInto(
        this.handle,
        chunk.subarray(0, n * size),
        this.dataStart + t.dataOffsets[0] + at * size,
        this.path,
      );
      dest().set(decodeToFloat32(t.dtype, bytes), at);
    }
    this.spareChunk = chunk;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}

/** Opens one .safetensors file: reads and validates only the header; tensors are read on demand. */
export async function openSafetensors(path: string): Promise<SafetensorsFile> {
  let handle: FileHandle;
  try {
    handle = await fs.open(path, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new SafetensorsError(path, code === 'ENOENT' ? 'file not found' : `cannot open (${code ?? error})`);
  }
  try {
    const { size } = await handle.stat();
    if (size < 8)
      throw new SafetensorsError(path, `file is ${size} bytes, too short for the 8-byte header length`);
    const lengthBytes = await readExactly(handle, 8, 0, path);
    const headerLength = new DataView(lengthBytes.buffer).getBigUint64(0, true);
    if (headerLength > BigInt(MAX_HEADER_BYTES)) {
      throw new SafetensorsError(
        path,
        `header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit`,
      );
    }
    const n = Number(headerLength);
    if (n > size - 8) {
      throw new SafetensorsError(
        path,
        `header length ${n} goes past the end of the file (${size} bytes; truncated?)`,
      );
    }
    if (n < 2) throw new SafetensorsError(path, `header length ${n} is too short for a JSON object`);
    const headerBytes = await readExactly(handle, n, 8, path);
    const header = parseHeader(headerBytes, size - 8 - n, path);
    return new SingleFile(path, handle, header, 8 + n);
  } catch (error) {
    await handle.close();
    throw error;
  }
}

class ShardedCheckpoint implements CheckpointReader {
  readonly sharded = true;

  constructor(
    readonly path: string,
    private readonly shards: Map<string, SafetensorsFile>,
    private readonly weightMap: Map<string, string>,
    readonly indexMetadata: Record<string, unknown>,
  ) {}

  get files(): string[] {
    return [...this.shards.values()].map((s) => s.path);
  }

  get metadata(): Record<string, string> {
    return this.shards.values().next().value?.metadata ?? {};
  }

  private shardOf(key: string): SafetensorsFile {
    const shard = this.weightMap.get(key);
    if (shard === undefined) throw new SafetensorsError(this.path, `no tensor named "${key}"`);
    return this.shards.get(shard)!;
  }

  keys(): string[] {
    return [...this.weightMap.keys()].sort();
  }

  has(key: string): boolean {
    return this.weightMap.has(key);
  }

  fileOf(key: string): string {
    return this.shardOf(key).path;
  }

  info(key: string): TensorMeta {
    return this.shardOf(key).info(key);
  }

  readRaw(key: string): Promise<Uint8Array> {
    return this.shardOf(key).readRaw(key);
  }

  readFloat32(key: string): Promise<Float32Array> {
    return this.shardOf(key).readFloat32(key);
  }

  readFloat32Into(key: string, dest: () => Float32Array): Promise<void> {
    return this.shardOf(key).readFloat32Into(key, dest);
  }

  async close(): Promise<void> {
    await Promise.all([...this.shards.values()].map((s) => s.close()));
  }
}

class SingleCheckpoint implements CheckpointReader {
  readonly sharded = false;
  readonly indexMetadata: Record<string, unknown> = {};

  constructor(private readonly file: SafetensorsFile) {}

  get path(): string {
    return this.file.path;
  }
  get metadata(): Record<string, string> {
    return this.file.metadata;
  }
  get files(): string[] {
    return [this.file.path];
  }
  keys(): string[] {
    return this.file.keys();
  }
  has(key: string): boolean {
    return this.file.has(key);
  }
  fileOf(key: string): string {
    this.file.info(key);
    return this.file.path;
  }
  info(key: string): TensorMeta {
    return this.file.info(key);
  }
  readRaw(key: string): Promise<Uint8Array> {
    return this.file.readRaw(key);
  }
  readFloat32(key: string): Promise<Float32Array> {
    return this.file.readFloat32(key);
  }

  readFloat32Into(key: string, dest: () => Float32Array): Promise<void> {
    return this.file.readFloat32Into(key, dest);
  }
  close(): Promise<void> {
    return this.file.close();
  }
}

export const INDEX_FILE = 'model.safetensors.index.json';
export const SINGLE_FILE = 'model.safetensors';

const MAX_INDEX_BYTES = 100_000_000;

async function exists(path: string): Promise<boolean> {
  try {
    await fs.access(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Opens a model's weights: `<dir>/model.safetensors.index.json` (sharded) if present, else
 * `<dir>/model.safetensors`. A path to a `.safetensors` file or to an `.index.json` file is accepted too.
 */
export async function openCheckpoint(dirOrFile: string): Promise<CheckpointReader> {
  let indexPath: string | null = null;
  let filePath: string | null = null;
  if (dirOrFile.endsWith('.index.json')) indexPath = dirOrFile;
  else if (dirOrFile.endsWith('.safetensors')) filePath = dirOrFile;
  else if (await exists(join(dirOrFile, INDEX_FILE))) indexPath = join(dirOrFile, INDEX_FILE);
  else if (await exists(join(dirOrFile, SINGLE_FILE))) filePath = join(dirOrFile, SINGLE_FILE);
  else {
    throw new SafetensorsError(dirOrFile, `no ${SINGLE_FILE} or ${INDEX_FILE} in this folder`);
  }
  if (filePath) return new SingleCheckpoint(await openSafetensors(filePath));
  return openSharded(indexPath!);
}

async function openSharded(indexPath: string): Promise<CheckpointReader> {
  let stat: Awaited<ReturnType<typeof fs.stat>>;
  try {
    stat = await fs.stat(indexPath);
  } catch {
    throw new SafetensorsError(indexPath, 'index file not found');
  }
  if (stat.size > MAX_INDEX_BYTES)
    throw new SafetensorsError(indexPath, `index is ${stat.size} bytes, too large`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(await fs.readFile(indexPath));
  } catch {
    throw new SafetensorsError(indexPath, 'index is not valid UTF-8');
  }
  const json = parseStrictJson(text, indexPath, 'index');
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new SafetensorsError(indexPath, 'index is not a JSON object');
  }
  const { weight_map: weightMapJson, metadata } = json as Record<string, unknown>;
  if (typeof weightMapJson !== 'object' || weightMapJson === null || Array.isArray(weightMapJson)) {
    throw new SafetensorsError(indexPath, 'index has no "weight_map" object');
  }
  const weightMap = new Map<string, string>();
  for (const [key, shard] of Object.entries(weightMapJson)) {
    if (typeof shard !== 'string' || shard === '' || shard.includes('/') || shard.includes('\\')) {
      throw new SafetensorsError(
        indexPath,
        `weight_map entry "${key}" is not a shard file name in this folder`,
      );
    }
    weightMap.set(key, shard);
  }
  const dir = dirname(indexPath);
  const shards = new Map<string, SafetensorsFile>();
  try {
    for (const shard of new Set(weightMap.values())) {
      const shardPath = join(dir, shard);
      if (!(await exists(shardPath))) {
        throw new SafetensorsError(indexPath, `shard "${shard}" listed in weight_map is missing`);
      }
      shards.set(shard, await openSafetensors(shardPath));
    }
    for (const [key, shard] of weightMap) {
      if (!shards.get(shard)!.has(key)) {
        throw new SafetensorsError(
          indexPath,
          `weight_map puts "${key}" in "${shard}", which has no such tensor`,
        );
      }
    }
    for (const [shard, file] of shards) {
      for (const key of file.keys()) {
        if (weightMap.get(key) !== shard) {
          throw new SafetensorsError(
            indexPath,
            `shard "${shard}" holds "${key}", which weight_map does not list there`,
          );
        }
      }
    }
  } catch (error) {
    await Promise.all([...shards.values()].map((s) => s.close()));
    throw error;
  }
  const indexMetadata =
    typeof metadata === 'object' && metadata !== null && !Array.isArray(metadata)
      ? (metadata as Record<string, unknown>)
      : {};
  return new ShardedCheckpoint(indexPath, shards, weightMap, indexMetadata);
}
