import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { widenInto } from './dtypes.ts';
import {
  bf16ToF32,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  openCheckpoint,
  openSafetensors,
  SafetensorsError,
  writeSafetensors,
  writeSafetensorsStreaming,
  writeShardedSafetensors,
} from './index.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures');

interface Expected {
  metadata: Record<string, string>;
  tensors: Record<string, { dtype: string; shape: number[]; values: number[] }>;
  conversions: {
    f32_bits: number[];
    f16_bits: number[];
    bf16_bits: number[];
    half_bits: number[];
    half_as_f32_bits: number[];
  };
}

let expected: Expected;
let tmp: string;

beforeAll(async () => {
  expected = JSON.parse(await fs.readFile(join(FIXTURES, 'reference.expected.json'), 'utf8'));
  tmp = await fs.mkdtemp(join(tmpdir(), 'st-test-'));
});

afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('reading a file hand-encoded by numpy (fixtures/make_reference.py)', () => {
  it('reads metadata, keys, dtypes, shapes and values of every dtype as float32', async () => {
    const file = await openSafetensors(join(FIXTURES, 'reference.safetensors'));
    try {
      expect(file.metadata).toEqual(expected.metadata);
      expect(file.keys()).toEqual(Object.keys(expected.tensors).sort());
      for (const [name, want] of Object.entries(expected.tensors)) {
        const info = file.info(name);
        expect(info.dtype, name).toBe(want.dtype);
        expect(info.shape, name).toEqual(want.shape);
        const values = await file.readFloat32(name);
        expect(Array.from(values), name).toEqual(want.values);
      }
    } finally {
      await file.close();
    }
  });

  it('re-encodes the same tensors byte for byte with writeSafetensors', async () => {
    const src = join(FIXTURES, 'reference.safetensors');
    const file = await openSafetensors(src);
    const tensors: Parameters<typeof writeSafetensors>[1] = {};
    for (const key of file.keys()) {
      const { dtype, shape } = file.info(key);
      tensors[key] = { dtype, shape, data: await file.readRaw(key) };
    }
    const metadata = file.metadata;
    await file.close();
    const out = join(tmp, 'rewritten.safetensors');
    await writeSafetensors(out, tensors, metadata);
    expect(Buffer.compare(await fs.readFile(out), await fs.readFile(src))).toBe(0);
  });

  it('reads a sharded checkpoint through its index', async () => {
    const ckpt = await openCheckpoint(join(FIXTURES, 'sharded'));
    try {
      expect(ckpt.sharded).toBe(true);
      expect(ckpt.keys()).toEqual(['layer.0.bias', 'layer.0.weight', 'layer.1.weight']);
      expect(ckpt.fileOf('layer.1.weight')).toMatch(/model-00002-of-00002\.safetensors$/);
      expect(ckpt.info('layer.1.weight')).toEqual({ dtype: 'F16', shape: [2, 3], byteLength: 12 });
      expect(Array.from(await ckpt.readFloat32('layer.0.weight'))).toEqual([...Array(12).keys()]);
      expect(Array.from(await ckpt.readFloat32('layer.1.weight'))).toEqual([0, 1, 2, 3, 4, 5]);
      expect(Array.from(await ckpt.readFloat32('layer.0.bias'))).toEqual([1, 2, 3]);
      expect(ckpt.indexMetadata).toEqual({ total_size: 84 });
    } finally {
      await ckpt.close();
    }
  });
});

