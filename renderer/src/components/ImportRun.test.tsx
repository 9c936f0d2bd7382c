// @vitest-environment jsdom
import { cleanup, fireEvent, screen, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunInfo } from '../../../engine/common/contract.ts';
import { ApiError } from '../../../engine/common/contract.ts';
import { fakeApi, projectSummary, runInfo } from '../store/testing.ts';
import { ImportRun } from './ImportRun.tsx';
import { renderInStudio } from './testing.tsx';

afterEach(cleanup);

const imported: RunInfo = runInfo({
  id: 'r2',
  dir: '/p/runs/r2',
  status: 'completed',
  live: false,
  lastCheckpoint: '/p/runs/r2/checkpoints/step-0',
  origin: { kind: 'imported-adapter', source: '/adapters/a', importedAt: '2026-01-02T00:00:00Z' },
});

function setup(handlers: Parameters<typeof fakeApi>[0]) {
  const { api, calls, inputs } = fakeApi(handlers);
  const store = renderInStudio(<ImportRun />, api, { project: projectSummary() });
  return { store, calls, inputs };
}

const importButton = () => screen.getByRole('button', { name: 'Import' }) as HTMLButtonElement;

describe('ImportRun', () => {
  it('imports a PEFT adapter folder into the open project, lists the run and shows the warnings', async () => {
    const { store, calls, inputs } = setup({
      'runs.import': () => ({ run: imported, warnings: ['names another base model'] }),
    });
    expect(importButton().disabled).toBe(true);
    fireEvent.change(screen.getByLabelText('Folder'), { target: { value: ' /adapters/a ' } });
    fireEvent.click(importButton());
    await waitFor(() => expect(screen.getByText('names another base model')).toBeTruthy());
    expect(calls).toEqual(['runs.import']);
    expect(inputs).toEqual([{ projectDir: '/p', source: '/adapters/a' }]);
    expect(store.getState().runs.map((r) => r.id)).toEqual(['r2']);
  });

  it("brings a hand-off job's output in through runs.importExternal", async () => {
    const elsewhere = runInfo({
      ...imported,
      id: 'r3',
      dir: '/p/runs/r3',
      origin: {
        kind: 'imported-run',
        source: '/jobs/out',
        where: 'gpu-node (2 × cuda, ddp)',
        importedAt: '2026-01-03T00:00:00Z',
      },
    });
    const { store, calls, inputs } = setup({
      'runs.importExternal': () => ({ run: elsewhere, checkpoints: [10, 20], warnings: [] }),
    });
    fireEvent.click(screen.getByLabelText('a hand-off job’s output'));
    expect(screen.getByText(/trainer_state\.json/)).toBeTruthy();
    fireEvent.change(screen.getByLabelText('Folder'), { target: { value: '/jobs/out' } });
    fireEvent.click(importButton());
    await waitFor(() => expect(store.getState().runs.map((r) => r.id)).toEqual(['r3']));
    expect(calls).toEqual(['runs.importExternal']);
    expect(inputs).toEqual([{ projectDir: '/p', source: '/jobs/out' }]);
    expect((screen.getByLabelText('Folder') as HTMLInputElement).value).toBe('');
  });

  it("shows the engine's refusal in place and keeps the typed folder", async () => {
    setup({
      'runs.importExternal': () => {
        throw new ApiError('invalid_input', '/jobs/torn/trainer_state.json: not JSON (torn write?)');
      },
    });
    fireEvent.click(screen.getByLabelText('a hand-off job’s output'));
    fireEvent.change(screen.getByLabelText('Folder'), { target: { value: '/jobs/torn' } });
    fireEvent.click(importButton());
    await waitFor(() =>
      expect(screen.getByRole('alert').textContent).toContain('trainer_state.json: not JSON'),
    );
    expect((screen.getByLabelText('Folder') as HTMLInputElement).value).toBe('/jobs/torn');
  });
});
