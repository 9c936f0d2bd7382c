import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { describeError } from './errors.ts';

// the engine is checked without DOM types, which are where TypeScript declares WebAssembly
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
};

/** A real wasm trap: a module whose one function loads past the end of its single 64 KiB memory page. */
function wasmOutOfBounds(): Error {
  // (module (memory 1) (func (export "f") (result i32) (i32.load (i32.const 65536))))
  const bytes = new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, 0x03, 0x02,
    0x01, 0x00, 0x05, 0x03, 0x01, 0x00, 0x01, 0x07, 0x05, 0x01, 0x01, 0x66, 0x00, 0x00, 0x0a, 0x0b, 0x01,
    0x09, 0x00, 0x41, 0x80, 0x80, 0x04, 0x28, 0x02, 0x00, 0x0b,
  ]);
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes));
  try {
    (instance.exports.f as () => number)();
  } catch (error) {
    return error as Error;
  }
  throw new Error('the load did not trap');
}

describe('engine errors', () => {
  it("turns wasm's out-of-bounds trap into out_of_memory with the cause and what to do", () => {
    const trap = wasmOutOfBounds();
    expect(trap.message).toMatch(/memory access out of bounds/);
    const described = describeError(trap);
    expect(described.code).toBe('out_of_memory');
    expect(described.message).toMatch(/^the run needs more memory than the engine could get/);
    expect(described.message).toContain('memory access out of bounds');
    expect(described.message).toMatch(/lower the batch size or the maximum sequence length/);
    let allocation: Error | null = null;
    try {
      new ArrayBuffer(2 ** 53);
    } catch (error) {
      allocation = error as Error;
    }
    expect(describeError(allocation).code).toBe('out_of_memory');
  });

  it('classifies file-system, zod and unknown errors', () => {
    const errno = (code: string) => Object.assign(new Error(`${code}: something, open '/x'`), { code });
    expect(describeError(errno('ENOENT')).code).toBe('not_found');
    expect(describeError(errno('EACCES')).code).toBe('invalid_input');
    expect(describeError(errno('EEXIST')).code).toBe('conflict');
    expect(describeError(errno('ENOSPC'))).toEqual({ code: 'io', message: "ENOSPC: something, open '/x'" });
    const zod = z.object({ r: z.number() }).safeParse({ r: 'x' });
    expect(describeError(zod.error).code).toBe('invalid_input');
    expect(describeError(new TypeError('x is undefined'))).toEqual({
      code: 'internal',
      message: 'x is undefined',
    });
    expect(describeError('thrown text')).toEqual({ code: 'internal', message: 'thrown text' });
  });
});
