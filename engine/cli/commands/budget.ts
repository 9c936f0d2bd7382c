import { type Budget, computeBudget } from '../../adapters/budget.ts';
import { getMethod, methodNames } from '../../adapters/registry.ts';
import type { MethodName } from '../../adapters/types.ts';
import { availableMemoryBytes } from '../../io/memory.ts';
import { readModelConfig, specFromConfig, type TaskKind } from '../../models/index.ts';
import {
  CliError,
  type Command,
  type CommandIO,
  jsonOption,
  numberArg,
  type OptionSpec,
  type ParsedArgs,
  positional,
  stringArg,
} from '../command.ts';
import { formatBytes, table } from '../format.ts';
import { methodConfigFromArgs, methodConfigsFromArgs, methodOptions } from '../options.ts';
import { withService } from '../service.ts';

const own: Record<string, OptionSpec> = {
  method: {
    type: 'string',
    description: `adapter method (${methodNames().join(', ')})`,
    default: 'lora',
    value: '<name>',
  },
  'batch-size': {
    type: 'string',
    description: 'sequences per step, for the memory estimate',
    default: '1',
    value: '<n>',
  },
  'seq-len': {
    type: 'string',
    description: 'tokens per sequence, for the memory estimate',
    default: '512',
    value: '<n>',
  },
  'grad-accum-steps': {
    type: 'string',
    description: 'micro-batches per optimizer step, for the memory estimate',
    default: '1',
    value: '<n>',
  },
  'gradient-checkpointing': {
    type: 'string',
    description: 'on or off: which of the two memory totals is the estimate',
    default: 'off',
    value: '<on|off>',
  },
  task: { type: 'string', description: 'causal-lm or seq-cls (default: from config.json)', value: '<task>' },
  'num-labels': { type: 'string', description: 'labels of a seq-cls head', value: '<n>' },
  compare: {
    type: 'string',
    description:
      'compare methods on the same model (comma list, e.g. lora,vera,tinylora): each takes the method options it has',
    value: '<methods>',
  },
  json: jsonOption,
};

const methodFlags = methodOptions(own);
const options: Record<string, OptionSpec> = { ...own, ...methodFlags.options };

function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** Modules grouped by their last two name parts and count (28 × q_proj …), in first-seen order. */
function groupModules(budget: Budget): string[][] {
  const groups = new Map<string, { n: number; trainable: number; frozen: number; shape: string }>();
  for (const m of budget.targets) {
    const short = m.name.split('.').slice(-2).join('.');
    const key = `${short}|${m.trainable}|${m.frozen}`;
    const g = groups.get(key);
    if (g) g.n++;
    else
      groups.set(key, {
        n: 1,
        trainable: m.trainable,
        frozen: m.frozen,
        shape: `${m.kind} ${m.inFeatures}→${m.outFeatures}`,
      });
  }
  return [...groups].map(([key, g]) => [
    `  ${key.split('|')[0]}`,
    `×${g.n}`,
    g.shape,
    `${count(g.trainable)} each`,
    g.frozen ? `(+${count(g.frozen)} frozen)` : '',
  ]);
}

export function renderBudget(budget: Budget, available = availableMemoryBytes()): string {
  const { model, files, memory } = budget;
  const fileParts = [
    files.peft !== null
      ? `PEFT ${formatBytes(files.peft)} (${count(files.peft)} B)`
      : 'PEFT: not a PEFT method',
    files.lora !== null ? `LoRA ${formatBytes(files.lora)}` : 'LoRA: not low-rank',
    `native ${formatBytes(files.native)}`,
    `merged model ${formatBytes(files.merged)}`,
  ];
  return [
    `model      ${model.architecture} (${model.modelType}, ${model.task}), ${count(model.numParameters)} parameters`,
    `method     ${budget.method} ${JSON.stringify(budget.config)}`,
    `targets    ${budget.targets.length} modules`,
    ...table(groupModules(budget)),
    ...budget.shared.map(
      (t) => `  shared ${t.name} [${t.shape.join(', ')}]${t.trainable ? '' : ' (frozen)'}`,
    ),
    `trainable  ${count(budget.trainable)} (${budget.trainablePercent.toFixed(4)}% of ${count(budget.allParameters)})`,
    `frozen     ${count(budget.frozen)} adapter values (buffers, not counted as trainable)`,
    `PEFT       ${budget.peftLine}`,
    `files      ${fileParts.join(' · ')}`,
    `memory     ~${formatBytes(memory.total)} peak for batch ${memory.batchSize} × ${memory.seqLen} tokens${
      memory.checkpointing ? ' with gradient checkpointing' : ''
    }: weights ${formatBytes(memory.weights)} (${memory.weightsDtype}), adapter ${formatBytes(
      memory.adapter,
    )}, gradients ${formatBytes(memory.gradients)}, AdamW ${formatBytes(memory.optimizer)}, activations ~${formatBytes(
      memory.activations,
    )}, runtime ${formatBytes(memory.runtime)}`,
    `           ~${formatBytes(memory.totalWithCheckpointing)} with gradient checkpointing, ~${formatBytes(
      memory.totalWithoutCheckpointing,
    )} without; ${formatBytes(available)} available now`,
  ].join('\n');
}

