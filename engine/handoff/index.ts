import { promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ProjectSettings } from '../common/project-schema.ts';
import type { RawExample } from '../data/formats.ts';
import { readData } from '../data/prepare.ts';
import { writeDirAtomic } from '../io/atomic.ts';
import { newRunId, openProject, projectDataSources, projectPath } from '../project/store.ts';
import { HandoffError } from './errors.ts';
import {
  accelerateConfig,
  DEEPSPEED_REQUIREMENT,
  LAUNCH_ACCELERATE,
  LAUNCH_TORCHRUN,
  REQUIREMENTS,
  SLURM_SBATCH,
  STRATEGIES,
  type Strategy,
  skypilotTask,
} from './launchers.ts';
import { peftConfigOf } from './peft-config.ts';
import { STUDIO_METHODS_PY } from './studio-methods-py.ts';
import { TRAIN_PY } from './train-py.ts';

export { HandoffError } from './errors.ts';
export { STRATEGIES, type Strategy } from './launchers.ts';

export const HANDOFF_FILE = 'handoff.json';
export const HANDOFF_FILES = [
  'train.py',
  'studio_methods.py',
  HANDOFF_FILE,
  'requirements.txt',
  'accelerate-config.yaml',
  'launch-accelerate.sh',
  'launch-torchrun.sh',
  'slurm.sbatch',
  'skypilot.yaml',
  'README.md',
  'data/train.jsonl',
] as const;

export interface HandoffResult {
  outDir: string;
  strategy: Strategy;
  files: string[];
  /** Project settings the PEFT trainer does not reproduce exactly (named, so the user can decide). */
  warnings: string[];
}

/** One example as TRL reads it: prompt/completion (plain or conversational), messages, text, or a label row. */
function trlRecord(e: RawExample, labels: readonly string[] | undefined): Record<string, unknown> {
  if (e.kind === 'prompt-completion') return { prompt: e.prompt, completion: e.completion };
  if (e.kind === 'text') return { text: e.text };
  if (e.kind === 'chat') {
    const last = e.messages.length - 1;
    const single = e.messages.findIndex((m) => m.role === 'assistant') === last;
    // One closing assistant turn is exactly TRL's conversational prompt/completion (completion-only loss).
    return single
      ? { prompt: e.messages.slice(0, last), completion: [e.messages[last]] }
      : { messages: e.messages };
  }
  const record: Record<string, unknown> = { text: e.sentence, label: labels?.indexOf(e.label) ?? -1 };
  if (e.sentence2 !== undefined) record.text_pair = e.sentence2;
  return record;
}

function jsonl(examples: RawExample[], labels: readonly string[] | undefined): string {
  return examples.map((e) => `${JSON.stringify(trlRecord(e, labels))}\n`).join('');
}

/** transformers' TrainingArguments for the project's settings; `warnings` collects what does not carry over. */
function trainingArgs(settings: ProjectSettings, hasValidation: boolean, warnings: string[]) {
  const t = settings.training;
  if (!t.shuffle) warnings.push('training.shuffle = false: the transformers Trainer always shuffles');
  if (t.scalingLearningRate !== undefined || t.scalingWeightDecay > 0)
    warnings.push(
      'training.scalingLearningRate / scalingWeightDecay: the Trainer uses one parameter group (learningRate, weightDecay)',
    );
  if (t.earlyStoppingPatience > 0)
    warnings.push('training.earlyStoppingPatience: not carried over; the job trains every step');
  const args: Record<string, unknown> = {
    learning_rate: t.learningRate,
    lr_scheduler_type: t.schedule,
    // transformers 5 reads a warmup_steps below 1 as a fraction of the total steps.
    warmup_steps: t.warmupSteps > 0 ? t.warmupSteps : t.warmupRatio,
    weight_decay: t.weightDecay,
    adam_beta1: t.beta1,
    adam_beta2: t.beta2,
    adam_epsilon: t.eps,
    max_grad_norm: t.maxGradNorm,
    per_device_train_batch_size: t.batchSize,
    per_device_eval_batch_size: t.evalBatchSize ?? t.batchSize,
    gradient_accumulation_steps: t.gradAccumSteps,
    num_train_epochs: t.epochs,
    max_steps: t.maxSteps ?? -1,
    seed: t.seed,
    data_seed: t.seed,
    logging_steps: 1,
    include_num_input_tokens_seen: 'non_padding',
    eval_strategy: hasValidation && t.evalEvery > 0 ? 'steps' : 'no',
    save_strategy: t.checkpointEvery > 0 ? 'steps' : 'no',
    save_total_limit: t.keepCheckpoints,
    gradient_checkpointing: true,
    gradient_checkpointing_kwargs: { use_reentrant: false },
    // Every adapter tensor takes part in each forward pass; the extra graph walk only costs time.
    ddp_find_unused_parameters: false,
  };
  if (hasValidation && t.evalEvery > 0) args.eval_steps = t.evalEvery;
  if (t.checkpointEvery > 0) args.save_steps = t.checkpointEvery;
  return args;
}

