import {
  analyzeAdapter,
  type Comparison,
  compareRuns,
  type EigenResult,
  eigenDir,
  eigenMatrices,
  estimateEigenCost,
  readTimeSeries,
  startEigenJob,
  writeSnapshot,
} from '../../analysis/index.ts';
import { formatSummary, summarize } from '../../analysis/summary.ts';
import { activateRunBackend, loadRunAdapter } from '../../runs/index.ts';
import {
  CliError,
  type Command,
  type CommandIO,
  jsonOption,
  numberArg,
  positional,
  stringArg,
} from '../command.ts';

function progressLine(io: CommandIO, label: string): (fraction: number) => void {
  let shown = -1;
  return (fraction) => {
    const pct = Math.floor(fraction * 100);
    if (io.isTTY) {
      if (pct !== shown)
        process.stdout.write(`\r${label} ${String(pct).padStart(3)}%${pct === 100 ? '\n' : ''}`);
    } else if (pct >= shown + 25 || (pct === 100 && shown !== 100)) {
      io.err(`${label} ${pct}%`);
    } else {
      return;
    }
    shown = pct;
  };
}

export const command: Command = {
  name: 'analyze',
  summary: 'adaptation analysis of a run: norms, scaling factors, spectra, comparisons',
  usage: '<run-or-checkpoint> [--compare <run>] [--module <name>] [--eigen] [--json]',
  options: {
    compare: {
      type: 'string',
      value: '<run>',
      description: 'compare with another run on the same base model',
    },
    module: {
      type: 'string',
      value: '<name>',
      description: 'module for details, the difference matrix and eigenvalues (default: largest ‖ΔW‖)',
    },
    eigen: {
      type: 'boolean',
      description: 'eigenvalues of W0 and W0 + ΔW for the (square) module, in a worker',
    },
    bins: { type: 'string', value: '<n>', description: 'histogram bins', default: '50' },
    backend: { type: 'string', value: '<name>', description: "compute backend (default: the run's)" },
    json: jsonOption,
  },
  async run(args, io) {
    const target = positional(args, 0, 'run or checkpoint folder');
    const bins = numberArg(args, 'bins') ?? 50;
    if (!Number.isInteger(bins) || bins < 1)
      throw new CliError(`option --bins must be a positive integer, got ${bins}`, 2);
    const runDir = await activateRunBackend(target, stringArg(args, 'backend'));
    const loaded = await loadRunAdapter(target);
    const files: string[] = [];
    let comparison: Comparison | undefined;
    const eigen: EigenResult[] = [];
    try {
      const { model, instance, state } = loaded;
      const snapshot = await analyzeAdapter(instance, model, { step: state.step, bins });
      files.push(await writeSnapshot(runDir, snapshot));
      const requested = stringArg(args, 'module');
      if (requested !== undefined && !instance.layers.has(requested)) {
        const names = [...instance.layers.keys()];
        throw new CliError(
          `module "${requested}" is not adapted in this run (modules: ${names.slice(0, 6).join(', ')}${names.length > 6 ? ', …' : ''})`,
        );
      }
      const module =
        requested ?? [...snapshot.modules].sort((a, b) => b.deltaFrobenius - a.deltaFrobenius)[0]?.module;

      const other = stringArg(args, 'compare');
      if (other !== undefined) {
        const compared = await compareRuns(loaded, other, { module, write: true });
        comparison = compared.comparison;
        if (compared.path) files.push(compared.path);
      }

      if (args.values.eigen === true) {
        if (!module) throw new CliError('--eigen: the adapter has no modules');
        const { base, adapted } = await eigenMatrices(instance, model, module);
        const cost = estimateEigenCost(base.rows);
        io.err(
          `eigenvalues at ${module}: n = ${cost.n}, about ${(cost.flops / 1e9).toFixed(2)} GFLOP each (2 matrices), ${cost.seconds < 1 ? 'under a second' : `about ${Math.ceil(cost.seconds)} s`} each on this machine`,
        );
        for (const [which, matrix] of [
          ['base', base],
          ['adapted', adapted],
        ] as const) {
          const job = startEigenJob(
            { module, which, matrix },
            {
              cacheDir: eigenDir(runDir),
              onProgress: progressLine(io, which === 'base' ? 'eig(W0)' : 'eig(W0 + ΔW)'),
            },
          );
          const stop = () => job.cancel();
          process.once('SIGINT', stop);
          try {
            eigen.push(await job.done);
          } finally {
            process.off('SIGINT', stop);
          }
          files.push(`${eigenDir(runDir)}/${job.hash}.json`);
        }
      }

      const summary = summarize(snapshot, await readTimeSeries(runDir));
      const detail = module ? snapshot.modules.find((m) => m.module === module) : undefined;
      if (args.values.json === true) {
        io.out(
          JSON.stringify(
            {
              runDir,
              checkpoint: loaded.checkpoint,
              files,
              summary,
              module: detail ? { ...detail, histograms: undefined } : null,
              comparison: comparison ?? null,
              eigen: eigen.map(({ re: _re, im: _im, magnitudeHistograms: _h, ...rest }) => rest),
            },
            null,
            2,
          ),
        );
      } else {
        io.out(formatSummary(summary, { comparison, eigen, module: requested ? detail : undefined }));
        io.out(`\nwrote ${files.join(', ')}`);
      }
      return 0;
    } finally {
      loaded.instance.dispose();
      loaded.model.dispose();
    }
  },
};
