import { promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  type ArchConfig,
  archConfig,
  checkWeights,
  loadTokenizer,
  type ModelSpec,
  readModelConfig,
  specFromConfig,
  type TaskKind,
  type WeightsReport,
} from '../../models/index.ts';
import { CliError, type Command, jsonOption, numberArg, positional, stringArg } from '../command.ts';
import { formatBytes, table } from '../format.ts';

interface TokenizerReport {
  vocabSize: number;
  bosTokenId: number | null;
  eosTokenId: number | null;
  padTokenId: number | null;
  chatTemplate: boolean;
}

function formatCount(n: number): string {
  const short =
    n >= 1e9
      ? `${(n / 1e9).toFixed(2)}B`
      : n >= 1e6
        ? `${(n / 1e6).toFixed(1)}M`
        : `${(n / 1e3).toFixed(1)}K`;
  return `${n.toLocaleString('en-US')} (${short})`;
}

function render(
  spec: ModelSpec,
  arch: ArchConfig,
  weights: WeightsReport | null,
  tok: TokenizerReport | null,
) {
  const lines = [
    `architecture  ${spec.architecture} (model_type ${spec.modelType}, task ${spec.task}${
      spec.numLabels !== undefined ? `, ${spec.numLabels} labels` : ''
    })`,
    `parameters    ${formatCount(spec.numParameters)}`,
    `layers        ${spec.numLayers}, hidden ${spec.hiddenSize}, heads ${arch.numHeads}${
      arch.numKvHeads !== arch.numHeads ? ` (${arch.numKvHeads} key/value)` : ''
    }, vocab ${spec.vocabSize}`,
  ];
  if (weights) {
    const dtypes = Object.entries(weights.dtypes)
      .map(([d, n]) => `${d} ×${n}`)
      .join(', ');
    lines.push(
      `weights       ${weights.files.length} file${weights.files.length === 1 ? '' : 's'}, ${formatBytes(weights.bytes)} (${dtypes})`,
    );
    if (weights.newlyInitialized.length > 0) {
      lines.push(
        `              not in checkpoint, initialised at load: ${weights.newlyInitialized.join(', ')}`,
      );
    }
  }
  if (tok) {
    lines.push(
      `tokenizer     vocab ${tok.vocabSize}, bos ${tok.bosTokenId ?? '-'}, eos ${tok.eosTokenId ?? '-'}, pad ${
        tok.padTokenId ?? '-'
      }, chat template ${tok.chatTemplate ? 'yes' : 'no'}`,
    );
  }
  lines.push('', 'modules');
  const rows = [['name', 'type', 'shape', 'params', 'adapter target']];
  for (const m of spec.modules) {
    const target = m.adaptable
      ? `${m.adaptable} ${m.inFeatures}→${m.outFeatures}${m.isOutputHead ? ' (output head)' : ''}${
          m.tiedTo ? ` (tied to ${m.tiedTo})` : ''
        }`
      : '';
    rows.push([m.name, m.type, `[${m.shape.join(', ')}]`, m.params.toLocaleString('en-US'), target]);
  }
  lines.push(...table(rows).map((l) => `  ${l}`));
  return lines.join('\n');
}

export const command: Command = {
  name: 'inspect',
  summary: 'show a model folder: architecture, parameter count, module tree',
  usage: '<model-dir|config.json> [--json] [--config-only]',
  options: {
    json: jsonOption,
    'config-only': {
      type: 'boolean',
      description: 'read config.json only (no weights or tokenizer needed)',
    },
    task: {
      type: 'string',
      description: 'causal-lm or seq-cls (default: from config.json)',
      value: '<task>',
    },
    'num-labels': { type: 'string', description: 'labels of a seq-cls head', value: '<n>' },
  },
  async run(args, io) {
    const target = positional(args, 0, 'model folder or config.json');
    const task = stringArg(args, 'task');
    if (task !== undefined && task !== 'causal-lm' && task !== 'seq-cls') {
      throw new CliError(`--task must be causal-lm or seq-cls, got "${task}"`, 2);
    }
    const opts = { task: task as TaskKind | undefined, numLabels: numberArg(args, 'num-labels') };
    const config = await readModelConfig(target);
    const spec = specFromConfig(config, opts);
    const arch = archConfig(config, opts);
    const configOnly = args.values['config-only'] === true || target.endsWith('.json');
    let weights: WeightsReport | null = null;
    let tokenizer: TokenizerReport | null = null;
    if (!configOnly) {
      const dir = (await fs.stat(target)).isDirectory() ? target : dirname(target);
      weights = await checkWeights(dir, opts);
      const hasTokenizer = await fs
        .access(join(dir, 'tokenizer.json'))
        .then(() => true)
        .catch(() => false);
      if (hasTokenizer) {
        const tok = await loadTokenizer(dir);
        tokenizer = {
          vocabSize: tok.vocabSize,
          bosTokenId: tok.bosTokenId,
          eosTokenId: tok.eosTokenId,
          padTokenId: tok.padTokenId,
          chatTemplate: tok.chatTemplate !== null,
        };
      }
    }
    if (args.values.json) {
      const { config: _config, ...rest } = spec;
      io.out(JSON.stringify({ path: target, ...rest, weights, tokenizer }, null, 2));
    } else {
      io.out(render(spec, arch, weights, tokenizer));
    }
    return 0;
  },
};
