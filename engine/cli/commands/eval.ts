import { evaluateRun } from '../../training/eval-run.ts';
import { type Command, jsonOption, numberArg, positional, stringArg } from '../command.ts';

export const command: Command = {
  name: 'eval',
  summary:
    "Evaluate a run's adapter (latest checkpoint, or the checkpoint folder given) on its validation data or another file: loss and perplexity (+ greedy exact match when the data has answers), or loss, accuracy and F1.",
  usage: '<run-dir|checkpoint-dir> [--data <file>] [--exact-match-examples <n>] [--json]',
  options: {
    data: {
      type: 'string',
      description: "evaluate on this file instead of the run's validation data",
      value: '<file>',
    },
    'exact-match-examples': {
      type: 'string',
      description: "examples scored by greedy exact match (default: the run's setting)",
      value: '<n>',
    },
    backend: { type: 'string', description: "compute backend (default: the run's)", value: '<name>' },
    json: jsonOption,
  },
  async run(args, io) {
    const target = positional(args, 0, 'run or checkpoint folder');
    const result = await evaluateRun(target, {
      data: stringArg(args, 'data'),
      exactMatchExamples: numberArg(args, 'exact-match-examples'),
      backend: stringArg(args, 'backend'),
    });
    if (args.values.json) {
      io.out(JSON.stringify(result, null, 2));
      return 0;
    }
    io.out(`checkpoint ${result.checkpoint} (step ${result.step})`);
    io.out(`data       ${result.data}, ${result.examples} examples`);
    for (const [name, value] of Object.entries(result.metrics))
      io.out(`${name.padEnd(10)} ${value.toPrecision(6)}`);
    return 0;
  },
};
