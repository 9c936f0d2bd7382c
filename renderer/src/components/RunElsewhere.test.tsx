// @vitest-environment jsdom
import { cleanup, fireEvent, screen, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import type { Input } from '../../../engine/common/contract.ts';
import { ApiError, HandoffStrategySchema } from '../../../engine/common/contract.ts';
import { fakeApi, projectSummary } from '../store/testing.ts';
import { RunElsewhere } from './RunElsewhere.tsx';
import { renderInStudio } from './testing.tsx';

afterEach(cleanup);

function setup(write: (input: Input<'handoff.write'>) => unknown) {
  const { api, inputs } = fakeApi({ 'handoff.write': (input) => write(input) as never });
  renderInStudio(<RunElsewhere />, api, { project: projectSummary() });
  return { inputs };
}

describe('RunElsewhere', () => {
  it('offers every hand-off strategy, writes the folder and shows how to launch it', async () => {
    const { inputs } = setup((input) => ({
      outDir: input.out,
      strategy: input.strategy,
      files: ['train.py', 'requirements.txt', 'launch-accelerate.sh'],
      warnings: ['TLoRA runs as a PEFT custom method (studio_methods.py)'],
    }));
    const strategy = screen.getByLabelText('hand-off strategy') as HTMLSelectElement;
    expect([...strategy.options].map((o) => o.value)).toEqual(HandoffStrategySchema.options);
    const folder = screen.getByLabelText('Hand-off folder') as HTMLInputElement;
    expect(folder.value).toBe('/p/handoff-ddp');
    fireEvent.change(strategy, { target: { value: 'zero3' } });
    expect(folder.value).toBe('/p/handoff-zero3');
    fireEvent.click(screen.getByRole('button', { name: 'Write hand-off folder' }));
    await waitFor(() => expect(screen.getByTestId('handoff-result')).toBeTruthy());
    expect(inputs).toEqual([{ projectDir: '/p', out: '/p/handoff-zero3', strategy: 'zero3' }]);
    const result = screen.getByTestId('handoff-result').textContent ?? '';
    expect(result).toContain('Wrote 3 files to /p/handoff-zero3');
    expect(result).toContain('./launch-accelerate.sh');
    expect(result).toContain('sbatch slurm.sbatch');
    expect(result).toContain('TLoRA runs as a PEFT custom method');
  });

  it('names what the hand-off cannot reproduce, before anything is written', async () => {
    setup(() => {
      throw new ApiError('invalid_input', 'lora option "loraPlusRatio" has no PEFT equivalent');
    });
    fireEvent.click(screen.getByRole('button', { name: 'Write hand-off folder' }));
    await waitFor(() => expect(screen.getByRole('alert').textContent).toContain('has no PEFT equivalent'));
    expect(screen.queryByTestId('handoff-result')).toBeNull();
  });
});
