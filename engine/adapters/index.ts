export {
  type AdapterSummary,
  type AttachOptions,
  attachAdapter,
  detachAdapter,
  getAdapter,
  listAdapters,
  mergeAdapter,
  setActiveAdapters,
  setAdaptersEnabled,
  unmergeAdapter,
} from './attach.ts';
export { AdapterStateError, type AdapterTensor, TensorTableInstance } from './instance.ts';
export {
  escapeRegex,
  MIN_TARGET_MODULES_FOR_OPTIMIZATION,
  PEFT_BASE_PREFIX,
  PEFT_MODEL_PREFIX,
  peftTargetModules,
  stripPeftPrefix,
} from './peft.ts';
export { deriveSeed, Rng } from './random.ts';
export { AdapterConfigError, getMethod, methodNames, methods, parseMethodConfig } from './registry.ts';
export {
  allLinearModules,
  defaultTargetModules,
  methodTargets,
  minimalTargetModules,
  nearestNames,
  refineTargetFields,
  resolveTargets,
  SEQ_CLS_HEADS,
  savedModuleNames,
  TargetError,
  type TargetFields,
  targetFields,
} from './targets.ts';
export type * from './types.ts';
