import { describe, expect, it } from 'vitest';
import { runCli as run } from '../testing.ts';

describe('studio backends', () => {
  it('prints the report as JSON with a forced matmul route', async () => {
    const { code, out } = await run(['backends', '--backend', 'wasm:js-relayout', '--json']);
    expect(code).toBe(0);
    const report = JSON.parse(out);
    expect(report).toMatchObject({ chosen: 'wasm', matmul: 'js-relayout', requestedBy: 'argument' });
    expect(report.candidates).toHaveLength(5);
  });

  it('prints a table naming the chosen backend', async () => {
    const { code, out } = await run(['backends', '--backend', 'cpu']);
    expect(code).toBe(0);
    expect(out).toMatch(/^chosen: cpu/);
    expect(out).toMatch(/\*\s+cpu\s+yes/);
  });

  it('rejects an unknown backend with the accepted names', async () => {
    const { code, err } = await run(['backends', '--backend', 'tpu']);
    expect(code).toBe(1);
    expect(err).toMatch(/unknown backend "tpu"/);
  });
});