function readme(settings: ProjectSettings, strategy: Strategy, warnings: string[], model: string): string {
  return `# ${settings.name}: training hand-off (${settings.method.name}, ${strategy})

Written by Adapter Studio (\`studio handoff\`). It trains the project's adapter with transformers + PEFT${
    settings.task === 'causal-lm' ? " + TRL's SFTTrainer" : "'s Trainer"
  }, with the project's method settings, targets and hyperparameters (see handoff.json).

## Run it
    pip install -r requirements.txt
    ./launch-accelerate.sh                      # one node, every visible GPU, ${strategy}
    NNODES=2 NODE_RANK=0 MASTER_ADDR=<node0> ./launch-torchrun.sh   # DDP on many nodes (run on each)
    sbatch slurm.sbatch                         # Slurm (edit --nodes / --gpus-per-node)
    sky launch -c adapter-studio skypilot.yaml  # SkyPilot
    python train.py --max-steps 2               # a smoke test on one device (CPU works)

The model is read from \`${model}\`; on another machine pass \`--model <folder or hub id>\` or set STUDIO_MODEL.
The batch size is per device: with N GPUs the effective batch is N × ${settings.training.batchSize} × ${settings.training.gradAccumSteps} (gradient accumulation).
bf16 is used where the GPU has it, float32 elsewhere; gradient checkpointing is on.

## What comes back
\`output/\`: \`adapter_model.safetensors\` + \`adapter_config.json\` (the final PEFT adapter),
\`checkpoint-<step>/\` (PEFT checkpoints with trainer_state.json), \`trainer_state.json\` (log history),
\`metrics.jsonl\` (the studio's live events: follow it while the job runs if the folder is shared) and
\`handoff-run.json\` (where it ran). Bring the run back, curves and checkpoints included, with
\`studio import-run output --project <project>\`.${
    settings.method.name === 'tlora' || settings.method.name === 'loraxs'
      ? `\n\n${settings.method.name === 'tlora' ? 'TLoRA' : 'LoRA-XS'} is not in PEFT: studio_methods.py registers it as a PEFT custom method (peft_type ${settings.method.name.toUpperCase()}), with its frozen matrices saved in the adapter file. To load the adapter elsewhere, \`import studio_methods\` before \`PeftModel.from_pretrained\`.`
      : ''
  }
