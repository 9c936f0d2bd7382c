import { z } from 'zod';
import { StudioError } from '../common/errors.ts';
import type { AdaptableKind } from '../models/layers.ts';
import { defaultTargetModules } from '../models/registry.ts';
import type { ModelSpec, ModuleInfo } from '../models/types.ts';
import type { MethodDefinition, TargetModule } from './types.ts';

/**
 * The target fields every method shares (PEFT's `target_modules`, `exclude_modules`, `layers_to_transform`,
 * `layers_pattern`). Spread into a method schema and add `refineTargetFields` with `.superRefine`.
 */
export const targetFields = {
  targetModules: z
    .union([
      z.array(z.string().min(1)).min(1, 'targetModules: give at least one module name'),
      z.string().min(1),
    ])
    .optional()
    .describe(
      "modules to adapt: names (exact or dotted suffix, e.g. q_proj,v_proj), one regex (full match), or 'all-linear'; default: PEFT's per-architecture default",
    ),
  excludeModules: z
    .union([z.array(z.string().min(1)), z.string().min(1)])
    .optional()
    .describe('modules never adapted: names (exact or dotted suffix) or one regex (full match)'),
  layersToTransform: z
    .union([z.number().int().min(0), z.array(z.number().int().min(0)).min(1)])
    .optional()
    .describe('only these transformer block indices (with a list of target names)'),
  layersPattern: z
    .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
    .optional()
    .describe('name of the block list in module paths (e.g. layers, h), used with layersToTransform'),
  modulesToSave: z
    .array(z.string().min(1))
    .min(1, 'modulesToSave: give at least one module name')
    .optional()
    .describe(
      "modules trained whole and saved with the adapter (PEFT's modules_to_save), e.g. classifier; never adapted",
    ),
};

export type TargetFields = {
  targetModules?: string[] | string;
  excludeModules?: string[] | string;
  layersToTransform?: number | number[];
  layersPattern?: string | string[];
  modulesToSave?: string[];
};

/**
 * The head names PEFT adds to `modules_to_save` for sequence classification (`PeftModelForSequenceClassification`);
 * a model has at most one of them, so an entry that matches nothing is not an error for these.
 */
export const SEQ_CLS_HEADS = ['classifier', 'score'] as const;

/**
 * The adaptable modules a `modules_to_save` list selects, in module order, by PEFT's rule (`_set_trainable`): a
 * module whose name, or the name of a module containing it, ends with an entry. Only Linear, Conv1D and
 * Embedding modules can be copied; an entry that matches nothing (other than PEFT's seq-cls head names) or that
 * selects another kind of module is an error.
 */
export function savedModuleNames(
  spec: ModelSpec,
  entries: readonly string[] | undefined,
  method = 'adapter',
): string[] {
  if (!entries || entries.length === 0) return [];
  const selects = (entry: string, name: string) => {
    const parts = name.split('.');
    return parts.some((_, i) =>
      parts
        .slice(0, i + 1)
        .join('.')
        .endsWith(entry),
    );
  };
  for (const entry of entries) {
    const matched = spec.modules.filter((m) => selects(entry, m.name));
    if (matched.length === 0 && !(SEQ_CLS_HEADS as readonly string[]).includes(entry)) {
      throw new TargetError(
        `${method}: modulesToSave entry "${entry}" matches no module of ${spec.architecture}; nearest names: ${nearestNames(
          entry,
          spec.modules.map((m) => m.name),
        ).join(', ')}`,
      );
    }
    const other = matched.find((m) => !m.adaptable);
    if (other) {
      throw new TargetError(
        `${method}: modulesToSave entry "${entry}" selects ${other.name}, a ${other.type}; only Linear, Conv1D and Embedding modules can be saved`,
      );
    }
  }
  return spec.modules.filter((m) => entries.some((e) => selects(e, m.name))).map((m) => m.name);
}

/** The tensors of the modules `entries` selects, keyed `<module>.weight` / `<module>.bias`, as stored. */
export function savedModuleTensors(
  spec: ModelSpec,
  entries: readonly string[] | undefined,
  method?: string,
): { name: string; shape: number[]; trainable: true }[] {
  return savedModuleNames(spec, entries, method).flatMap((name) => {
    const m = spec.modules.find((x) => x.name === name)!;
    const bias = m.hasBias
      ? [{ name: `${name}.bias`, shape: [m.outFeatures!], trainable: true as const }]
      : [];
    return [{ name: `${name}.weight`, shape: [...m.shape], trainable: true as const }, ...bias];
  });
}

/** PEFT never adapts a module inside `modules_to_save`: `(^|.*\.)entry($|\..*)` on its name. */
function isSavedModule(entries: readonly string[] | undefined, name: string): boolean {
  return (entries ?? []).some((m) => new RegExp(`^(.*\\.)?${m}(\\..*)?$`).test(name));
}

