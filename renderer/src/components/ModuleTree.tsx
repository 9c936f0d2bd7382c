import { useMemo, useState } from 'react';
import type { ModuleInfo } from '../../../engine/common/contract.ts';
import { formatCount } from '../lib/format.ts';
import { buildModuleTree, type CheckState, checkState, type TreeNode } from '../lib/tree.ts';

function Check({ state, label, onToggle }: { state: CheckState; label: string; onToggle: () => void }) {
  return (
    <input
      type="checkbox"
      aria-label={`adapt ${label}`}
      checked={state === 'all'}
      ref={(el) => {
        if (el) el.indeterminate = state === 'some';
      }}
      onChange={onToggle}
    />
  );
}

function Node({
  node,
  depth,
  selected,
  onToggle,
  open,
  setOpen,
}: {
  node: TreeNode;
  depth: number;
  selected?: ReadonlySet<string>;
  onToggle?: (node: TreeNode) => void;
  open: ReadonlySet<string>;
  setOpen: (path: string, value: boolean) => void;
}) {
  const isOpen = open.has(node.path);
  const leaf = node.children.length === 0;
  const state = selected ? checkState(node, selected) : 'none';
  return (
    <li className={`tree-node ${state !== 'none' ? 'tree-on' : ''}`} data-module={node.module?.name}>
      <div className="tree-row" style={{ paddingLeft: depth * 14 }}>
        {leaf ? (
          <span className="tree-twisty" />
        ) : (
          <button
            type="button"
            className="tree-twisty"
            aria-expanded={isOpen}
            aria-label={`${isOpen ? 'collapse' : 'expand'} ${node.label}`}
            onClick={() => setOpen(node.path, !isOpen)}
          >
            {isOpen ? '▾' : '▸'}
          </button>
        )}
        {selected && onToggle && node.adaptable.length > 0 && (
          <Check state={state} label={node.path || 'all modules'} onToggle={() => onToggle(node)} />
        )}
        <span className="tree-label">{node.label}</span>
        {node.module && <span className="tree-type">{node.module.type}</span>}
        {node.module && <span className="tree-shape mono">[{node.module.shape.join('×')}]</span>}
        <span className="tree-params mono">{formatCount(node.params)}</span>
      </div>
      {!leaf && isOpen && (
        <ul>
          {node.children.map((child) => (
            <Node
              key={child.path}
              node={child}
              depth={depth + 1}
              selected={selected}
              onToggle={onToggle}
              open={open}
              setOpen={setOpen}
            />
          ))}
        </ul>
      )}
    </li>
  );
}

/** The model's module hierarchy; with `selected`, adaptable modules get checkboxes (parents tri-state). */
export function ModuleTree({
  modules,
  selected,
  onToggle,
  testId,
}: {
  modules: ModuleInfo[];
  selected?: ReadonlySet<string>;
  onToggle?: (node: TreeNode) => void;
  testId?: string;
}) {
  const root = useMemo(() => buildModuleTree(modules), [modules]);
  const [open, setOpenState] = useState<Set<string>>(() => {
    // open the path down to the first block so the structure is visible at once
    const initial = new Set<string>(['']);
    let node: TreeNode | undefined = root;
    for (let depth = 0; node && depth < 6; depth++) {
      initial.add(node.path);
      node = node.children.find((c) => c.children.length > 0);
    }
    return initial;
  });
  const setOpen = (path: string, value: boolean) =>
    setOpenState((prev) => {
      const next = new Set(prev);
      if (value) next.add(path);
      else next.delete(path);
      return next;
    });
  return (
    <ul className="tree" data-testid={testId}>
      <Node node={root} depth={0} selected={selected} onToggle={onToggle} open={open} setOpen={setOpen} />
    </ul>
  );
}
