import type { LoadedModel } from '../models/types.ts';
import { getMethod, parseMethodConfig } from './registry.ts';
import { withSavedModules } from './shared/modules-to-save.ts';
import { methodTargets, savedModuleNames, type TargetFields } from './targets.ts';
import type { AdapterInstance, MethodName } from './types.ts';

export interface AttachOptions {
  /** PEFT's adapter name; `default` when omitted. Letters, digits, `_` and `-` only (it becomes a folder name). */
  adapterName?: string;
  /** Seed of initialisation and frozen random tensors (0 when omitted). */
  seed?: number;
  /** Make this the only active adapter, as PEFT's `set_adapter` (default true). */
  activate?: boolean;
}

export interface AdapterSummary {
  name: string;
  method: MethodName;
  config: Record<string, unknown>;
  active: boolean;
  merged: boolean;
  modules: number;
}

const attached = new WeakMap<LoadedModel, Map<string, AdapterInstance>>();

function adaptersOf(model: LoadedModel): Map<string, AdapterInstance> {
  let map = attached.get(model);
  if (!map) {
    map = new Map();
    attached.set(model, map);
  }
  return map;
}

/**
 * Parses `config` with the method's schema, resolves its targets on the model and attaches a new named
 * adapter. Several adapters can sit on one model; their outputs add up when several are active.
 */
export function attachAdapter(
  model: LoadedModel,
  method: MethodName | string,
  config: unknown,
  options: AttachOptions = {},
): AdapterInstance {
  const adapterName = options.adapterName ?? 'default';
  if (!/^[A-Za-z0-9_-]+$/.test(adapterName)) {
    throw new Error(`adapter name "${adapterName}" may contain only letters, digits, "_" and "-"`);
  }
  const adapters = adaptersOf(model);
  if (adapters.has(adapterName)) {
    throw new Error(
      `the model already has an adapter named "${adapterName}"; detach it or choose another name`,
    );
  }
  const definition = getMethod(method);
  const parsed = parseMethodConfig(definition.name, config);
  const targets = methodTargets(model.spec, definition, parsed as TargetFields);
  const saved = savedModuleNames(model.spec, (parsed as TargetFields).modulesToSave, definition.name).map(
    (name) => {
      const layer = model.layers.get(name);
      if (!layer)
        throw new Error(`${definition.name}: modulesToSave module "${name}" is not in the loaded model`);
      return layer;
    },
  );
  const layers = targets.map((t) => {
    const layer = model.layers.get(t.name);
    if (!layer)
      throw new Error(`${definition.name}: module "${t.name}" is not an adaptable layer of the loaded model`);
    return layer;
  });
  const instance = withSavedModules(
    definition.create(layers, parsed, { adapterName, seed: options.seed ?? 0 }),
    saved,
  );
  adapters.set(adapterName, instance);
  if (options.activate ?? true) setActiveAdapters(model, [adapterName]);
  return instance;
}

export function getAdapter(model: LoadedModel, adapterName: string): AdapterInstance {
  const instance = adaptersOf(model).get(adapterName);
  if (!instance) {
    const names = [...adaptersOf(model).keys()];
    throw new Error(
      `no adapter named "${adapterName}" on this model (attached: ${names.length ? names.join(', ') : 'none'})`,
    );
  }
  return instance;
}

/**
 * Removes an adapter (PEFT's `delete_adapter`): unmerges it where merged, undoes base-weight changes
 * (PiSSA/OLoRA residuals) and disposes its tensors.
 */
export function detachAdapter(model: LoadedModel, adapterName: string): void {
  const instance = getAdapter(model, adapterName);
  for (const layer of model.layers.values()) {
    if (layer.merged.includes(adapterName)) layer.unmerge(adapterName);
  }
  instance.detach?.();
  for (const layer of model.layers.values()) {
    layer.adapters.delete(adapterName);
    layer.activeAdapters = layer.activeAdapters.filter((n) => n !== adapterName);
  }
  instance.dispose();
  adaptersOf(model).delete(adapterName);
}

/** Sets the adapters used in forward, in order (PEFT sums active adapters in sequence). */
export function setActiveAdapters(model: LoadedModel, adapterNames: string[]): void {
  for (const name of adapterNames) getAdapter(model, name);
  for (const layer of model.layers.values()) layer.activeAdapters = [...adapterNames];
}

/** Enables or disables every adapter at once (PEFT's `enable_adapter_layers` / `disable_adapter_layers`). */
export function setAdaptersEnabled(model: LoadedModel, enabled: boolean): void {
  for (const layer of model.layers.values()) layer.adaptersEnabled = enabled;
}

export function listAdapters(model: LoadedModel): AdapterSummary[] {
  const anyLayer = model.layers.values().next().value;
  const active = anyLayer ? anyLayer.activeAdapters : [];
  return [...adaptersOf(model).values()].map((instance) => {
    const layers = [...instance.layers.keys()].map((n) => model.layers.get(n)!);
    return {
      name: instance.name,
      method: instance.method,
      config: instance.config,
      active: active.includes(instance.name),
      merged: layers.length > 0 && layers.every((l) => l.merged.includes(instance.name)),
      modules: layers.length,
    };
  });
}

/** Folds an adapter into the base weights of its modules (forward then skips it). */
export function mergeAdapter(model: LoadedModel, adapterName: string): void {
  const instance = getAdapter(model, adapterName);
  for (const name of instance.layers.keys()) model.layers.get(name)!.merge(adapterName);
}

/** Restores the base weights from before `mergeAdapter`. */
export function unmergeAdapter(model: LoadedModel, adapterName: string): void {
  const instance = getAdapter(model, adapterName);
  for (const name of instance.layers.keys()) model.layers.get(name)!.unmerge(adapterName);
}