describe('float conversions against numpy', () => {
  it('f32 → f16 rounds to nearest even like numpy astype(float16), with subnormals, Inf and NaN', () => {
    const { f32_bits, f16_bits } = expected.conversions;
    const input = new Float32Array(new Uint32Array(f32_bits).buffer);
    expect(Array.from(f32ToF16(input))).toEqual(f16_bits);
  });

  it('f32 → bf16 rounds to nearest even (reference picks the nearer neighbour in float64)', () => {
    const { f32_bits, bf16_bits } = expected.conversions;
    const input = new Float32Array(new Uint32Array(f32_bits).buffer);
    expect(Array.from(f32ToBf16(input))).toEqual(bf16_bits);
  });

  it('f16 → f32 is exact for normals, subnormals and specials', () => {
    const { half_bits, half_as_f32_bits } = expected.conversions;
    const out = f16ToF32(new Uint16Array(half_bits));
    const bits = Array.from(new Uint32Array(out.buffer));
    half_as_f32_bits.forEach((want, i) => {
      if ((want & 0x7fffffff) > 0x7f800000) expect(Number.isNaN(out[i])).toBe(true);
      else expect(bits[i], `half 0x${half_bits[i].toString(16)}`).toBe(want);
    });
  });

  it('bf16 widening at any offset and length (aligned pairs and single values) shifts each value up 16 bits', () => {
    const held = new Uint16Array(Array.from({ length: 23 }, (_, i) => (i * 40503 + 7) & 0xffff));
    for (const [viewStart, from, count, o] of [
      [0, 0, 23, 0],
      [1, 0, 22, 0],
      [0, 3, 17, 2],
      [1, 2, 9, 1],
      [2, 5, 0, 0],
      [1, 0, 1, 3],
    ]) {
      const values = held.subarray(viewStart);
      const out = new Float32Array(count + o + 1).fill(7);
      widenInto('BF16', values, from, count, out, o);
      const bits = new Uint32Array(out.buffer);
      const want = Array.from(values.subarray(from, from + count), (v) => (v << 16) >>> 0);
      expect(Array.from(bits.subarray(o, o + count))).toEqual(want);
      expect(out[o + count]).toBe(7);
      if (o > 0) expect(out[o - 1]).toBe(7);
    }
  });

  it('bf16 round trip keeps NaN and ±Inf and is the identity on bf16 values', () => {
    const values = new Float32Array([
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      1.5,
      -2.25,
    ]);
    const back = bf16ToF32(f32ToBf16(values));
    expect(Number.isNaN(back[0])).toBe(true);
    expect(Array.from(back.slice(1))).toEqual([
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      1.5,
      -2.25,
    ]);
  });
});

describe('writers', () => {
  it('pads the header with spaces to a multiple of 8 and sorts keys', async () => {
    const path = join(tmp, 'small.safetensors');
    await writeSafetensors(path, {
      zeta: { dtype: 'F32', shape: [1], data: new Float32Array([1]) },
      alpha: { dtype: 'BF16', shape: [2], data: f32ToBf16(new Float32Array([1, 2])) },
    });
    const bytes = await fs.readFile(path);
    const n = Number(bytes.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const text = bytes.subarray(8, 8 + n).toString('utf8');
    expect(text.trimEnd()).toBe(
      '{"alpha":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]},"zeta":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
    );
    expect(/^ *$/.test(text.slice(text.trimEnd().length))).toBe(true);
    const file = await openSafetensors(path);
    expect(Array.from(await file.readFloat32('alpha'))).toEqual([1, 2]);
    await file.close();
  });

  it('streams tensors on demand, in file order, one at a time', async () => {
    const path = join(tmp, 'stream.safetensors');
    const requested: string[] = [];
    await writeSafetensorsStreaming(
      path,
      [
        { name: 'b', dtype: 'F32', shape: [2] },
        { name: 'a', dtype: 'F16', shape: [3] },
      ],
      (e) => {
        requested.push(e.name);
        return e.name === 'a' ? f32ToF16(new Float32Array([1, 2, 3])) : new Float32Array([4, 5]);
      },
      { format: 'pt' },
    );
    expect(requested).toEqual(['a', 'b']);
    const file = await openSafetensors(path);
    expect(file.metadata).toEqual({ format: 'pt' });
    expect(Array.from(await file.readFloat32('a'))).toEqual([1, 2, 3]);
    expect(Array.from(await file.readFloat32('b'))).toEqual([4, 5]);
    await file.close();
  });

  it('refuses a produced tensor whose size disagrees with its shape, leaving no file behind', async () => {
    const path = join(tmp, 'bad-stream.safetensors');
    await expect(
      writeSafetensorsStreaming(path, [{ name: 'w', dtype: 'F32', shape: [3] }], () => new Float32Array(2)),
    ).rejects.toThrow(/tensor "w": got 8 bytes, shape \[3\] × F32 needs 12/);
    expect((await fs.readdir(tmp)).filter((f) => f.includes('bad-stream'))).toEqual([]);
  });

  it('writes shards and an index that openCheckpoint reads back', async () => {
    const dir = join(tmp, 'shards');
    const entries = ['w0', 'w1', 'w2'].map((name) => ({ name, dtype: 'F32' as const, shape: [4] }));
    const result = await writeShardedSafetensors(
      dir,
      entries,
      (e) => new Float32Array(4).fill(Number(e.name.slice(1))),
      { maxShardBytes: 32, metadata: { format: 'pt' } },
    );
    expect(result.sharded).toBe(true);
    expect((await fs.readdir(dir)).sort()).toEqual([
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.safetensors.index.json',
    ]);
    const index = JSON.parse(await fs.readFile(join(dir, 'model.safetensors.index.json'), 'utf8'));
    expect(index).toEqual({
      metadata: { total_size: 48 },
      weight_map: {
        w0: 'model-00001-of-00002.safetensors',
        w1: 'model-00001-of-00002.safetensors',
        w2: 'model-00002-of-00002.safetensors',
      },
    });
    const ckpt = await openCheckpoint(dir);
    expect(Array.from(await ckpt.readFloat32('w2'))).toEqual([2, 2, 2, 2]);
    await ckpt.close();
  });
});

/** Builds raw file bytes: 8-byte length (overridable) + header text + data. */
function build(header: string | Uint8Array, data: Uint8Array | number = 0, lengthOverride?: bigint): Buffer {
  const h = typeof header === 'string' ? Buffer.from(header, 'utf8') : Buffer.from(header);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthOverride ?? BigInt(h.length));
  const d = typeof data === 'number' ? Buffer.alloc(data) : Buffer.from(data);
  return Buffer.concat([len, h, d]);
}

