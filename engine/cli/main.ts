import { describeError } from '../common/errors.ts';
import { CliError, type Command, type CommandIO, formatHelp, parseCommandArgs } from './command.ts';

/** Every subcommand, loaded lazily so `studio --help` and light commands start fast. */
const commands: Record<string, () => Promise<{ command: Command }>> = {
  backends: () => import('./commands/backends.ts'),
  inspect: () => import('./commands/inspect.ts'),
  budget: () => import('./commands/budget.ts'),
  init: () => import('./commands/init.ts'),
  'preview-data': () => import('./commands/preview-data.ts'),
  train: () => import('./commands/train.ts'),
  resume: () => import('./commands/resume.ts'),
  eval: () => import('./commands/eval.ts'),
  export: () => import('./commands/export.ts'),
  analyze: () => import('./commands/analyze.ts'),
  serve: () => import('./commands/serve.ts'),
  try: () => import('./commands/try.ts'),
  runs: () => import('./commands/runs.ts'),
  import: () => import('./commands/import.ts'),
  handoff: () => import('./commands/handoff.ts'),
  'import-run': () => import('./commands/import-run.ts'),
};

const summaries: Record<string, string> = {
  backends: 'list compute backends, the one chosen and why the others were skipped',
  inspect: 'show a model folder: architecture, parameter count, module tree',
  budget: 'trainable parameters, adapter size and memory for a method, from config.json alone',
  init: 'create a project folder for a model, a dataset and a method',
  'preview-data': 'show the first examples as the model sees them',
  train: 'train a project (a new run)',
  resume: 'resume a run from its last checkpoint',
  eval: 'evaluate a run or checkpoint on the validation data',
  export: 'export a run: PEFT adapter, LoRA conversion, merged model or native checkpoint',
  analyze: 'adaptation analysis of a run: norms, scaling factors, spectra, comparisons',
  serve: 'serve the studio UI and API over HTTP/WebSocket on 127.0.0.1',
  try: "try a run's adapter on one prompt or text, next to the base model",
  runs: "list a project's runs or delete a finished run",
  import: 'bring a PEFT adapter folder into a project as a run (analyse, try, evaluate, export, train on)',
  handoff:
    'write a folder that trains the project with accelerate + PEFT on a cluster (Slurm, SkyPilot, torchrun)',
  'import-run':
    "bring a hand-off job's output back as a run: curves, checkpoints, analysis, try-it, eval, export",
};

function topHelp(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length)) + 4;
  return [
    'studio <command> [options]',
    '',
    'Adapter Studio: parameter-efficient fine-tuning without Python.',
    '',
    'Commands:',
    ...Object.keys(commands).map((c) => `  ${c.padEnd(width)}${summaries[c]}`),
    '',
    "Run `studio <command> --help` for a command's options.",
  ].join('\n');
}

export async function main(argv: string[], io?: Partial<CommandIO>): Promise<number> {
  const out = io?.out ?? ((t: string) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`));
  const err = io?.err ?? ((t: string) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`));
  const fullIO: CommandIO = { out, err, isTTY: io?.isTTY ?? Boolean(process.stdout.isTTY) };
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    out(topHelp());
    return name ? 0 : 2;
  }
  const load = commands[name];
  if (!load) {
    err(`studio: unknown command "${name}". Commands: ${Object.keys(commands).join(', ')}`);
    return 2;
  }
  try {
    const { command } = await load();
    if (rest.includes('--help') || rest.includes('-h')) {
      out(formatHelp(command));
      return 0;
    }
    return await command.run(parseCommandArgs(command, rest), fullIO);
  } catch (error) {
    const { message } = describeError(error);
    err(`studio ${name}: ${message.split('\n')[0]}`);
    if (process.env.STUDIO_DEBUG && error instanceof Error) err(error.stack ?? '');
    return error instanceof CliError ? error.exitCode : 1;
  }
}
