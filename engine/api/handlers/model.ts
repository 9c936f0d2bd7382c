import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { MethodDescription, ModelSummary } from '../../common/contract.ts';
import { readModelConfig, specFromConfig } from '../../models/index.ts';
import type { Handlers } from './context.ts';

/** Bytes of a model folder's weight files (safetensors shards), as the disk holds them. */
export async function weightBytes(dir: string): Promise<number> {
  let total = 0;
  for (const name of await fs.readdir(dir)) {
    if (name.endsWith('.safetensors')) total += (await fs.stat(join(dir, name))).size;
  }
  return total;
}

export async function inspectModel(modelDir: string): Promise<ModelSummary> {
  const config = await readModelConfig(modelDir);
  const spec = specFromConfig(config);
  return {
    dir: modelDir,
    modelType: spec.modelType,
    architecture: spec.architecture,
    task: spec.task,
    numLabels: spec.numLabels,
    vocabSize: spec.vocabSize,
    hiddenSize: spec.hiddenSize,
    numLayers: spec.numLayers,
    numParameters: spec.numParameters,
    sizeBytes: await weightBytes(modelDir),
    modules: spec.modules.map((m) => ({
      name: m.name,
      type: m.type,
      shape: m.shape,
      params: m.params,
      adaptable: m.adaptable,
      inFeatures: m.inFeatures,
      outFeatures: m.outFeatures,
      isOutputHead: m.isOutputHead,
      layerIndex: m.layerIndex,
    })),
  };
}

/** A method's description with its config schema as JSON Schema (input side: defaults make fields optional). */
export async function describeMethods(): Promise<MethodDescription[]> {
  const { methods, methodNames } = await import('../../adapters/index.ts');
  return methodNames().map((name) => {
    const m = methods[name]!;
    const jsonSchema = z.toJSONSchema(m.schema, { io: 'input', unrepresentable: 'any' }) as Record<
      string,
      unknown
    >;
    const parsed = m.schema.safeParse({});
    return {
      name,
      label: m.label,
      description: m.description,
      supportedKinds: [...m.supportedKinds],
      jsonSchema,
      defaults: parsed.success ? parsed.data : {},
    };
  });
}

export const modelHandlers: Pick<Handlers, 'model.inspect' | 'methods.list'> = {
  async 'model.inspect'({ modelDir }) {
    return inspectModel(modelDir);
  },
  async 'methods.list'() {
    return describeMethods();
  },
};
