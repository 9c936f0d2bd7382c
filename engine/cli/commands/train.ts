import { runRecorder } from '../../analysis/index.ts';
import { startRun } from '../../training/run.ts';
import { type Command, jsonOption, type OptionSpec, positional, stringArg } from '../command.ts';
import { trainingFromArgs, trainingOptions } from '../options.ts';
import { exitCodeOf, followRun } from '../progress.ts';

const own: Record<string, OptionSpec> = {
  backend: { type: 'string', description: "compute backend (default: the project's)", value: '<name>' },
  'no-analysis': { type: 'boolean', description: 'do not record adapter analysis during training' },
  json: { ...jsonOption, description: 'one JSON event per line instead of a progress display' },
};

export const command: Command = {
  name: 'train',
  summary:
    'Train a project: a new run in runs/<run-id>/ with metrics.jsonl, checkpoints and analysis. Training options override project.json for this run. Ctrl-C cancels and leaves a resumable checkpoint.',
  usage: '<project> [training options] [--backend <name>] [--json]',
  options: { ...trainingOptions(), ...own },
  async run(args, io) {
    const dir = positional(args, 0, 'project folder');
    const handle = await startRun(dir, {
      training: trainingFromArgs(args),
      backend: stringArg(args, 'backend'),
      recorder: args.values['no-analysis'] === true ? undefined : runRecorder,
    });
    const summary = await followRun(handle, io, args.values.json === true);
    if (!args.values.json) io.out(`run folder: ${summary.runDir}`);
    return exitCodeOf(summary);
  },
};
