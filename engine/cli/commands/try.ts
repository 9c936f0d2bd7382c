import { selectBackend } from '../../backends/index.ts';
import {
  type Command,
  type CommandIO,
  jsonOption,
  numberArg,
  type ParsedArgs,
  positional,
  stringArg,
} from '../command.ts';
import { withService } from '../service.ts';

/** The checkpoint used, then one line for the base model and one for the adapter (or the whole reply as JSON). */
function show<T>(
  io: CommandIO,
  args: ParsedArgs,
  result: { base: T; adapted: T; checkpoint: string },
  line: (side: T) => string,
): void {
  if (args.values.json) {
    io.out(JSON.stringify(result, null, 2));
    return;
  }
  io.out(`checkpoint ${result.checkpoint}`);
  io.out(`base     ${line(result.base)}`);
  io.out(`adapted  ${line(result.adapted)}`);
}

export const command: Command = {
  name: 'try',
  summary:
    "Try a run's adapter on one input, next to the base model: a generation for a language-model run, the predicted label and probabilities for a classifier (the app's Try it view).",
  usage:
    '<run-dir> <prompt|text> [--max-new-tokens <n>] [--sampled] [--temperature <t>] [--top-k <k>] [--seed <n>] [--json]',
  options: {
    'max-new-tokens': { type: 'string', description: 'tokens to generate (default 32)', value: '<n>' },
    sampled: { type: 'boolean', description: 'sample instead of greedy decoding' },
    temperature: { type: 'string', description: 'sampling temperature (default 0.8)', value: '<t>' },
    'top-k': { type: 'string', description: 'sample from the k likeliest tokens (default 40)', value: '<k>' },
    seed: { type: 'string', description: 'sampling seed (default 0)', value: '<n>' },
    backend: { type: 'string', description: 'compute backend (default: automatic)', value: '<name>' },
    json: jsonOption,
  },
  async run(args, io) {
    const runDir = positional(args, 0, 'run folder');
    const input = positional(args, 1, 'prompt (or text to classify)');
    await selectBackend({ prefer: stringArg(args, 'backend') });
    return withService(async (call) => {
      const { run } = await call('runs.status', { runDir, maxPoints: 10 });
      if (run.config.task === 'seq-cls') {
        const result = await call('tryit.classify', { runDir, text: input });
        show(io, args, result, (r) => {
          const p = r.probabilities.map((x) => `${x.label} ${x.p.toFixed(3)}`).join(', ');
          return `${r.label}  (${p})`;
        });
        return 0;
      }
      const result = await call('tryit.generate', {
        runDir,
        prompt: input,
        options: {
          mode: args.values.sampled ? 'sampled' : 'greedy',
          maxNewTokens: numberArg(args, 'max-new-tokens'),
          temperature: numberArg(args, 'temperature'),
          topK: numberArg(args, 'top-k'),
          seed: numberArg(args, 'seed'),
        },
      });
      show(
        io,
        args,
        result,
        (r) => `${JSON.stringify(r.text)}  (${r.tokens} tokens, ${Math.round(r.ms)} ms)`,
      );
      return 0;
    });
  },
};