function checkpointingOf(args: ParsedArgs): boolean {
  const value = stringArg(args, 'gradient-checkpointing') ?? 'off';
  if (value !== 'on' && value !== 'off')
    throw new CliError(`--gradient-checkpointing must be on or off, got "${value}"`, 2);
  return value === 'on';
}

function taskOf(args: ParsedArgs): TaskKind | undefined {
  const task = stringArg(args, 'task');
  if (task !== undefined && task !== 'causal-lm' && task !== 'seq-cls') {
    throw new CliError(`--task must be causal-lm or seq-cls, got "${task}"`, 2);
  }
  return task;
}

/** The app's budget comparison (budget.compare): one row per method, or the reason it does not apply. */
async function compareBudgets(path: string, list: string, args: ParsedArgs, io: CommandIO): Promise<number> {
  const names = list
    .split(',')
    .map((m) => m.trim())
    .filter(Boolean);
  if (names.length === 0) throw new CliError('--compare needs method names, e.g. lora,vera', 2);
  const candidates = methodConfigsFromArgs(names, args, methodFlags.owners) as {
    method: MethodName;
    config: Record<string, unknown>;
  }[];
  const rows = await withService((call) =>
    call('budget.compare', {
      modelDir: path,
      candidates,
      task: taskOf(args),
      batchSize: numberArg(args, 'batch-size'),
      seqLen: numberArg(args, 'seq-len'),
    }),
  );
  if (args.values.json) {
    io.out(JSON.stringify(rows, null, 2));
    return 0;
  }
  const cells = rows.map((b) =>
    'error' in b
      ? [b.method, b.error, '', '', '']
      : [
          b.method,
          count(b.trainable),
          `${b.percentOfModel.toFixed(4)}%`,
          b.fileBytes.peft !== undefined ? formatBytes(b.fileBytes.peft) : '—',
          `~${formatBytes(b.memoryBytes)}`,
        ],
  );
  for (const line of table([['method', 'trainable', 'of model', 'PEFT file', 'memory'], ...cells]))
    io.out(line);
  return 0;
}

export const command: Command = {
  name: 'budget',
  summary:
    'Trainable parameters, adapter file sizes and a training-memory estimate for a method on a model, from config.json alone. Method options are the fields of the method config, as kebab-case flags.',
  usage:
    '<model-dir|config.json> [--method <name> | --compare <methods>] [method options] [--batch-size <n>] [--seq-len <n>] [--json]',
  options,
  async run(args, io) {
    const path = positional(args, 0, 'model folder or config.json');
    const compare = stringArg(args, 'compare');
    if (compare !== undefined) return compareBudgets(path, compare, args, io);
    const method = getMethod(stringArg(args, 'method') ?? 'lora');
    const config = methodConfigFromArgs(method.name, args, methodFlags.owners);
    const taskArg = taskOf(args);
    const numLabels = numberArg(args, 'num-labels');
    const modelConfig = await readModelConfig(path);
    const spec = specFromConfig(modelConfig, {
      ...(taskArg ? { task: taskArg } : {}),
      ...(numLabels !== undefined ? { numLabels } : {}),
    });
    const budget = computeBudget(spec, method.name, config, {
      batchSize: numberArg(args, 'batch-size'),
      seqLen: numberArg(args, 'seq-len'),
      gradAccumSteps: numberArg(args, 'grad-accum-steps'),
      checkpointing: checkpointingOf(args),
    });
    io.out(args.values.json ? JSON.stringify(budget, null, 2) : renderBudget(budget));
    return 0;
  },
};
