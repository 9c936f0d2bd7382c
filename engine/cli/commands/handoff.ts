import { resolve } from 'node:path';
import { STRATEGIES, type Strategy, writeHandoff } from '../../handoff/index.ts';
import { CliError, type Command, jsonOption, positional, stringArg } from '../command.ts';

export const command: Command = {
  name: 'handoff',
  summary:
    "Write a folder that trains the project on a cluster with transformers + PEFT (TRL's SFTTrainer for causal LM): train.py reproducing the method, targets and hyperparameters, pinned requirements, an accelerate config (DDP, FSDP, DeepSpeed ZeRO-2/3), launchers for accelerate, torchrun, Slurm and SkyPilot, the data as JSONL and a README. TLoRA and LoRA-XS come as PEFT custom methods (studio_methods.py, frozen matrices saved in the adapter); MoSLoRA is refused.",
  usage: '<project-dir> --out <dir> [--strategy ddp|fsdp|zero2|zero3] [--json]',
  options: {
    out: { type: 'string', description: 'the folder to write (new or empty)', value: '<dir>' },
    strategy: {
      type: 'string',
      description: `distribution strategy (${STRATEGIES.join(', ')})`,
      default: 'ddp',
      value: '<name>',
    },
    json: jsonOption,
  },
  async run(args, io) {
    const project = resolve(positional(args, 0, 'project folder'));
    const out = resolve(stringArg(args, 'out', true));
    const strategy = stringArg(args, 'strategy') ?? 'ddp';
    if (!(STRATEGIES as readonly string[]).includes(strategy))
      throw new CliError(`--strategy must be one of ${STRATEGIES.join(', ')}, got "${strategy}"`);
    const result = await writeHandoff(project, out, { strategy: strategy as Strategy });
    if (args.values.json) {
      io.out(JSON.stringify(result, null, 2));
      return 0;
    }
    for (const warning of result.warnings) io.err(`warning: ${warning}`);
    io.out(`wrote ${result.outDir} (${result.strategy}): ${result.files.length} files`);
    io.out(`  run       cd ${result.outDir} && pip install -r requirements.txt && ./launch-accelerate.sh`);
    io.out(`  smoke     python train.py --max-steps 2`);
    io.out(
      `  comes back in ${result.outDir}/output (PEFT adapter, checkpoints, trainer_state.json, metrics.jsonl)`,
    );
    io.out(`  bring back studio import-run ${result.outDir}/output --project ${project}`);
    return 0;
  },
};