const t = (dtype: string, shape: unknown, offsets: unknown) => ({ dtype, shape, data_offsets: offsets });
const j = (v: unknown) => JSON.stringify(v);

/** The malformed corpus: each file and the specific problem its error must name. */
const malformed: [string, Buffer, RegExp][] = [
  ['empty file', Buffer.alloc(0), /file is 0 bytes, too short for the 8-byte header length/],
  ['5-byte file', Buffer.alloc(5), /file is 5 bytes, too short/],
  [
    'absurd header length',
    build('{}', 0, 1n << 62n),
    /header length 4611686018427387904 exceeds the 100000000-byte limit/,
  ],
  [
    'header past end of file',
    build('{}', 0, 500n),
    /header length 500 goes past the end of the file \(10 bytes; truncated\?\)/,
  ],
  ['header length zero', build('', 0), /header length 0 is too short/],
  ['invalid UTF-8', build(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), /header is not valid UTF-8/],
  ['invalid JSON', build('{"a": {'), /header is not valid JSON/],
  ['header is an array', build('[1,2,3] '), /header is not a JSON object/],
  ['header is a string', build('"text"'), /header is not a JSON object/],
  [
    'duplicate tensor key',
    build(`{"a":${j(t('F32', [1], [0, 4]))},"a":${j(t('F32', [1], [4, 8]))}}`, 8),
    /header has duplicate key "a"/,
  ],
  [
    'duplicate metadata key',
    build('{"__metadata__":{"format":"pt","format":"np"}}'),
    /header has duplicate key "format"/,
  ],
  [
    'escaped duplicate key',
    build(`{"a":${j(t('F32', [1], [0, 4]))},"\\u0061":${j(t('F32', [1], [4, 8]))}}`, 8),
    /duplicate key "a"/,
  ],
  [
    'deep nesting',
    build(`{"__metadata__":${'['.repeat(5000)}${']'.repeat(5000)}}`),
    /nested deeper than 16 levels/,
  ],
  ['metadata not an object', build('{"__metadata__":"pt"}'), /__metadata__ is not an object/],
  [
    'non-string metadata value',
    build('{"__metadata__":{"step":3}}'),
    /__metadata__ value for "step" is not a string/,
  ],
  ['entry not an object', build('{"w":[1,2]}'), /tensor "w": entry is not an object/],
  [
    'unknown entry field',
    build(j({ w: { ...t('F32', [1], [0, 4]), extra: 1 } }), 4),
    /tensor "w": unknown field "extra"/,
  ],
  ['missing dtype', build(j({ w: { shape: [1], data_offsets: [0, 4] } }), 4), /tensor "w": missing dtype/],
  ['unknown dtype', build(j({ w: t('F8_E9', [1], [0, 1]) }), 1), /tensor "w": unknown dtype "F8_E9"/],
  [
    'negative dimension',
    build(j({ w: t('F32', [-1, 2], [0, 0]) })),
    /tensor "w": shape \[-1,2\] has a dimension that is not a non-negative integer/,
  ],
  [
    'fractional dimension',
    build(j({ w: t('F32', [1.5], [0, 6]) }), 6),
    /shape \[1.5\] has a dimension that is not a non-negative integer/,
  ],
  ['shape not an array', build(j({ w: t('F32', 3, [0, 12]) }), 12), /tensor "w": shape is not an array/],
  [
    'overflowing shape',
    build(j({ w: t('F32', [2 ** 30, 2 ** 30, 2 ** 30], [0, 4]) }), 4),
    /tensor "w": shape .* is too large/,
  ],
  [
    'bad data_offsets',
    build(j({ w: t('F32', [1], [0]) }), 4),
    /tensor "w": data_offsets must be two non-negative integers/,
  ],
  [
    'end before begin',
    build(j({ w: t('F32', [0], [4, 0]) }), 4),
    /tensor "w": data_offsets \[4, 0\] end before begin/,
  ],
  [
    'size disagrees with shape',
    build(j({ w: t('F32', [3], [0, 8]) }), 8),
    /tensor "w": data_offsets \[0, 8\] span 8 bytes but shape \[3\] × F32 needs 12/,
  ],
  [
    'offsets past the data (truncated)',
    build(j({ w: t('F32', [4], [0, 16]) }), 10),
    /tensor "w": data_offsets \[0, 16\] go past the end of the data section \(10 bytes; file truncated\?\)/,
  ],
  [
    'overlapping tensors',
    build(j({ a: t('F32', [2], [0, 8]), b: t('F32', [2], [4, 12]) }), 12),
    /tensor "b" overlaps tensor "a" \(begins at 4\)/,
  ],
  [
    'gap between tensors',
    build(j({ a: t('F32', [1], [0, 4]), b: t('F32', [1], [8, 12]) }), 12),
    /gap in the data section: bytes 4..8 belong to no tensor/,
  ],
  ['gap at the start', build(j({ a: t('F32', [1], [4, 8]) }), 8), /gap in the data section: bytes 0..4/],
  [
    'trailing bytes',
    build(j({ a: t('F32', [1], [0, 4]) }), 12),
    /tensors cover 4 bytes but the data section has 12/,
  ],
];

