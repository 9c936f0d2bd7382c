import { describe, expect, it } from 'vitest';
import { dueActions } from './actions.ts';

const schedule = (settings: Parameters<typeof dueActions>[1], total: number) =>
  Array.from({ length: total }, (_, i) => {
    const due = dueActions(i + 1, settings, total);
    return [due.eval ? 'e' : '', due.analysis ? 'a' : '', due.checkpoint ? 'c' : ''].join('') || '-';
  });

describe('dueActions', () => {
  it('evaluates, records analysis and checkpoints at their intervals, and always finishes with eval + checkpoint', () => {
    expect(schedule({ evalEvery: 3, analysisEvery: 2, checkpointEvery: 4 }, 10)).toEqual([
      '-',
      'a',
      'e',
      'c',
      '-',
      'ea',
      '-',
      'c',
      'e',
      'ec',
    ]);
  });

  it('0 means only at the end; analysis never doubles a checkpoint (which records its own)', () => {
    expect(schedule({ evalEvery: 0, analysisEvery: 0, checkpointEvery: 0 }, 3)).toEqual(['-', '-', 'ec']);
    expect(schedule({ evalEvery: 0, analysisEvery: 1, checkpointEvery: 2 }, 4)).toEqual([
      'a',
      'c',
      'a',
      'ec',
    ]);
  });

  it('a step past the end (a resumed run with fewer steps) still finishes', () => {
    expect(dueActions(7, { evalEvery: 0, analysisEvery: 0, checkpointEvery: 0 }, 5)).toEqual({
      eval: true,
      analysis: false,
      checkpoint: true,
    });
  });
});
