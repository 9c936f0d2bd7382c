import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { findPython, pythonOrSkip } from '../testing/python.ts';
import { HANDOFF_FILES, HandoffError, STRATEGIES, writeHandoff } from './index.ts';
import { REQUIREMENTS } from './launchers.ts';
import { demoProject } from './testing.ts';

const REPO = resolve(import.meta.dirname, '..', '..');
let root: string;
let project: string;
beforeAll(async () => {
  ({ root, project } = await demoProject(
    { name: 'lora', config: { r: 16, loraAlpha: 32, useRslora: true, useDora: true, dropout: 0.05 } },
    { learningRate: 1e-4, schedule: 'cosine', warmupRatio: 0.1, beta2: 0.95, eps: 1e-6, gradAccumSteps: 4 },
  ));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const read = (dir: string, file: string) => readFileSync(join(dir, file), 'utf8');

describe('writeHandoff', () => {
  test('writes every file, executable launchers, and the data as TRL prompt/completion JSONL', async () => {
    const out = join(root, 'files');
    const result = await writeHandoff(project, out);
    for (const file of [...HANDOFF_FILES, 'data/validation.jsonl'])
      expect(existsSync(join(out, file)), file).toBe(true);
    expect(readdirSync(root).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    for (const file of ['launch-accelerate.sh', 'launch-torchrun.sh', 'slurm.sbatch'])
      expect(statSync(join(out, file)).mode & 0o111, file).not.toBe(0);
    const train = read(out, 'data/train.jsonl').trim().split('\n');
    const source = readFileSync(join(REPO, 'assets/demo/data/train.jsonl'), 'utf8').trim().split('\n');
    expect(train.length).toBe(source.length);
    expect(Object.keys(JSON.parse(train[0]))).toEqual(['prompt', 'completion']);
    expect(JSON.parse(train[0])).toEqual(JSON.parse(source[0]));
    expect(result.files).toContain('data/validation.jsonl');
  });

  test('maps the method to PEFT and the hyperparameters to TrainingArguments / SFTConfig', async () => {
    const out = join(root, 'mapped');
    await writeHandoff(project, out);
    const h = JSON.parse(read(out, 'handoff.json'));
    expect(h.peft).toEqual({
      module: 'peft',
      className: 'LoraConfig',
      kwargs: {
        task_type: 'CAUSAL_LM',
        r: 16,
        lora_alpha: 32,
        lora_dropout: 0.05,
        use_rslora: true,
        use_dora: true,
        init_lora_weights: true,
        rank_pattern: {},
        alpha_pattern: {},
        target_modules: ['q_proj', 'v_proj'],
      },
    });
    expect(h.trainingArgs).toMatchObject({
      learning_rate: 1e-4,
      lr_scheduler_type: 'cosine',
      warmup_steps: 0.1,
      adam_beta2: 0.95,
      adam_epsilon: 1e-6,
      gradient_accumulation_steps: 4,
      per_device_train_batch_size: 8,
      num_train_epochs: 3,
      max_steps: -1,
      seed: 0,
      save_strategy: 'steps',
      save_steps: 50,
      save_total_limit: 3,
      gradient_checkpointing: true,
    });
    expect(h.sftArgs).toMatchObject({ max_length: 256, completion_only_loss: true });
  });

  test.each(STRATEGIES)('the accelerate config for %s has its strategy keys', async (strategy) => {
    const out = join(root, `strategy-${strategy}`);
    await writeHandoff(project, out, { strategy });
    const yaml = read(out, 'accelerate-config.yaml');
    const type = { ddp: 'MULTI_GPU', fsdp: 'FSDP', zero2: 'DEEPSPEED', zero3: 'DEEPSPEED' }[strategy];
    expect(yaml).toContain(`distributed_type: ${type}\n`);
    expect(yaml.includes('fsdp_use_orig_params: true')).toBe(strategy === 'fsdp');
    if (strategy.startsWith('zero')) {
      expect(yaml).toContain(`  zero_stage: ${strategy === 'zero2' ? 2 : 3}\n`);
      expect(yaml).toContain('  gradient_accumulation_steps: 4\n');
      expect(read(out, 'requirements.txt')).toMatch(/^deepspeed==/m);
    } else {
      expect(read(out, 'requirements.txt')).not.toContain('deepspeed');
    }
    expect(JSON.parse(read(out, 'handoff.json')).strategy).toBe(strategy);
  });

  /** What `accelerate launch` makes of the config: the environment its processes would start with. */
  const ACCELERATE_ENV = `import json
from accelerate.commands.launch import launch_command_parser, _validate_launch_command
from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env
args = launch_command_parser().parse_args(["--config_file", "accelerate-config.yaml", "--num_processes", "2", "train.py"])
args, defaults, _ = _validate_launch_command(args)
if args.use_deepspeed:
    # as launch_command does before deepspeed_launcher
    args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config.keys())
    env = prepare_deepspeed_cmd_env(args)[1]
else:
    env = prepare_multi_gpu_env(args)
print(json.dumps({k: v for k, v in env.items() if k.startswith(("ACCELERATE_USE", "ACCELERATE_DEEPSPEED", "FSDP_"))}))`;

  test.each(
    STRATEGIES,
  )("accelerate's own launcher reads the %s config as that strategy", async (strategy) => {
    const python = pythonOrSkip(['accelerate']);
    if (!python) return;
    const out = join(root, `launch-${strategy}`);
    await writeHandoff(project, out, { strategy });
    // FSDP and DeepSpeed need GPUs to run (accelerate refuses FSDP without one), so this checks what the
    // launcher hands the processes; the DDP bundle is run for real in run-elsewhere.test.ts.
    const probe = spawnSync(python, ['-c', ACCELERATE_ENV], {
      cwd: out,
      encoding: 'utf8',
      env: { ...process.env, CUDA_VISIBLE_DEVICES: '' },
      timeout: 120_000,
    });
    expect(probe.status, probe.stderr.slice(-3000)).toBe(0);
    const env = JSON.parse(probe.stdout.trim().split('\n').pop() ?? '{}');
    const expected = {
      ddp: {},
      fsdp: {
        ACCELERATE_USE_FSDP: 'true',
        FSDP_SHARDING_STRATEGY: 'FULL_SHARD',
        FSDP_AUTO_WRAP_POLICY: 'TRANSFORMER_BASED_WRAP',
        FSDP_USE_ORIG_PARAMS: 'true',
        FSDP_STATE_DICT_TYPE: 'SHARDED_STATE_DICT',
      },
      zero2: { ACCELERATE_USE_DEEPSPEED: 'true', ACCELERATE_DEEPSPEED_ZERO_STAGE: '2' },
      zero3: {
        ACCELERATE_USE_DEEPSPEED: 'true',
        ACCELERATE_DEEPSPEED_ZERO_STAGE: '3',
        ACCELERATE_DEEPSPEED_ZERO3_INIT: 'true',
        ACCELERATE_DEEPSPEED_ZERO3_SAVE_16BIT_MODEL: 'true',
      },
    }[strategy];
    expect(env).toMatchObject(expected);
    if (strategy === 'ddp') expect(Object.keys(env)).toEqual([]);
  });

  test('the shell launchers parse (bash -n)', async () => {
    const out = join(root, 'shell');
    await writeHandoff(project, out);
    for (const file of ['launch-accelerate.sh', 'launch-torchrun.sh', 'slurm.sbatch']) {
      const check = spawnSync('bash', ['-n', join(out, file)], { encoding: 'utf8' });
      expect(check.status, `${file}: ${check.stderr}`).toBe(0);
    }
  });

  test('train.py compiles and the PEFT configs construct (when Python with PEFT is there)', async () => {
    const { python } = findPython(['peft']);
    if (!python) return console.warn('not run: no Python with peft');
    const out = join(root, 'python');
    await writeHandoff(project, out);
    for (const file of ['train.py', 'studio_methods.py']) {
      const compile = spawnSync(python, ['-m', 'py_compile', join(out, file)], { encoding: 'utf8' });
      expect(compile.status, compile.stderr).toBe(0);
    }
    const specs = [JSON.parse(read(out, 'handoff.json')).peft];
    for (const method of [
      { name: 'vera' as const, config: { r: 64, dInitial: 0.2 } },
      { name: 'tinylora' as const, config: { u: 16, weightTying: 0.5 } },
      { name: 'lora' as const, config: { initLoraWeights: 'pissa' } },
      { name: 'lora' as const, config: { initLoraWeights: 'olora', rankPattern: { q_proj: 4 } } },
      { name: 'tlora' as const, config: { r: 8, dropout: 0.1, projectionSeed: 5 } },
      { name: 'loraxs' as const, config: { r: 8, alpha: 16, initStd: 1e-4 } },
    ]) {
      const other = await demoProject(method);
      await writeHandoff(other.project, join(other.root, 'h'));
      specs.push(JSON.parse(read(join(other.root, 'h'), 'handoff.json')).peft);
      rmSync(other.root, { recursive: true, force: true });
    }
    const script = `import json, sys, peft
sys.path.insert(0, sys.argv[1])
import studio_methods
for s in json.load(sys.stdin):
    c = getattr(studio_methods if s["module"] == "studio_methods" else peft, s["className"])(**s["kwargs"])
    # PEFT keeps target_modules as a set: compared sorted.
    print(c.peft_type.value, json.dumps({k: getattr(c, k) for k in s["kwargs"] if k != "task_type"}, default=sorted, sort_keys=True))`;
    const run = spawnSync(python, ['-c', script, out], { input: JSON.stringify(specs), encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines.map((l) => l.split(' ')[0])).toEqual([
      'LORA',
      'VERA',
      'TINYLORA',
      'LORA',
      'LORA',
      'TLORA',
      'LORAXS',
    ]);
    lines.forEach((line, i) => {
      const kwargs = { ...specs[i].kwargs };
      delete kwargs.task_type;
      const seen = JSON.parse(line.slice(line.indexOf(' ') + 1));
      expect(seen).toEqual(kwargs);
    });
  }, 120_000);

  test('refuses MoSLoRA by name before writing anything', async () => {
    const name = 'moslora';
    const other = await demoProject({ name });
    const out = join(other.root, 'h');
    await expect(writeHandoff(other.project, out)).rejects.toThrow(
      new RegExp(`method "${name}" has no PEFT implementation`),
    );
    await expect(writeHandoff(other.project, out)).rejects.toBeInstanceOf(HandoffError);
    expect(existsSync(out)).toBe(false);
    rmSync(other.root, { recursive: true, force: true });
  });

  test('refuses a non-empty destination and leaves it alone; an empty one is filled', async () => {
    const out = join(root, 'busy');
    mkdirSync(out);
    writeFileSync(join(out, 'keep.txt'), 'mine');
    await expect(writeHandoff(project, out)).rejects.toThrow(/exists and is not empty/);
    expect(readdirSync(out)).toEqual(['keep.txt']);
    const empty = join(root, 'empty');
    mkdirSync(empty);
    await writeHandoff(project, empty);
    expect(existsSync(join(empty, 'train.py'))).toBe(true);
    expect(readdirSync(dirname(empty)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  test('requirements pin the versions the studio tests with (scripts/fixtures/requirements.txt)', () => {
    const pins = new Map(
      readFileSync(join(REPO, 'scripts/fixtures/requirements.txt'), 'utf8')
        .split('\n')
        .filter((l) => /^[a-z]/.test(l))
        .map((l) => l.split('==') as [string, string]),
    );
    for (const req of REQUIREMENTS) {
      const [name] = req.split('==');
      if (pins.has(name)) expect(`${name}==${pins.get(name)}`).toBe(req);
    }
    expect(REQUIREMENTS.filter((r) => pins.has(r.split('==')[0])).length).toBe(REQUIREMENTS.length);
  });
});
