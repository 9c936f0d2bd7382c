import { resolve } from 'node:path';
import { methodNames } from '../../adapters/registry.ts';
import { TaskKindSchema } from '../../common/project-schema.ts';
import { defaultTask, readModelConfig, type TaskKind } from '../../models/index.ts';
import { createProject } from '../../project/store.ts';
import {
  CliError,
  type Command,
  jsonOption,
  numberArg,
  type OptionSpec,
  positional,
  stringArg,
} from '../command.ts';
import { methodConfigFromArgs, methodOptions, trainingFromArgs, trainingOptions } from '../options.ts';

const own: Record<string, OptionSpec> = {
  model: {
    type: 'string',
    description: 'model folder (config.json, safetensors, tokenizer.json)',
    value: '<dir>',
  },
  data: { type: 'string', description: 'training data (.jsonl, .csv, .tsv)', value: '<file>' },
  validation: { type: 'string', description: 'validation data file', value: '<file>' },
  'val-fraction': {
    type: 'string',
    description: 'hold out this fraction of the training data for validation',
    value: '<f>',
  },
  method: {
    type: 'string',
    description: `adapter method (${methodNames().join(', ')})`,
    default: 'lora',
    value: '<name>',
  },
  task: {
    type: 'string',
    description: 'causal-lm or seq-cls (default: from the model config)',
    value: '<task>',
  },
  format: {
    type: 'string',
    description: 'data format jsonl, csv or tsv (default: from the extension)',
    value: '<fmt>',
  },
  labels: {
    type: 'string',
    description: 'classification label names in id order (default: from the data)',
    value: '<a,b,…>',
  },
  name: { type: 'string', description: 'project name (default: the folder name)', value: '<name>' },
  backend: {
    type: 'string',
    description: 'compute backend: auto, cuda, webgpu, native, wasm, cpu',
    default: 'auto',
    value: '<name>',
  },
  force: { type: 'boolean', description: 'overwrite an existing project.json' },
  json: jsonOption,
};

const training = trainingOptions();
for (const flag of Object.keys(training)) {
  if (flag in own) throw new Error(`init: training flag --${flag} collides with a command option`);
}
const methods = methodOptions({ ...own, ...training });

export const command: Command = {
  name: 'init',
  summary:
    'Create a project folder for a model, a dataset and an adapter method. Method options are the fields of the method config and training options the fields of project.json "training", as kebab-case flags.',
  usage:
    '<dir> --model <model-dir> --data <file> [--validation <file>|--val-fraction 0.1] [--method <name>] [method options] [training options] [--json]',
  options: { ...own, ...training, ...methods.options },
  async run(args, io) {
    const dir = positional(args, 0, 'project folder');
    const model = stringArg(args, 'model', true);
    const data = stringArg(args, 'data', true);
    const method = stringArg(args, 'method') ?? 'lora';
    const config = methodConfigFromArgs(method, args, methods.owners);
    const taskArg = stringArg(args, 'task');
    let task: TaskKind;
    if (taskArg !== undefined) {
      const parsed = TaskKindSchema.safeParse(taskArg);
      if (!parsed.success) throw new CliError(`--task must be causal-lm or seq-cls, got "${taskArg}"`, 2);
      task = parsed.data;
    } else {
      task = defaultTask(await readModelConfig(resolve(model)));
    }
    const format = stringArg(args, 'format');
    if (format !== undefined && !['jsonl', 'csv', 'tsv'].includes(format)) {
      throw new CliError(`--format must be jsonl, csv or tsv, got "${format}"`, 2);
    }
    const labels = stringArg(args, 'labels')
      ?.split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    const project = await createProject(
      dir,
      {
        name: stringArg(args, 'name'),
        model,
        task,
        data: {
          train: data,
          validation: stringArg(args, 'validation'),
          valFraction: numberArg(args, 'val-fraction') ?? 0,
          format: format as 'jsonl' | 'csv' | 'tsv' | undefined,
          labels,
        },
        method: { name: method as 'lora', config },
        training: trainingFromArgs(args),
        backend: stringArg(args, 'backend'),
      },
      { overwrite: args.values.force === true },
    );
    if (args.values.json) {
      io.out(JSON.stringify({ dir: project.dir, settings: project.settings }, null, 2));
      return 0;
    }
    const s = project.settings;
    io.out(
      [
        `created ${project.dir}/project.json`,
        `model    ${s.model} (${s.task})`,
        `data     ${s.data.train}${s.data.validation ? `, validation ${s.data.validation}` : s.data.valFraction > 0 ? `, ${s.data.valFraction} held out` : ''}`,
        ...(s.data.labels ? [`labels   ${s.data.labels.map((l, i) => `${i}=${l}`).join(' ')}`] : []),
        `method   ${s.method.name} ${JSON.stringify(s.method.config)}`,
        `train    lr ${s.training.learningRate}, batch ${s.training.batchSize}×${s.training.gradAccumSteps}, ${s.training.maxSteps ? `${s.training.maxSteps} steps` : `${s.training.epochs} epochs`}, seed ${s.training.seed}`,
        `next     studio train ${dir}`,
      ].join('\n'),
    );
    return 0;
  },
};
