import { StudioError } from '../common/errors.ts';
import { DTYPE_SIZE, type Dtype, isDtype } from './dtypes.ts';

/** A malformed or unreadable safetensors file (or index); the message names the file and the problem. */
export class SafetensorsError extends StudioError {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super('invalid_input', `${file}: ${problem}`);
    this.name = 'SafetensorsError';
  }
}

/** Same cap as the reference Rust implementation: a header is metadata, never hundreds of megabytes. */
export const MAX_HEADER_BYTES = 100_000_000;

/** Safetensors headers nest at most three levels; anything deeper is refused before JSON.parse. */
const MAX_JSON_DEPTH = 16;

export interface TensorInfo {
  dtype: Dtype;
  shape: number[];
  /** Byte range relative to the start of the data section. */
  dataOffsets: [number, number];
  byteLength: number;
}

export interface ParsedHeader {
  metadata: Record<string, string>;
  tensors: Map<string, TensorInfo>;
}

/**
 * Parses JSON after checking what JSON.parse hides: duplicate keys in any object (JSON.parse keeps the
 * last one silently) and excessive nesting. Strings are scanned with their escapes; the rest is left to
 * JSON.parse, which reports syntax errors.
 */
export function parseStrictJson(text: string, file: string, what: string): unknown {
  const stack: { keys: Set<string> | null; expectKey: boolean }[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (j >= text.length) break;
      const top = stack[stack.length - 1];
      if (top?.keys && top.expectKey) {
        let key: string;
        try {
          key = JSON.parse(text.slice(i, j + 1)) as string;
        } catch {
          break;
        }
        if (top.keys.has(key)) throw new SafetensorsError(file, `${what} has duplicate key "${key}"`);
        top.keys.add(key);
        top.expectKey = false;
      }
      i = j + 1;
      continue;
    }
    if (c === '{' || c === '[') {
      if (stack.length >= MAX_JSON_DEPTH) {
        throw new SafetensorsError(file, `${what} is nested deeper than ${MAX_JSON_DEPTH} levels`);
      }
      stack.push({ keys: c === '{' ? new Set() : null, expectKey: c === '{' });
    } else if (c === '}' || c === ']') {
      stack.pop();
    } else if (c === ',') {
      const top = stack[stack.length - 1];
      if (top?.keys) top.expectKey = true;
    }
    i++;
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new SafetensorsError(file, `${what} is not valid JSON (${(error as Error).message})`);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isIndex(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Decodes the header bytes (strict UTF-8) and validates every entry against the data section size. */
export function parseHeader(bytes: Uint8Array, dataLength: number, file: string): ParsedHeader {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new SafetensorsError(file, 'header is not valid UTF-8');
  }
  const json = parseStrictJson(text, file, 'header');
  if (!isPlainObject(json)) throw new SafetensorsError(file, 'header is not a JSON object');

  const metadata: Record<string, string> = {};
  const tensors = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isPlainObject(entry)) throw new SafetensorsError(file, '__metadata__ is not an object');
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') {
          throw new SafetensorsError(file, `__metadata__ value for "${k}" is not a string`);
        }
        metadata[k] = v;
      }
      continue;
    }
    tensors.set(name, parseTensorEntry(name, entry, file));
  }
  checkLayout(tensors, dataLength, file);
  return { metadata, tensors };
}

function parseTensorEntry(name: string, entry: unknown, file: string): TensorInfo {
  const where = `tensor "${name}"`;
  if (!isPlainObject(entry)) throw new SafetensorsError(file, `${where}: entry is not an object`);
  for (const field of Object.keys(entry)) {
    if (field !== 'dtype' && field !== 'shape' && field !== 'data_offsets') {
      throw new SafetensorsError(file, `${where}: unknown field "${field}"`);
    }
  }
  const { dtype, shape, data_offsets: offsets } = entry;
  if (dtype === undefined) throw new SafetensorsError(file, `${where}: missing dtype`);
  if (!isDtype(dtype)) throw new SafetensorsError(file, `${where}: unknown dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(shape)) throw new SafetensorsError(file, `${where}: shape is not an array`);
  let numel = 1;
  for (const dim of shape) {
    if (!isIndex(dim)) {
      throw new SafetensorsError(
        file,
        `${where}: shape ${JSON.stringify(shape)} has a dimension that is not a non-negative integer`,
      );
    }
    numel *= dim;
    if (!Number.isSafeInteger(numel)) {
      throw new SafetensorsError(file, `${where}: shape ${JSON.stringify(shape)} is too large`);
    }
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !isIndex(offsets[0]) || !isIndex(offsets[1])) {
    throw new SafetensorsError(file, `${where}: data_offsets must be two non-negative integers`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin)
    throw new SafetensorsError(file, `${where}: data_offsets [${begin}, ${end}] end before begin`);
  const byteLength = numel * DTYPE_SIZE[dtype];
  if (end - begin !== byteLength) {
    throw new SafetensorsError(
      file,
      `${where}: data_offsets [${begin}, ${end}] span ${end - begin} bytes but shape ${JSON.stringify(shape)} × ${dtype} needs ${byteLength}`,
    );
  }
  return { dtype, shape: shape as number[], dataOffsets: [begin, end], byteLength };
}

/** The tensors must tile the data section exactly: no overlap, no gap, nothing past or short of its end. */
function checkLayout(tensors: Map<string, TensorInfo>, dataLength: number, file: string): void {
  const sorted = [...tensors.entries()].sort(
    (a, b) => a[1].dataOffsets[0] - b[1].dataOffsets[0] || a[1].dataOffsets[1] - b[1].dataOffsets[1],
  );
  let expected = 0;
  let previous = '';
  for (const [name, info] of sorted) {
    const [begin, end] = info.dataOffsets;
    if (end > dataLength) {
      throw new SafetensorsError(
        file,
        `tensor "${name}": data_offsets [${begin}, ${end}] go past the end of the data section (${dataLength} bytes; file truncated?)`,
      );
    }
    if (begin < expected) {
      throw new SafetensorsError(file, `tensor "${name}" overlaps tensor "${previous}" (begins at ${begin})`);
    }
    if (begin > expected) {
      throw new SafetensorsError(
        file,
        `gap in the data section: bytes ${expected}..${begin} belong to no tensor`,
      );
    }
    expected = end;
    previous = name;
  }
  if (expected !== dataLength) {
    throw new SafetensorsError(
      file,
      `tensors cover ${expected} bytes but the data section has ${dataLength} (trailing bytes belong to no tensor)`,
    );
  }
}
