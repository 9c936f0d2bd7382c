import { resolve } from 'node:path';
import { type ExportFormat, exportFormats, exportRun } from '../../export/index.ts';
import { activateRunBackend } from '../../runs/index.ts';
import { CliError, type Command, jsonOption, numberArg, positional, stringArg } from '../command.ts';
import { formatBytes } from '../format.ts';

const formatHelp: Record<ExportFormat, string> = {
  peft: 'PEFT adapter folder (adapter_model.safetensors + adapter_config.json), loads with PeftModel.from_pretrained',
  lora: 'any low-rank adapter converted to a plain PEFT LoRA adapter (scaling 1, per-module ranks via rank_pattern)',
  merged:
    'complete model folder with the adapter folded in (dtypes and shards as the base, config and tokenizer copied)',
  native: 'self-contained run folder with adapter, optimizer and RNG state, for `studio resume`',
};

export const command: Command = {
  name: 'export',
  summary: 'export a run: PEFT adapter, LoRA conversion, merged model or native checkpoint',
  usage: '<run-or-checkpoint> --format peft|lora|merged|native --out <dir> [--force] [--json]',
  options: {
    format: {
      type: 'string',
      value: '<format>',
      description: `one of: ${exportFormats.map((f) => `${f} (${formatHelp[f]})`).join('; ')}`,
    },
    out: {
      type: 'string',
      value: '<dir>',
      description:
        'output folder: new, empty or an earlier export (replaced only once the export is verified)',
    },
    adapter: {
      type: 'string',
      value: '<name>',
      description: "adapter name to export (default: the run's adapter)",
    },
    'base-model': {
      type: 'string',
      value: '<name>',
      description:
        "base_model_name_or_path in adapter_config.json (default: the config's _name_or_path or the model folder)",
    },
    'max-shard-mb': {
      type: 'string',
      value: '<MB>',
      description: 'merged: largest shard when the base model was a single file (default 5000)',
    },
    force: {
      type: 'boolean',
      description:
        'replace --out even when it is a non-empty folder that no export wrote (everything in it is deleted)',
    },
    backend: { type: 'string', value: '<name>', description: "compute backend (default: the run's)" },
    json: jsonOption,
  },
  async run(args, io) {
    const source = positional(args, 0, 'run or checkpoint folder');
    const format = stringArg(args, 'format', true);
    if (!(exportFormats as readonly string[]).includes(format)) {
      throw new CliError(`--format must be one of ${exportFormats.join(', ')}, got "${format}"`, 2);
    }
    const out = resolve(stringArg(args, 'out', true));
    const maxShardMb = numberArg(args, 'max-shard-mb');
    if (maxShardMb !== undefined && maxShardMb <= 0) throw new CliError('--max-shard-mb must be positive', 2);
    await activateRunBackend(source, stringArg(args, 'backend'));
    const result = await exportRun(resolve(source), {
      format: format as ExportFormat,
      out,
      adapterName: stringArg(args, 'adapter'),
      baseModelNameOrPath: stringArg(args, 'base-model'),
      maxShardBytes: maxShardMb === undefined ? undefined : Math.round(maxShardMb * 1_000_000),
      force: args.values.force === true,
    });
    if (args.values.json) {
      io.out(JSON.stringify(result, null, 2));
      return 0;
    }
    const v = result.verification;
    io.out(`${result.format} export written to ${result.out} (${formatBytes(result.bytes)})`);
    for (const file of result.files) io.out(`  ${file}`);
    io.out(
      `verified: ${v.method}; max |Δlogit| ${v.maxAbsDiff.toExponential(2)} (tolerance ${v.tolerance.toExponential(2)}, adapter effect ${v.adapterEffect.toExponential(2)})`,
    );
    return 0;
  },
};
