import { computeBudget } from '../adapters/budget.ts';
import type { MemoryEstimate } from '../adapters/memory.ts';
import { fusedOpsEnabled } from '../backends/fused.ts';
import { outOfMemoryAdvice, StudioError } from '../common/errors.ts';
import type { ProjectSettings } from '../common/project-schema.ts';
import { formatBytes } from '../io/bytes.ts';
import type { ModelSpec } from '../models/types.ts';

/** The wasm backend keeps every tensor in one 32-bit heap. */
const WASM_HEAP_BYTES = 4 * 2 ** 30;

export interface MemoryPlan {
  /** The run's gradient checkpointing, `auto` resolved. */
  checkpointing: boolean;
  /** Null where the estimate does not apply (a GPU backend's memory is the device's). */
  estimate: MemoryEstimate | null;
  available: number;
}

/**
 * Decides gradient checkpointing and refuses a run that cannot fit, before anything is loaded: the estimate
 * for the run's settings against what this machine can allocate now, on the CPU backends whose tensors live in
 * the process's memory.
 */
export function planRunMemory(
  spec: ModelSpec,
  settings: ProjectSettings,
  backend: string,
  available: number,
): MemoryPlan {
  const setting = settings.training.gradientCheckpointing;
  const kind = backend.split(':')[0];
  if (kind !== 'native' && kind !== 'wasm' && kind !== 'cpu')
    return { checkpointing: setting === 'on', estimate: null, available };
  const estimateFor = (batchSize: number, seqLen: number, checkpointing: boolean) =>
    computeBudget(spec, settings.method.name, settings.method.config, {
      batchSize,
      seqLen,
      gradAccumSteps: settings.training.gradAccumSteps,
      weightsHeldAs: kind === 'native' ? 'checkpoint' : 'float32',
      composedOps: kind !== 'native' || !fusedOpsEnabled(),
      checkpointing,
    }).memory;
  const { batchSize, maxSeqLen } = settings.training;
  // the wasm heap bounds tensors, not the runtime around them
  const limit =
    kind === 'wasm' ? Math.min(available, WASM_HEAP_BYTES + estimateFor(1, 2, true).runtime) : available;
  const plain = estimateFor(batchSize, maxSeqLen, false);
  const checkpointing = setting === 'on' || (setting === 'auto' && plain.total > limit);
  const estimate = checkpointing ? estimateFor(batchSize, maxSeqLen, true) : plain;
  if (estimate.total <= limit) return { checkpointing, estimate, available };

  const fits = (b: number, t: number, c: boolean) => estimateFor(b, t, c).total <= limit;
  const options: string[] = [];
  if (!checkpointing && fits(batchSize, maxSeqLen, true))
    options.push(`gradientCheckpointing on (~${formatBytes(estimateFor(batchSize, maxSeqLen, true).total)})`);
  const smaller = (c: boolean) => {
    const suffix = c && !checkpointing ? ' and gradientCheckpointing on' : '';
    for (let b = batchSize - 1; b >= 1; b--) {
      if (fits(b, maxSeqLen, c)) {
        options.push(`batchSize ${b}${suffix}`);
        break;
      }
    }
    for (let t = Math.floor(maxSeqLen / 2); t >= 2; t = Math.floor(t / 2)) {
      if (fits(batchSize, t, c)) {
        options.push(`maxSeqLen ${t}${suffix}`);
        break;
      }
    }
  };
  smaller(checkpointing);
  if (options.length === 0 && !checkpointing) smaller(true);
  const where =
    kind === 'wasm' && limit < available
      ? `the wasm backend's 4 GiB tensor heap (the native backend has no such bound)`
      : `the ${formatBytes(available)} this machine has available`;
  throw new StudioError(
    'out_of_memory',
    `this run needs ~${formatBytes(estimate.total)} of memory at its peak (weights ${formatBytes(estimate.weights)} in ${
      estimate.weightsDtype
    }, activations ~${formatBytes(estimate.activations)} for batch ${batchSize} × ${maxSeqLen} tokens${
      checkpointing ? ' with gradient checkpointing' : ''
    }, adapter, gradients and AdamW ${formatBytes(estimate.adapter + estimate.gradients + estimate.optimizer)}), more than ${where}; ${
      options.length > 0 ? `it fits with ${options.join(', or ')}` : outOfMemoryAdvice
    }`,
  );
}
