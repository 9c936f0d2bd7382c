import { HandoffStrategySchema } from '../common/contract.ts';

/** The hand-off's distribution strategies: accelerate's DDP, FSDP, and DeepSpeed ZeRO stage 2 or 3. */
export const STRATEGIES = HandoffStrategySchema.options;
export type Strategy = (typeof STRATEGIES)[number];

/**
 * Pinned Python packages: the versions the studio's own Python tests use (scripts/fixtures/requirements.txt,
 * checked by handoff.test.ts).
 */
export const REQUIREMENTS = [
  'torch==2.13.0',
  'transformers==5.17.0',
  'peft==0.21.0',
  'accelerate==1.15.0',
  'trl==1.13.0',
  'safetensors==0.8.0',
  'numpy==2.4.6',
  'datasets==5.0.1',
];
/** The newest DeepSpeed release listed when this was written (not in the local mirror, so untested here). */
export const DEEPSPEED_REQUIREMENT = 'deepspeed==0.19.8';

/**
 * accelerate's config for a strategy. num_machines / num_processes / machine_rank are the single-node
 * values; the launchers pass the cluster's. Mixed precision stays "no" here because train.py turns bf16 on
 * where the GPU has it (TrainingArguments wins over the config file).
 */
export function accelerateConfig(strategy: Strategy, gradAccumSteps: number, maxGradNorm: number): string {
  const common = [
    'compute_environment: LOCAL_MACHINE',
    'debug: false',
    'machine_rank: 0',
    'main_training_function: main',
    "mixed_precision: 'no'",
    'num_machines: 1',
    'num_processes: 1',
    'rdzv_backend: static',
    'same_network: true',
    'use_cpu: false',
  ];
  if (strategy === 'ddp') return `${['distributed_type: MULTI_GPU', ...common].join('\n')}\n`;
  if (strategy === 'fsdp') {
    // use_orig_params lets FSDP shard a model whose parameters are partly frozen (PEFT's case).
    return `${[
      'distributed_type: FSDP',
      'fsdp_config:',
      '  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP',
      '  fsdp_backward_prefetch: BACKWARD_PRE',
      '  fsdp_cpu_ram_efficient_loading: true',
      '  fsdp_forward_prefetch: false',
      '  fsdp_offload_params: false',
      '  fsdp_sharding_strategy: FULL_SHARD',
      '  fsdp_state_dict_type: SHARDED_STATE_DICT',
      '  fsdp_sync_module_states: true',
      '  fsdp_use_orig_params: true',
      ...common,
    ].join('\n')}\n`;
  }
  const stage = strategy === 'zero2' ? 2 : 3;
  return `${[
    'distributed_type: DEEPSPEED',
    'deepspeed_config:',
    `  gradient_accumulation_steps: ${gradAccumSteps}`,
    `  gradient_clipping: ${maxGradNorm}`,
    '  offload_optimizer_device: none',
    '  offload_param_device: none',
    `  zero3_init_flag: ${stage === 3}`,
    ...(stage === 3 ? ['  zero3_save_16bit_model: true'] : []),
    `  zero_stage: ${stage}`,
    ...common,
  ].join('\n')}\n`;
}

export const LAUNCH_ACCELERATE = `#!/usr/bin/env bash
# One node: accelerate launch with this folder's strategy; NUM_PROCESSES defaults to the visible GPUs.
set -euo pipefail
cd "$(dirname "$0")"
NUM_PROCESSES="\${NUM_PROCESSES:-$(nvidia-smi -L 2>/dev/null | wc -l)}"
[ "$NUM_PROCESSES" -ge 1 ] || NUM_PROCESSES=1
exec accelerate launch --config_file accelerate-config.yaml --num_processes "$NUM_PROCESSES" train.py "$@"
`;

export const LAUNCH_TORCHRUN = `#!/usr/bin/env bash
# torchrun (DDP), one or many nodes: run it on every node with the same MASTER_ADDR and its own NODE_RANK.
set -euo pipefail
cd "$(dirname "$0")"
NNODES="\${NNODES:-1}"
NODE_RANK="\${NODE_RANK:-0}"
NPROC_PER_NODE="\${NPROC_PER_NODE:-$(nvidia-smi -L 2>/dev/null | wc -l)}"
[ "$NPROC_PER_NODE" -ge 1 ] || NPROC_PER_NODE=1
MASTER_ADDR="\${MASTER_ADDR:-127.0.0.1}"
MASTER_PORT="\${MASTER_PORT:-29500}"
exec torchrun --nnodes "$NNODES" --node_rank "$NODE_RANK" --nproc_per_node "$NPROC_PER_NODE" \\
  --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" train.py "$@"
`;

export const SLURM_SBATCH = `#!/usr/bin/env bash
# sbatch slurm.sbatch — one accelerate launch per node, rendezvous on the first node (c10d).
#SBATCH --job-name=adapter-studio
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=16
#SBATCH --output=slurm-%j.out
set -euo pipefail
cd "\${SLURM_SUBMIT_DIR:-$(dirname "$0")}"
GPUS_PER_NODE="\${GPUS_PER_NODE:-8}"
MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
MASTER_PORT="\${MASTER_PORT:-29500}"
srun bash -c "accelerate launch --config_file accelerate-config.yaml \\
  --num_machines $SLURM_NNODES --num_processes $((SLURM_NNODES * GPUS_PER_NODE)) \\
  --machine_rank \\$SLURM_NODEID --main_process_ip $MASTER_ADDR --main_process_port $MASTER_PORT \\
  --rdzv_backend c10d train.py"
`;

export function skypilotTask(name: string): string {
  return `# sky launch -c adapter-studio skypilot.yaml   (then: sky rsync-down adapter-studio ~/sky_workdir/output ./output)
name: ${JSON.stringify(name)}
resources:
  accelerators: A100:8
num_nodes: 1
workdir: .
setup: |
  pip install -r requirements.txt
run: |
  MASTER_ADDR=$(echo "$SKYPILOT_NODE_IPS" | head -n 1)
  accelerate launch --config_file accelerate-config.yaml \\
    --num_machines $SKYPILOT_NUM_NODES --num_processes $((SKYPILOT_NUM_NODES * SKYPILOT_NUM_GPUS_PER_NODE)) \\
    --machine_rank $SKYPILOT_NODE_RANK --main_process_ip $MASTER_ADDR --main_process_port 29500 \\
    train.py
`;
}