${warnings.length ? `\n## Not reproduced exactly\n${warnings.map((w) => `- ${w}`).join('\n')}\n` : ''}`;
}

async function isNonEmptyDir(path: string): Promise<boolean> {
  try {
    return (await fs.readdir(path)).length > 0;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return false;
    if (code === 'ENOTDIR') return true;
    throw error;
  }
}

/**
 * Writes a folder that trains the project on a cluster with accelerate / torchrun / Slurm / SkyPilot. It is
 * built in a temp sibling and renamed into place, so a failure leaves nothing; a non-empty `outDir` is refused.
 */
export async function writeHandoff(
  projectDir: string,
  outDir: string,
  options: { strategy?: Strategy } = {},
): Promise<HandoffResult> {
  const strategy = options.strategy ?? 'ddp';
  if (!(STRATEGIES as readonly string[]).includes(strategy))
    throw new HandoffError(`unknown strategy "${strategy}" (use ${STRATEGIES.join(', ')})`);
  const out = resolve(outDir);
  if (await isNonEmptyDir(out))
    throw new HandoffError(`${out}: the destination exists and is not empty; choose a new folder`);
  const project = await openProject(projectDir);
  const { settings } = project;
  const modelDir = projectPath(project.dir, settings.model);
  const modelConfig = JSON.parse(await fs.readFile(join(modelDir, 'config.json'), 'utf8')) as {
    model_type?: string;
  };
  const peft = peftConfigOf(settings, modelConfig.model_type);
  const warnings: string[] = [];
  const raw = await readData(projectDataSources(project.dir, settings));
  const hasValidation = raw.validation.length > 0;
  const conversational = raw.train.some((e) => e.kind === 'chat');
  const multiTurn = [...raw.train, ...raw.validation].some(
    (e) => e.kind === 'chat' && e.messages.filter((m) => m.role === 'assistant').length > 1,
  );
  if (multiTurn && settings.training.lossOn === 'completion')
    warnings.push(
      "chat data with several assistant turns: TRL's assistant_only_loss needs a chat template with {% generation %} markers",
    );
  const data: Record<string, string> = { train: 'data/train.jsonl' };
  if (hasValidation) data.validation = 'data/validation.jsonl';
  const completionOnly = settings.training.lossOn === 'completion';
  const handoff = {
    project: settings.name,
    runId: newRunId(),
    model: modelDir,
    task: settings.task,
    method: settings.method.name,
    strategy,
    labels: raw.labels ?? settings.data.labels ?? null,
    maxLength: settings.training.maxSeqLen,
    data,
    evalAtEnd: true,
    peft,
    trainingArgs: trainingArgs(settings, hasValidation, warnings),
    sftArgs: {
      max_length: settings.training.maxSeqLen,
      packing: false,
      completion_only_loss: completionOnly,
      assistant_only_loss: completionOnly && multiTurn,
      ...(conversational ? {} : { dataset_text_field: 'text' }),
    },
  };
  const requirements = [...REQUIREMENTS, ...(strategy.startsWith('zero') ? [DEEPSPEED_REQUIREMENT] : [])];
  const files: Record<string, string> = {
    'train.py': TRAIN_PY,
    'studio_methods.py': STUDIO_METHODS_PY,
    [HANDOFF_FILE]: `${JSON.stringify(handoff, null, 2)}\n`,
    'requirements.txt': `${requirements.join('\n')}\n`,
    'accelerate-config.yaml': accelerateConfig(
      strategy,
      settings.training.gradAccumSteps,
      settings.training.maxGradNorm,
    ),
    'launch-accelerate.sh': LAUNCH_ACCELERATE,
    'launch-torchrun.sh': LAUNCH_TORCHRUN,
    'slurm.sbatch': SLURM_SBATCH,
    'skypilot.yaml': skypilotTask(settings.name),
    'README.md': readme(settings, strategy, warnings, modelDir),
    'data/train.jsonl': jsonl(raw.train, handoff.labels ?? undefined),
  };
  if (hasValidation) files['data/validation.jsonl'] = jsonl(raw.validation, handoff.labels ?? undefined);
  await fs.mkdir(resolve(out, '..'), { recursive: true });
  // An empty destination folder is replaced by the finished one.
  await writeDirAtomic(out, async (tmp) => {
    await fs.mkdir(join(tmp, 'data'));
    for (const [name, text] of Object.entries(files)) {
      const executable = name.endsWith('.sh') || name === 'slurm.sbatch' || name === 'train.py';
      await fs.writeFile(join(tmp, name), text, { mode: executable ? 0o755 : 0o644 });
    }
  });
  return { outDir: out, strategy, files: Object.keys(files), warnings };
}
