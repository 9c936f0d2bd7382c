import { CliError, type Command, jsonOption, positional } from '../command.ts';
import { table } from '../format.ts';
import { withService } from '../service.ts';

export const command: Command = {
  name: 'runs',
  summary:
    "List a project's runs (newest first) or delete a finished run's folder, as the app's Runs view does; a run in progress is refused.",
  usage: 'list <project-dir> [--json] | delete <run-dir>',
  options: { json: jsonOption },
  async run(args, io) {
    const action = positional(args, 0, 'action (list or delete)');
    const dir = positional(args, 1, action === 'delete' ? 'run folder' : 'project folder');
    return withService(async (call) => {
      if (action === 'delete') {
        const { deleted } = await call('runs.delete', { runDir: dir });
        io.out(`deleted ${deleted}`);
        return 0;
      }
      if (action !== 'list') throw new CliError(`unknown action "${action}": use list or delete`, 2);
      const runs = await call('runs.list', { projectDir: dir });
      if (args.values.json) io.out(JSON.stringify(runs, null, 2));
      else if (runs.length === 0) io.out(`no runs in ${dir}`);
      else {
        const rows = runs.map((r) => [
          r.id,
          r.status,
          r.method,
          `${r.step}/${r.totalSteps}`,
          r.lastLoss === null ? '' : r.lastLoss.toFixed(4),
          r.createdAt,
        ]);
        for (const line of table([['run', 'status', 'method', 'step', 'loss', 'created'], ...rows]))
          io.out(line);
      }
      return 0;
    });
  },
};
