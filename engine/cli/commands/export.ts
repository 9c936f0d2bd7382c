import { resolve } from 'node:path';
import { formatResizeSpec, parseResizeSpec, type ResizeSpec } from '../../analysis/resize.ts';
import {
  type ExportFormat,
  exportFormats,
  exportRun,
  GGUF_QUANTS,
  type GgufQuant,
  proposeRunResize,
} from '../../export/index.ts';
import { activateRunBackend } from '../../runs/index.ts';
import { CliError, type Command, jsonOption, numberArg, positional, stringArg } from '../command.ts';
import { formatBytes, table } from '../format.ts';

const formatHelp: Record<ExportFormat, string> = {
  peft: 'PEFT adapter folder (adapter_model.safetensors + adapter_config.json), loads with PeftModel.from_pretrained',
  lora: 'any low-rank adapter converted to a plain PEFT LoRA adapter (scaling 1, per-module ranks via rank_pattern)',
  merged:
    'complete model folder with the adapter folded in (dtypes and shards as the base, config and tokenizer copied)',
  native: 'self-contained run folder with adapter, optimizer and RNG state, for `studio resume`',
  gguf: 'the merged model as one GGUF file for llama.cpp, with an Ollama Modelfile',
  'gguf-lora':
    'the base model as GGUF plus the adapter as a GGUF LoRA (llama.cpp --lora, Ollama ADAPTER), with a Modelfile',
};

export const command: Command = {
  name: 'export',
  summary:
    'export a run: PEFT adapter, LoRA conversion (optionally resized), merged model, GGUF or native checkpoint',
  usage:
    '<run-or-checkpoint> --format peft|lora|merged|native|gguf|gguf-lora --out <dir> [--quant <q>] [--resize <criterion>=<value>] [--force] [--json]',
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
    quant: {
      type: 'string',
      value: '<q>',
      description: `gguf, gguf-lora: ${GGUF_QUANTS.join('|')} (default f16; q4_k_m as llama-quantize, with an f16 adapter for gguf-lora)`,
    },
    resize: {
      type: 'string',
      value: '<criterion>=<value>',
      description:
        "lora: per-module ranks from ΔW's singular values (kohya): sv_ratio=<σ₁/σᵢ limit>, sv_fro=<Frobenius kept>, sv_cumulative=<Σσ kept>, or size=<bytes, e.g. 2MB>; prints the ranks and the validation loss before writing",
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
    const quant = stringArg(args, 'quant');
    if (quant !== undefined && !(GGUF_QUANTS as readonly string[]).includes(quant)) {
      throw new CliError(`--quant must be one of ${GGUF_QUANTS.join(', ')}, got "${quant}"`, 2);
    }
    if (quant !== undefined && format !== 'gguf' && format !== 'gguf-lora') {
      throw new CliError('--quant applies to --format gguf and gguf-lora only', 2);
    }
    const resizeText = stringArg(args, 'resize');
    let resize: ResizeSpec | undefined;
    if (resizeText !== undefined) {
      if (format !== 'lora') throw new CliError('--resize applies to --format lora only', 2);
      try {
        resize = parseResizeSpec(resizeText);
      } catch (error) {
        throw new CliError(`--resize: ${(error as Error).message}`, 2);
      }
    }
    await activateRunBackend(source, stringArg(args, 'backend'));
    const proposed = resize ? await proposeRunResize(resolve(source), resize, { validate: true }) : null;
    if (proposed && !args.values.json) {
      const p = proposed.proposal;
      io.out(
        `resize ${formatResizeSpec(p.spec)}: ${formatBytes(p.bytesBefore)} → ${formatBytes(p.bytesAfter)}, energy kept ${(p.retainedEnergy * 100).toFixed(2)}%`,
      );
      for (const line of table([
        ['module', 'rank', 'new rank', 'Frobenius kept', 'energy kept', 'saved'],
        ...p.modules.map((m) => [
          m.module,
          String(m.rank),
          String(m.newRank),
          `${(m.retainedFrobenius * 100).toFixed(2)}%`,
          `${(m.retainedEnergy * 100).toFixed(2)}%`,
          formatBytes(m.bytesSaved),
        ]),
      ]))
        io.out(line);
      const v = proposed.validation;
      if (v) {
        io.out(
          `validation loss on ${v.examples} examples: adapter ${v.lossOriginal.toFixed(4)}, resized ${v.lossResized.toFixed(4)}, base model ${v.lossBase.toFixed(4)}`,
        );
      }
    }
    const result = await exportRun(resolve(source), {
      format: format as ExportFormat,
      out,
      adapterName: stringArg(args, 'adapter'),
      baseModelNameOrPath: stringArg(args, 'base-model'),
      maxShardBytes: maxShardMb === undefined ? undefined : Math.round(maxShardMb * 1_000_000),
      quant: quant as GgufQuant | undefined,
      resize,
      force: args.values.force === true,
    });
    if (args.values.json) {
      io.out(JSON.stringify(proposed ? { ...result, validation: proposed.validation } : result, null, 2));
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
