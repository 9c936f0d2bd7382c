import { resolve } from 'node:path';
import { activateBackend } from '../../backends/activate.ts';
import { importPeftAdapter } from '../../export/import.ts';
import { openProject } from '../../project/store.ts';
import { type Command, jsonOption, positional, stringArg } from '../command.ts';

export const command: Command = {
  name: 'import',
  summary:
    "Bring a PEFT adapter folder (LoRA, rsLoRA, DoRA, PiSSA/OLoRA converted, rank/alpha patterns, modules_to_save, VeRA, TinyLoRA) into a project as a run marked imported: analysis, try-it, eval and every export work on it, and `studio resume` trains it further with the project's settings. Refused, naming the file, module and shapes, when it does not fit the project's model.",
  usage: '<peft-adapter-dir> --project <dir> [--json]',
  options: {
    project: { type: 'string', description: 'the project folder to add the run to', value: '<dir>' },
    backend: { type: 'string', description: "compute backend (default: the project's)", value: '<name>' },
    json: jsonOption,
  },
  async run(args, io) {
    const source = resolve(positional(args, 0, 'PEFT adapter folder'));
    const project = resolve(stringArg(args, 'project', true));
    await activateBackend(stringArg(args, 'backend') ?? (await openProject(project)).settings.backend);
    const result = await importPeftAdapter(source, project);
    if (args.values.json) {
      io.out(JSON.stringify(result, null, 2));
      return 0;
    }
    for (const warning of result.warnings) io.err(`warning: ${warning}`);
    io.out(`imported ${source} as run ${result.runId} (${result.method})`);
    io.out(`  run       ${result.runDir}`);
    io.out(
      `  modules   ${result.modules.length} adapted${result.savedModules.length ? `, saved whole: ${result.savedModules.join(', ')}` : ''}`,
    );
    io.out(`  effect    max |Δlogit| ${result.adapterEffect.toExponential(2)} on a probe batch`);
    io.out(`continue training: studio resume ${result.runDir}`);
    return 0;
  },
};
