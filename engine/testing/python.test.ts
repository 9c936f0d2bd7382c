import { describe, expect, it } from 'vitest';
import { findPython } from './python.ts';

describe('findPython', () => {
  it('finds an interpreter for the standard library', () => {
    expect(findPython(['json']).python).toBeTruthy();
  });

  it('names the missing module when no interpreter has it', () => {
    const lookup = findPython(['studio_no_such_module']);
    expect(lookup.python).toBeNull();
    expect(lookup.reason).toContain('studio_no_such_module');
  });
});
