import type { TrainEvent } from '../common/train-events.ts';
import type { RunHandle, RunSummary } from '../training/run.ts';
import type { CommandIO } from './command.ts';

function duration(sec: number): string {
  if (!Number.isFinite(sec)) return '?';
  const s = Math.round(sec);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0
    ? `${h}h${String(m).padStart(2, '0')}m`
    : m > 0
      ? `${m}m${String(r).padStart(2, '0')}s`
      : `${r}s`;
}

function metricsText(metrics: Record<string, number>): string {
  return Object.entries(metrics)
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toPrecision(4)}`)
    .join(', ');
}

/** One line of text for an event (non-TTY logs); null for events shown only on a TTY bar. */
export function describeEvent(e: TrainEvent): string | null {
  switch (e.type) {
    case 'run-started':
      return `run ${e.runId}: ${e.method} on ${e.task}, ${e.trainableParams.toLocaleString('en-US')} trainable, ${e.trainExamples} train / ${e.validationExamples} validation examples, backend ${e.backend}${e.resumedFrom !== undefined ? `, resumed at step ${e.resumedFrom}` : ''}, ${e.totalSteps} steps`;
    case 'step':
      return `step ${e.step}  loss ${e.loss.toFixed(4)}  lr ${e.lr.toExponential(2)}  grad ${e.gradNorm.toFixed(3)}  ${Math.round(e.tokensPerSec)} tok/s  eta ${duration(e.etaSec)}`;
    case 'eval':
      return `eval @${e.step}: ${metricsText(e.metrics)}`;
    case 'checkpoint-saved':
      return `checkpoint @${e.step}: ${e.path}`;
    case 'analysis-saved':
      return null;
    case 'warning':
      return `warning${e.step !== undefined ? ` @${e.step}` : ''}: ${e.message}`;
    case 'error':
      return `error${e.step !== undefined ? ` @${e.step}` : ''}: ${e.message}`;
    case 'paused':
      return `paused at step ${e.step}`;
    case 'resumed':
      return e.from === 'pause'
        ? `resumed at step ${e.step}`
        : `continuing from the checkpoint at step ${e.step}`;
    case 'cancelled':
      return `cancelled at step ${e.step}${e.checkpoint ? `; resume with: studio resume ${e.checkpoint.replace(/[/\\]checkpoints[/\\]step-\d+$/, '')}` : ''}`;
    case 'finished':
      return `finished at step ${e.step} (${e.reason}) in ${duration(e.durationSec)}${e.metrics ? `: ${metricsText(e.metrics)}` : ''}`;
  }
}

/**
 * Shows a run: JSON lines of every event with `json`; on a terminal a progress bar (loss, tokens/s, ETA)
 * redrawn in place; otherwise one line per logged step (every `logEvery`) and every other event.
 * Ctrl-C cancels the run, which saves a checkpoint to resume from.
 */
export async function followRun(handle: RunHandle, io: CommandIO, json: boolean): Promise<RunSummary> {
  let total = 0;
  let barShown = false;
  const clearBar = () => {
    if (barShown) {
      process.stdout.write('\r\x1b[2K');
      barShown = false;
    }
  };
  const onEvent = (e: TrainEvent) => {
    if (json) {
      io.out(JSON.stringify(e));
      return;
    }
    if (e.type === 'run-started') total = e.totalSteps;
    if (e.type === 'step' && io.isTTY) {
      const width = 24;
      const done = Math.min(width, Math.round((e.step / Math.max(1, total)) * width));
      process.stdout.write(
        `\r\x1b[2K[${'#'.repeat(done)}${'.'.repeat(width - done)}] ${e.step}/${total}  loss ${e.loss.toFixed(4)}  ${Math.round(e.tokensPerSec)} tok/s  eta ${duration(e.etaSec)}`,
      );
      barShown = true;
      return;
    }
    const line = describeEvent(e);
    if (line === null) return;
    clearBar();
    (e.type === 'error' || e.type === 'warning' ? io.err : io.out)(line);
  };
  const off = handle.on('event', onEvent);
  for (const e of handle.history) onEvent(e);
  const onSigint = () => handle.cancel();
  process.on('SIGINT', onSigint);
  try {
    return await handle.done;
  } finally {
    process.off('SIGINT', onSigint);
    off();
    clearBar();
  }
}

export function exitCodeOf(summary: RunSummary): number {
  return summary.status === 'completed' ? 0 : summary.status === 'cancelled' ? 130 : 1;
}