/** Cross-field rules of the target fields, as PEFT's config checks them. */
export function refineTargetFields(value: TargetFields, ctx: z.RefinementCtx): void {
  const isAllLinear =
    typeof value.targetModules === 'string' && value.targetModules.toLowerCase() === 'all-linear';
  if (typeof value.targetModules === 'string' && !isAllLinear) {
    const problem = regexProblem(value.targetModules);
    if (problem)
      ctx.addIssue({ code: 'custom', path: ['targetModules'], message: `invalid regex: ${problem}` });
    if (value.layersToTransform !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['layersToTransform'],
        message:
          'layersToTransform cannot be used when targetModules is a regex string; give a list of names',
      });
    }
  }
  if (typeof value.excludeModules === 'string') {
    const problem = regexProblem(value.excludeModules);
    if (problem)
      ctx.addIssue({ code: 'custom', path: ['excludeModules'], message: `invalid regex: ${problem}` });
  }
  if (value.layersPattern !== undefined && value.layersToTransform === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['layersPattern'],
      message: 'layersPattern only applies together with layersToTransform',
    });
  }
}

function regexProblem(pattern: string): string | null {
  try {
    new RegExp(pattern);
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

// PEFT's default targets when `target_modules` is unset live with each architecture (engine/models)
export { defaultTargetModules };

export class TargetError extends StudioError {
  constructor(message: string) {
    super('invalid_input', message);
    this.name = 'TargetError';
  }
}

/** PEFT's list rule: the name itself or a dotted suffix of it. */
export function matchesName(target: string, name: string): boolean {
  return name === target || name.endsWith(`.${target}`);
}

/** PEFT's string rule: `re.fullmatch(pattern, name)`. */
export function fullMatch(pattern: string, name: string): boolean {
  return new RegExp(`^(?:${pattern})$`).test(name);
}

function matchesSpec(spec: string[] | string, name: string): boolean {
  return typeof spec === 'string' ? fullMatch(spec, name) : spec.some((t) => matchesName(t, name));
}

/**
 * The transformer block index in a module name, as PEFT reads it: `.*?\.[^.]*\.(\d+)\.` (the first number
 * between dots), or after one of `layersPattern` when given.
 */
export function layerIndexOf(name: string, layersPattern?: string | string[]): number | null {
  const patterns =
    layersPattern === undefined ? [] : Array.isArray(layersPattern) ? layersPattern : [layersPattern];
  if (patterns.length === 0) {
    const m = /^.*?\.[^.]*\.(\d+)\./.exec(name);
    return m ? Number(m[1]) : null;
  }
  for (const pattern of patterns) {
    const m = new RegExp(`^.*?\\.(?:${pattern})\\.(\\d+)\\.`).exec(name);
    if (m) return Number(m[1]);
  }
  return null;
}

/** The modules `all-linear` expands to (PEFT's `_maybe_include_all_linear_layers`). */
export function allLinearModules(spec: ModelSpec): ModuleInfo[] {
  let excluded: string | null = null;
  if (spec.task === 'seq-cls') {
    // PEFT removes only the first existing top-level `score`/`classifier` name; the Linear layers inside a
    // container head (RoBERTa's classifier.dense/out_proj) still match.
    excluded = ['score', 'classifier'].find((n) => spec.modules.some((m) => m.name === n)) ?? null;
  }
  return spec.modules.filter(
    (m) =>
      (m.type === 'Linear' || m.type === 'Conv1D') &&
      m.name !== excluded &&
      !(spec.task === 'causal-lm' && m.isOutputHead),
  );
}

/**
 * The modules a config adapts, in `named_modules()` order, by PEFT's rules (`check_target_module_exists`):
 * a list matches a name exactly or as a dotted suffix; a string is a full-match regex; `all-linear` is every
 * Linear/Conv1D but the output head. Stricter than PEFT in one way: a list entry that matches no module is an
 * error (a typo would otherwise go unnoticed), with the nearest module names in the message.
 */
export function resolveTargets(
  spec: ModelSpec,
  fields: TargetFields,
  options: {
    supportedKinds?: readonly AdaptableKind[];
    method?: string;
    /** The method's defaults for this model type (PEFT's LoRA table when not given). */
    defaultTargets?: string[] | null;
  } = {},
): TargetModule[] {
  const method = options.method ?? 'adapter';
  const supported = options.supportedKinds ?? ['Linear', 'Conv1D', 'Embedding'];
  let targetSpec = fields.targetModules;
  if (targetSpec === undefined) {
    const defaults =
      options.defaultTargets !== undefined ? options.defaultTargets : defaultTargetModules(spec.modelType);
    if (!defaults) {
      throw new TargetError(
        `${method}: no default target modules for model type "${spec.modelType}"; set targetModules`,
      );
    }
    targetSpec = defaults;
  }
  const isAllLinear = typeof targetSpec === 'string' && targetSpec.toLowerCase() === 'all-linear';
  const usesLayers = fields.layersToTransform !== undefined && typeof targetSpec !== 'string';

  let candidates: ModuleInfo[];
  if (isAllLinear) {
    candidates = allLinearModules(spec);
  } else if (typeof targetSpec === 'string') {
    const pattern = targetSpec;
    candidates = spec.modules.filter((m) => fullMatch(pattern, m.name));
    if (candidates.length === 0) {
      throw new TargetError(
        `${method}: targetModules regex "${pattern}" matches no module (it must match the whole name); ` +
          `module names look like: ${spec.modules
            .slice(0, 5)
            .map((m) => m.name)
            .join(', ')}`,
      );
    }
  } else {
    const list = targetSpec;
    for (const t of list) {
      if (!spec.modules.some((m) => matchesName(t, m.name))) {
        throw new TargetError(
          `${method}: target module "${t}" matches no module of ${spec.architecture}; nearest names: ${nearestNames(
            t,
            spec.modules.map((m) => m.name),
          ).join(', ')}`,
        );
      }
    }
    candidates = spec.modules.filter((m) => list.some((t) => matchesName(t, m.name)));
  }
  if (isAllLinear) candidates = candidates.filter((m) => m.adaptable);

  if (usesLayers || (isAllLinear && fields.layersToTransform !== undefined)) {
    const wanted = Array.isArray(fields.layersToTransform)
      ? fields.layersToTransform
      : [fields.layersToTransform!];
    candidates = candidates.filter((m) => {
      const index = layerIndexOf(m.name, fields.layersPattern);
      return index !== null && wanted.includes(index);
    });
  }
  if (fields.excludeModules !== undefined) {
    const exclude = fields.excludeModules;
    candidates = candidates.filter((m) => !matchesSpec(exclude, m.name));
  }
  candidates = candidates.filter((m) => !isSavedModule(fields.modulesToSave, m.name));

  const targets: TargetModule[] = [];
  for (const m of candidates) {
    if (!m.adaptable || !supported.includes(m.adaptable)) {
      const kinds = supported.join('/');
      throw new TargetError(
        `${method}: module "${m.name}" is a ${m.type}; ${method} adapts ${kinds} modules only (check targetModules)`,
      );
    }
    if (m.inFeatures === undefined || m.outFeatures === undefined) {
      throw new TargetError(`${method}: module "${m.name}" has no in/out features in the model spec`);
    }
    targets.push({ name: m.name, kind: m.adaptable, inFeatures: m.inFeatures, outFeatures: m.outFeatures });
  }
  if (targets.length === 0) {
    throw new TargetError(
      `${method}: no module left to adapt after layersToTransform/excludeModules/modulesToSave (targets: ${JSON.stringify(targetSpec)})`,
    );
  }
  return targets;
}

/** The targets of a parsed method config on a model: the method's kinds and default targets. */
export function methodTargets(
  spec: ModelSpec,
  definition: Pick<MethodDefinition, 'name' | 'supportedKinds' | 'defaultTargets'>,
  config: TargetFields,
): TargetModule[] {
  return resolveTargets(spec, config, {
    supportedKinds: definition.supportedKinds,
    method: definition.name,
    ...(definition.defaultTargets ? { defaultTargets: definition.defaultTargets(spec.modelType) } : {}),
  });
}

/** Levenshtein distance. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/**
 * The module names closest to `query`: compared with dotted suffixes of as many parts as the query has
 * (so `q_prj` is compared with `q_proj`, not with the full path), distinct suffixes, best first.
 */
export function nearestNames(query: string, names: string[], limit = 5): string[] {
  const parts = query.split('.').length;
  const suffixes = new Set(names.map((n) => n.split('.').slice(-parts).join('.')));
  return [...suffixes]
    .map((s) => ({ s, d: editDistance(query, s) }))
    .sort((x, y) => x.d - y.d || x.s.localeCompare(y.s))
    .slice(0, limit)
    .map((x) => x.s);
}

/**
 * PEFT's `_find_minimal_target_modules`: the shortest dotted suffixes that match every target and no other
 * module, used when 20 or more modules are targeted so adapter_config.json stays short.
 */
export function minimalTargetModules(targets: string[], allNames: string[]): string[] {
  const targetSet = new Set(targets);
  const others = allNames.filter((n) => !targetSet.has(n));
  const otherSuffixes = new Set<string>();
  for (const n of others) {
    const parts = n.split('.');
    for (let i = 0; i < parts.length; i++) otherSuffixes.add(parts.slice(i).join('.'));
  }
  const chosen = new Set<string>();
  for (const t of targets) {
    const parts = t.split('.');
    if ([...chosen].some((c) => matchesName(c, t))) continue;
    for (let k = 1; k <= parts.length; k++) {
      const suffix = parts.slice(-k).join('.');
      if (!otherSuffixes.has(suffix)) {
        chosen.add(suffix);
        break;
      }
    }
  }
  return [...chosen].sort();
}
