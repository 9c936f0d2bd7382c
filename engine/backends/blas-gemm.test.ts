import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { blasCandidates, loadBlasGemm } from './blas-gemm.ts';

const referenceBlas = '/usr/lib/x86_64-linux-gnu/blas/libblas.so.3';

describe('loadBlasGemm', () => {
  it('lists every library it tried and why, when none loads', () => {
    expect(() => loadBlasGemm({ libraries: ['libstudio-no-such-blas.so.9'] })).toThrow(
      /no usable BLAS: libstudio-no-such-blas\.so\.9: /,
    );
  });

  it.skipIf(!existsSync(referenceBlas))(
    'refuses the netlib reference BLAS as slower than the JS route',
    () => {
      expect(() => loadBlasGemm({ libraries: [referenceBlas] })).toThrow(/not an optimized BLAS/);
    },
  );

  it('tries Accelerate on macOS and OpenBLAS first on Linux', () => {
    expect(blasCandidates('darwin')[0]).toMatch(/Accelerate/);
    expect(blasCandidates('linux')[0]).toBe('libopenblas.so.0');
  });
});
