// @vitest-environment jsdom
import { cleanup, fireEvent, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { Input, RunInfo, RunResize, StudioApi } from '../../../engine/common/contract.ts';
import { ApiError } from '../../../engine/common/contract.ts';
import { ResizePanel } from './ResizePanel.tsx';
import { renderInStudio } from './testing.tsx';

afterEach(cleanup);

const module = (name: string, rank: number, newRank: number) => ({
  module: name,
  rows: 24,
  cols: 8,
  rank,
  newRank,
  retainedFrobenius: 0.95,
  retainedEnergy: 0.9,
  retainedCumulative: 0.8,
  bytesBefore: rank * 32 * 4,
  bytesAfter: newRank * 32 * 4,
  bytesSaved: (rank - newRank) * 32 * 4,
});

const reply: RunResize = {
  checkpoint: '/p/runs/r1/checkpoints/step-2',
  proposal: {
    spec: { criterion: 'sv_fro', value: 0.6 },
    modules: [module('transformer.h.0.attn.c_attn', 4, 1), module('transformer.h.1.attn.c_attn', 4, 3)],
    bytesBefore: 1024,
    bytesAfter: 512,
    retainedEnergy: 0.9,
  },
  validation: { examples: 2, lossOriginal: 1.5, lossResized: 1.6, lossBase: 2 },
};

function setup() {
  const calls: { id: string; input: unknown }[] = [];
  const api: StudioApi = {
    transport: 'http',
    async call(id, input) {
      calls.push({ id, input });
      if (id === 'export.resize') return reply as never;
      if (id === 'export.run') {
        const run = input as Input<'export.run'>;
        return {
          format: run.format,
          out: run.out,
          files: [],
          bytes: 0,
          verification: { ok: true, maxAbsDiff: 0 },
        } as never;
      }
      throw new ApiError('engine_error', `no ${id}`);
    },
    onEvent: () => () => {},
    restartEngine: async () => {},
  };
  renderInStudio(<ResizePanel run={{ dir: '/p/runs/r1' } as RunInfo} />, api);
  return calls;
}

describe('ResizePanel', () => {
  it('asks the engine with the CLI spelling, shows its ranks per module, and exports with the same spec', async () => {
    const calls = setup();
    fireEvent.change(screen.getByTestId('resize-value'), { target: { value: ' 0.6 ' } });
    fireEvent.click(screen.getByTestId('resize-propose'));
    await waitFor(() => expect(screen.getByTestId('resize-table')).toBeTruthy());
    // `studio export --format lora --resize sv_fro=0.6` sends this same string (run-export.test.ts)
    expect(calls[0]).toEqual({
      id: 'export.resize',
      input: { runDir: '/p/runs/r1', resize: 'sv_fro=0.6', validate: true },
    });
    const rows = within(screen.getByTestId('resize-table')).getAllByRole('row').slice(1);
    expect(
      rows
        .map((r) =>
          within(r)
            .getAllByRole('cell')
            .map((c) => c.textContent),
        )
        .map((c) => [c[0], c[1], c[2]]),
    ).toEqual([
      ['transformer.h.0.attn.c_attn', '4', '1'],
      ['transformer.h.1.attn.c_attn', '4', '3'],
    ]);
    expect(screen.getByTestId('resize-summary').textContent).toMatch(/validation loss 1\.5\d* → 1\.6/);
    fireEvent.click(screen.getByTestId('resize-export'));
    await waitFor(() => expect(calls).toHaveLength(2));
    expect(calls[1]).toMatchObject({ id: 'export.run', input: { format: 'lora', resize: 'sv_fro=0.6' } });
  });
});
