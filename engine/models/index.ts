export {
  type ArchConfig,
  archConfig,
  defaultTask,
  ModelError,
  readModelConfig,
  type SupportedModelType,
  supportedModelTypes,
} from './config.ts';
export {
  type GenerateOptions,
  type GenerateResult,
  generate,
  generateGreedyBatch,
  pickToken,
} from './generate.ts';
export {
  type AdaptableKind,
  AdaptableLayer,
  type AdapterLayer,
  dropout,
  type ForwardContext,
  inferenceContext,
  trainingContext,
} from './layers.ts';
export { checkWeights, type LoadOptions, loadModel, type WeightsReport } from './load.ts';
export { type DecodeResult, type KvCache, TransformerModel } from './model.ts';
export { specFromConfig } from './spec.ts';
export {
  type ChatMessage,
  type ChatTemplateOptions,
  type EncodeOptions,
  loadTokenizer,
  StudioTokenizer,
} from './tokenizer.ts';
export type { Batch, LoadedModel, ModelSpec, ModuleInfo, TaskKind } from './types.ts';
