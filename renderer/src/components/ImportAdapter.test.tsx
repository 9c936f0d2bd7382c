// @vitest-environment jsdom
import { cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { Input, Output, RunInfo, StudioApi } from '../../../engine/common/contract.ts';
import { ApiError } from '../../../engine/common/contract.ts';
import { StoreContext } from '../context.ts';
import { projectSummary } from '../store/testing.ts';
import { createStudioStore } from '../store.ts';
import { ImportAdapter } from './ImportAdapter.tsx';

afterEach(cleanup);

const imported: RunInfo = {
  id: 'r2',
  dir: '/p/runs/r2',
  projectDir: '/p',
  status: 'completed',
  live: false,
  method: 'lora',
  createdAt: '2026-01-02T00:00:00Z',
  step: 0,
  totalSteps: 0,
  epoch: 0,
  lastLoss: null,
  lastEvalLoss: null,
  lastCheckpoint: '/p/runs/r2/checkpoints/step-0',
  backend: 'cpu',
  error: null,
  config: {},
  origin: { kind: 'imported-adapter', source: '/adapters/a', importedAt: '2026-01-02T00:00:00Z' },
};

function setup(answer: (input: Input<'runs.import'>) => Output<'runs.import'>) {
  const calls: Input<'runs.import'>[] = [];
  const api: StudioApi = {
    transport: 'http',
    async call(id, input) {
      if (id !== 'runs.import') throw new ApiError('engine_error', `no ${id}`);
      calls.push(input as Input<'runs.import'>);
      return answer(input as Input<'runs.import'>) as never;
    },
    onEvent: () => () => {},
    restartEngine: async () => {},
  };
  const store = createStudioStore(api);
  store.setState({ project: projectSummary() });
  render(
    <StoreContext.Provider value={store}>
      <ImportAdapter />
    </StoreContext.Provider>,
  );
  return { store, calls };
}

describe('ImportAdapter', () => {
  it('imports the folder into the open project, lists the run and shows the warnings', async () => {
    const { store, calls } = setup(() => ({ run: imported, warnings: ['names another base model'] }));
    const button = screen.getByRole('button', { name: 'Import adapter' }) as HTMLButtonElement;
    expect(button.disabled).toBe(true);
    fireEvent.change(screen.getByLabelText('PEFT adapter folder'), { target: { value: ' /adapters/a ' } });
    fireEvent.click(button);
    await waitFor(() => expect(screen.getByText('names another base model')).toBeTruthy());
    expect(calls).toEqual([{ projectDir: '/p', source: '/adapters/a' }]);
    expect(store.getState().runs.map((r) => r.id)).toEqual(['r2']);
  });

  it("shows the engine's refusal in place", async () => {
    setup(() => {
      throw new ApiError(
        'engine_error',
        'adapter_model.safetensors: "q_proj.lora_A.weight" has shape [4, 64]',
      );
    });
    fireEvent.change(screen.getByLabelText('PEFT adapter folder'), { target: { value: '/adapters/b' } });
    fireEvent.click(screen.getByRole('button', { name: 'Import adapter' }));
    await waitFor(() => expect(screen.getByRole('alert').textContent).toContain('has shape [4, 64]'));
  });
});
