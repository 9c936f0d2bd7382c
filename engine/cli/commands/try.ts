import { selectBackend } from '../../backends/index.ts';
import { type Command, jsonOption, numberArg, positional, stringArg } from '../command.ts';
import { withService } from '../service.ts';

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
        if (args.values.json) io.out(JSON.stringify(result, null, 2));
        else {
          io.out(`checkpoint ${result.checkpoint}`);
          for (const [side, r] of [
            ['base', result.base],
            ['adapted', result.adapted],
          ] as const) {
            const p = r.probabilities.map((x) => `${x.label} ${x.p.toFixed(3)}`).join(', ');
            io.out(`${side.padEnd(8)} ${r.label}  (${p})`);
          }
        }
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
      if (args.values.json) io.out(JSON.stringify(result, null, 2));
      else {
        io.out(`checkpoint ${result.checkpoint}`);
        for (const [side, r] of [
          ['base', result.base],
          ['adapted', result.adapted],
        ] as const) {
          io.out(`${side.padEnd(8)} ${JSON.stringify(r.text)}  (${r.tokens} tokens, ${Math.round(r.ms)} ms)`);
        }
      }
      return 0;
    });
  },
};