describe('streaming reads into caller-owned storage', () => {
  it('matches readFloat32 across chunk boundaries for F32, F16 and BF16, taking a fresh view per chunk', async () => {
    // sizes just past the 8 MiB read chunk, so every tensor spans two chunks
    const n32 = (1 << 21) + 3;
    const n16 = (1 << 22) + 5;
    const f32 = Float32Array.from({ length: n32 }, (_, i) => Math.sin(i) * 1000);
    const half = Float32Array.from({ length: n16 }, (_, i) => Math.cos(i) * 8);
    const path = join(tmp, 'stream-into.safetensors');
    await writeSafetensors(path, {
      a: { dtype: 'F32', shape: [n32], data: f32 },
      b: { dtype: 'F16', shape: [n16], data: f32ToF16(half) },
      c: { dtype: 'BF16', shape: [n16], data: f32ToBf16(half) },
    });
    const file = await openSafetensors(path);
    for (const key of ['a', 'b', 'c']) {
      const whole = await file.readFloat32(key);
      const dest = new Float32Array(whole.length).fill(Number.NaN);
      let views = 0;
      await file.readFloat32Into(key, () => {
        views += 1;
        return dest;
      });
      expect(views).toBeGreaterThan(2);
      // a plain loop: deep equality over millions of elements is slow in the matcher
      let mismatches = 0;
      for (let i = 0; i < whole.length; i++) if (dest[i] !== whole[i]) mismatches += 1;
      expect(mismatches).toBe(0);
    }
    await expect(file.readFloat32Into('a', () => new Float32Array(3))).rejects.toThrow(
      /stream-into\.safetensors.*"a" has 2097155 elements, the destination 3/,
    );
    await file.close();
  });
});

