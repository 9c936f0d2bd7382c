export { type ArchConfig, ModelError, readModelConfig } from './config.ts';
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
export { type DecodeResult, TransformerModel } from './model.ts';
export type { Architecture, BlockInputs, KvCache, ModelWeights, Network, NetworkInput } from './network.ts';
export {
  archConfig,
  architectureOf,
  defaultTargetModules,
  defaultTask,
  type SupportedModelType,
  specFromConfig,
  supportedModelTypes,
} from './registry.ts';
export {
  type ChatMessage,
  type ChatTemplateOptions,
  type EncodeOptions,
  loadTokenizer,
  StudioTokenizer,
} from './tokenizer.ts';
export type { Batch, LoadedModel, ModelSpec, ModuleInfo, PositionLimit, TaskKind } from './types.ts';
