import type { ModuleInfo } from '../../../engine/common/contract.ts';

export interface TreeNode {
  /** Full dotted path of this node (a module name for leaves). */
  path: string;
  label: string;
  module?: ModuleInfo;
  children: TreeNode[];
  /** Adaptable leaf names under this node (the node itself included). */
  adaptable: string[];
  params: number;
}

/** Builds the module hierarchy from flat Hugging Face names (`model.layers.0.self_attn.q_proj`). */
export function buildModuleTree(modules: readonly ModuleInfo[]): TreeNode {
  const root: TreeNode = { path: '', label: 'model', children: [], adaptable: [], params: 0 };
  const index = new Map<string, TreeNode>([['', root]]);
  for (const module of modules) {
    const parts = module.name.split('.');
    let parent = root;
    for (let i = 0; i < parts.length; i++) {
      const path = parts.slice(0, i + 1).join('.');
      let node = index.get(path);
      if (!node) {
        node = { path, label: parts[i], children: [], adaptable: [], params: 0 };
        index.set(path, node);
        parent.children.push(node);
      }
      node.params += module.params;
      if (module.adaptable) node.adaptable.push(module.name);
      if (i === parts.length - 1) node.module = module;
      parent = node;
    }
    root.params += module.params;
    if (module.adaptable) root.adaptable.push(module.name);
  }
  return root;
}

export type CheckState = 'all' | 'some' | 'none';

export function checkState(node: TreeNode, selected: ReadonlySet<string>): CheckState {
  if (node.adaptable.length === 0) return 'none';
  let hits = 0;
  for (const name of node.adaptable) if (selected.has(name)) hits += 1;
  if (hits === 0) return 'none';
  return hits === node.adaptable.length ? 'all' : 'some';
}

/** Toggles every adaptable module under `node`: all on, unless all are on already. */
export function toggleNode(node: TreeNode, selected: ReadonlySet<string>): Set<string> {
  const next = new Set(selected);
  const turnOn = checkState(node, selected) !== 'all';
  for (const name of node.adaptable) {
    if (turnOn) next.add(name);
    else next.delete(name);
  }
  return next;
}

/**
 * The shortest PEFT `target_modules` list that selects exactly `selected` among `adaptable`: a module suffix
 * (`q_proj`) when it matches only selected modules, else the full names.
 */
export function minimalTargets(selected: ReadonlySet<string>, adaptable: readonly string[]): string[] {
  const bySuffix = new Map<string, string[]>();
  for (const name of adaptable) {
    const suffix = name.split('.').pop()!;
    const list = bySuffix.get(suffix) ?? [];
    list.push(name);
    bySuffix.set(suffix, list);
  }
  const out: string[] = [];
  const covered = new Set<string>();
  for (const [suffix, names] of bySuffix) {
    if (names.every((n) => selected.has(n))) {
      out.push(suffix);
      for (const n of names) covered.add(n);
    }
  }
  for (const name of adaptable) if (selected.has(name) && !covered.has(name)) out.push(name);
  return out;
}

/** Layer indices present in the module list, sorted. */
export function layerIndices(modules: readonly ModuleInfo[]): number[] {
  const set = new Set<number>();
  for (const m of modules) if (m.layerIndex !== undefined) set.add(m.layerIndex);
  return [...set].sort((a, b) => a - b);
}
