import { computeBudget, type Budget as EngineBudget } from '../../adapters/budget.ts';
import type { Budget } from '../../common/contract.ts';
import { availableMemoryBytes } from '../../io/memory.ts';
import { readModelConfig, specFromConfig } from '../../models/index.ts';
import type { ModelSpec, TaskKind } from '../../models/types.ts';
import type { Handlers } from './context.ts';

export async function modelSpec(modelDir: string, task?: TaskKind, numLabels?: number): Promise<ModelSpec> {
  return specFromConfig(await readModelConfig(modelDir), { task, numLabels });
}

/** Which targets share each model-level tensor, as the method's `count` reports it. */
export function tyingGroups(budget: EngineBudget): Budget['tyingGroups'] {
  return budget.shared.flatMap((t) =>
    t.modules ? [{ name: t.name, size: t.shape.reduce((a, b) => a * b, 1), modules: t.modules }] : [],
  );
}

export function toBudget(b: EngineBudget, spec: ModelSpec): Budget {
  const fileBytes: Record<string, number> = {};
  for (const [format, bytes] of Object.entries(b.files))
    if (typeof bytes === 'number') fileBytes[format] = bytes;
  const { weights, adapter, gradients, optimizer, runtime } = b.memory;
  return {
    method: b.method,
    trainable: b.trainable,
    frozen: b.frozen,
    totalModelParams: spec.numParameters,
    percentOfModel: b.trainablePercent,
    targets: b.targets.map((t) => t.name),
    perModule: b.targets.map((t) => ({ module: t.name, trainable: t.trainable, frozen: t.frozen })),
    tyingGroups: tyingGroups(b),
    fileBytes,
    memoryBytes: b.memory.total,
    memoryBreakdown: {
      [`base weights (${b.memory.weightsDtype})`]: weights,
      'adapter weights': adapter,
      gradients,
      'optimizer state': optimizer,
      activations: b.memory.activations,
      runtime,
    },
    memoryWithCheckpointing: b.memory.totalWithCheckpointing,
    memoryAvailable: availableMemoryBytes(),
  };
}

export const budgetHandlers: Pick<Handlers, 'budget.compute' | 'budget.compare'> = {
  async 'budget.compute'({ modelDir, method, config, batchSize, seqLen, task, numLabels }) {
    const spec = await modelSpec(modelDir, task, numLabels);
    return toBudget(computeBudget(spec, method, config, { batchSize, seqLen }), spec);
  },
  async 'budget.compare'({ modelDir, candidates, batchSize, seqLen, task }) {
    const spec = await modelSpec(modelDir, task);
    return candidates.map(({ method, config }) => {
      try {
        return toBudget(computeBudget(spec, method, config, { batchSize, seqLen }), spec);
      } catch (error) {
        return { method, error: (error as Error).message };
      }
    });
  },
};
