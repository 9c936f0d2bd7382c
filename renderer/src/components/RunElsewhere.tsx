import { useEffect, useState } from 'react';
import { HandoffStrategySchema, type Output } from '../../../engine/common/contract.ts';
import { useStudio } from '../context.ts';
import { Card, ErrorNote } from './common.tsx';
import { PathPicker } from './PathPicker.tsx';

type Strategy = (typeof HandoffStrategySchema.options)[number];

const STRATEGY_WORDS: Record<Strategy, string> = {
  ddp: 'DDP: a full copy of the model per GPU (fits when one GPU holds the model)',
  fsdp: 'FSDP: weights, gradients and optimizer state sharded across GPUs',
  zero2: 'DeepSpeed ZeRO-2: optimizer state and gradients sharded',
  zero3: 'DeepSpeed ZeRO-3: weights sharded too (the largest models)',
};

/**
 * "Run elsewhere": the same folder as `studio handoff`, a transformers + PEFT job for accelerate, torchrun,
 * Slurm or SkyPilot, and how to launch it. What it writes back comes in through "Import run".
 */
export function RunElsewhere() {
  const project = useStudio((s) => s.project);
  const request = useStudio((s) => s.request);
  const busy = useStudio((s) => s.busy.handoff === true);
  const [strategy, setStrategy] = useState<Strategy>('ddp');
  const [out, setOut] = useState('');
  const [written, setWritten] = useState<Output<'handoff.write'> | null>(null);
  useEffect(() => {
    if (project) setOut(`${project.dir}/handoff-${strategy}`);
  }, [project, strategy]);
  if (!project) return null;
  return (
    <Card title="Run elsewhere" testId="run-elsewhere">
      <form
        className="stack"
        onSubmit={(event) => {
          event.preventDefault();
          void request('handoff', 'handoff.write', {
            projectDir: project.dir,
            out: out.trim(),
            strategy,
          }).then((result) => result && setWritten(result));
        }}
      >
        <label className="row">
          <span>Strategy</span>
          <select
            aria-label="hand-off strategy"
            value={strategy}
            onChange={(event) => setStrategy(event.target.value as Strategy)}
            data-testid="handoff-strategy"
          >
            {HandoffStrategySchema.options.map((s) => (
              <option key={s} value={s}>
                {STRATEGY_WORDS[s]}
              </option>
            ))}
          </select>
        </label>
        <PathPicker
          id="handoff-out"
          label="Hand-off folder"
          value={out}
          onChange={setOut}
          kind="new-folder"
        />
        <button
          type="submit"
          className="align-start"
          disabled={busy || out.trim() === ''}
          data-testid="handoff-write"
        >
          {busy ? 'Writing…' : 'Write hand-off folder'}
        </button>
      </form>
      <ErrorNote area="handoff" />
      {written && (
        <div className="stack" data-testid="handoff-result">
          <p className="small">
            Wrote {written.files.length} files to <span className="mono">{written.outDir}</span>. On the
            cluster:
          </p>
          <pre className="mono small">
            {[
              `cd ${written.outDir}`,
              'pip install -r requirements.txt',
              './launch-accelerate.sh            # one node, every GPU',
              'sbatch slurm.sbatch               # Slurm',
              'sky launch skypilot.yaml          # SkyPilot',
            ].join('\n')}
          </pre>
          <p className="muted small">
            The job writes PEFT checkpoints, trainer_state.json and metrics.jsonl into output/; bring that
            folder back with Import run. README.md in the folder says the rest.
          </p>
          {written.warnings.map((warning) => (
            <p key={warning} className="muted small">
              {warning}
            </p>
          ))}
        </div>
      )}
    </Card>
  );
}
