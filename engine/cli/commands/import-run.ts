import { resolve } from 'node:path';
import { activateBackend } from '../../backends/activate.ts';
import { importExternalRun } from '../../export/import-run.ts';
import { openProject } from '../../project/store.ts';
import { type Command, jsonOption, positional, stringArg } from '../command.ts';

export const command: Command = {
  name: 'import-run',
  summary:
    "Bring the output folder of a hand-off job (`studio handoff`, run with accelerate / torchrun / Slurm / SkyPilot) into a project as a run marked with where it ran: the loss / LR / grad-norm curve from its metrics.jsonl or trainer_state.json, every checkpoint-<N> and the final adapter as the run's checkpoints with their analysis, so the Train and Runs views, compare, try-it, eval and every export work on it. A job stopped before its end comes back up to its last checkpoint, with a warning. Refused, naming the file, when the folder has no adapter, its logs are torn, or the adapter does not fit the project's model.",
  usage: '<job-output-dir> --project <dir> [--json]',
  options: {
    project: { type: 'string', description: 'the project folder to add the run to', value: '<dir>' },
    backend: { type: 'string', description: "compute backend (default: the project's)", value: '<name>' },
    json: jsonOption,
  },
  async run(args, io) {
    const source = resolve(positional(args, 0, 'job output folder'));
    const project = resolve(stringArg(args, 'project', true));
    await activateBackend(stringArg(args, 'backend') ?? (await openProject(project)).settings.backend);
    const result = await importExternalRun(source, project);
    if (args.values.json) {
      io.out(JSON.stringify(result, null, 2));
      return 0;
    }
    for (const warning of result.warnings) io.err(`warning: ${warning}`);
    io.out(`imported ${source} as run ${result.runId} (${result.method}, step ${result.step})`);
    io.out(`  run         ${result.runDir}`);
    io.out(`  ran on      ${result.origin.where ?? 'unknown (no handoff-run.json)'}`);
    io.out(`  curve       ${result.steps} steps`);
    io.out(`  checkpoints ${result.checkpoints.join(', ')}`);
    return 0;
  },
};
