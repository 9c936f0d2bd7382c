import { describe, expect, it } from 'vitest';
import { retainFreedMemory } from './malloc.ts';

describe('retainFreedMemory', () => {
  it('says what it did, once per process', () => {
    const first = retainFreedMemory();
    if (process.platform === 'linux')
      expect(first).toMatch(/^glibc keeps freed blocks|^allocator left as is/);
    else expect(first).toMatch(/^allocator left as is/);
    expect(retainFreedMemory()).toBe(first);
  });
});