describe('malformed files give a SafetensorsError naming the file and the problem', () => {
  for (const [name, bytes, message] of malformed) {
    it(name, async () => {
      const path = join(tmp, `${name.replace(/\W+/g, '-')}.safetensors`);
      await fs.writeFile(path, bytes);
      const error = await openSafetensors(path).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(SafetensorsError);
      expect((error as Error).message.startsWith(`${path}: `)).toBe(true);
      expect((error as Error).message).toMatch(message);
    });
  }

  it('a truncated real file', async () => {
    const bytes = await fs.readFile(join(FIXTURES, 'reference.safetensors'));
    const path = join(tmp, 'truncated.safetensors');
    await fs.writeFile(path, bytes.subarray(0, bytes.length - 3));
    await expect(openSafetensors(path)).rejects.toThrow(/go past the end of the data section .*truncated/);
  });

  it('a missing file', async () => {
    await expect(openSafetensors(join(tmp, 'nope.safetensors'))).rejects.toThrow(
      /nope\.safetensors: file not found/,
    );
  });

  it('an unknown tensor name', async () => {
    const file = await openSafetensors(join(FIXTURES, 'reference.safetensors'));
    expect(() => file.info('missing')).toThrow(/no tensor named "missing"/);
    await expect(file.readRaw('missing')).rejects.toThrow(/no tensor named "missing"/);
    await file.close();
  });
});

describe('malformed sharded checkpoints', () => {
  async function shardDir(
    name: string,
    index: string | null,
    shards: Record<string, Buffer>,
  ): Promise<string> {
    const dir = join(tmp, `index-${name}`);
    await fs.mkdir(dir, { recursive: true });
    if (index !== null) await fs.writeFile(join(dir, 'model.safetensors.index.json'), index);
    for (const [file, bytes] of Object.entries(shards)) await fs.writeFile(join(dir, file), bytes);
    return dir;
  }
  const shardA = build(j({ a: t('F32', [1], [0, 4]) }), 4);

  const cases: [string, string | null, Record<string, Buffer>, RegExp][] = [
    ['no weights', null, {}, /no model\.safetensors or model\.safetensors\.index\.json in this folder/],
    ['invalid json', '{"weight_map": ', {}, /index is not valid JSON/],
    ['no weight_map', '{"metadata": {}}', {}, /index has no "weight_map" object/],
    [
      'duplicate key',
      '{"weight_map": {"a": "s1.safetensors", "a": "s2.safetensors"}}',
      {},
      /index has duplicate key "a"/,
    ],
    [
      'missing shard',
      j({ weight_map: { a: 's1.safetensors' } }),
      {},
      /shard "s1\.safetensors" listed in weight_map is missing/,
    ],
    [
      'path escape',
      j({ weight_map: { a: '../s1.safetensors' } }),
      {},
      /weight_map entry "a" is not a shard file name/,
    ],
    [
      'key missing in shard',
      j({ weight_map: { a: 's1.safetensors', b: 's1.safetensors' } }),
      { 's1.safetensors': shardA },
      /weight_map puts "b" in "s1\.safetensors", which has no such tensor/,
    ],
    [
      'shard lacks a listed key',
      j({ weight_map: { z: 's1.safetensors' } }),
      { 's1.safetensors': shardA },
      /weight_map puts "z"/,
    ],
  ];
  for (const [name, index, shards, message] of cases) {
    it(name, async () => {
      const dir = await shardDir(name.replace(/\W+/g, '-'), index, shards);
      const error = await openCheckpoint(dir).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(SafetensorsError);
      expect((error as Error).message).toMatch(message);
    });
  }

  it('a shard holding a tensor the index does not list', async () => {
    const two = build(j({ a: t('F32', [1], [0, 4]), b: t('F32', [1], [4, 8]) }), 8);
    const dir = await shardDir('unlisted', j({ weight_map: { a: 's1.safetensors' } }), {
      's1.safetensors': two,
    });
    await expect(openCheckpoint(dir)).rejects.toThrow(
      /shard "s1\.safetensors" holds "b", which weight_map does not list there/,
    );
  });

  it('a malformed shard names the shard file', async () => {
    const dir = await shardDir('bad-shard', j({ weight_map: { a: 's1.safetensors' } }), {
      's1.safetensors': build('{"a":', 0),
    });
    await expect(openCheckpoint(dir)).rejects.toThrow(/s1\.safetensors: header is not valid JSON/);
  });
});
