import { runRecorder } from '../../analysis/index.ts';
import { resumeRun } from '../../training/run.ts';
import { type Command, jsonOption, numberArg, positional, stringArg } from '../command.ts';
import { exitCodeOf, followRun } from '../progress.ts';

export const command: Command = {
  name: 'resume',
  summary:
    'Continue a run from its last checkpoint (after Ctrl-C, cancel, a crash or a killed process); the losses continue exactly as without the interruption.',
  usage: '<run-dir> [--max-steps <n>] [--backend <name>] [--json]',
  options: {
    'max-steps': {
      type: 'string',
      description: 'train to this many steps in total (continues a finished run; the schedule is recomputed)',
      value: '<n>',
    },
    backend: { type: 'string', description: "compute backend (default: the run's)", value: '<name>' },
    'no-analysis': { type: 'boolean', description: 'do not record adapter analysis' },
    json: { ...jsonOption, description: 'one JSON event per line instead of a progress display' },
  },
  async run(args, io) {
    const dir = positional(args, 0, 'run folder');
    const handle = await resumeRun(dir, {
      maxSteps: numberArg(args, 'max-steps'),
      backend: stringArg(args, 'backend'),
      recorder: args.values['no-analysis'] === true ? undefined : runRecorder,
    });
    const summary = await followRun(handle, io, args.values.json === true);
    return exitCodeOf(summary);
  },
};
