import { useEffect, useMemo, useState } from 'react';
import type { Budget } from '../../../engine/common/contract.ts';
import { Card, Empty, ErrorNote, Stat } from '../components/common.tsx';
import { ModuleTree } from '../components/ModuleTree.tsx';
import { StoreForm } from '../components/SchemaForm.tsx';
import { StartRun, useSanityWarnings } from '../components/StartRun.tsx';
import { useStudio } from '../context.ts';
import { formatBytes, formatCount, formatPercent } from '../lib/format.ts';
import { warningsByField } from '../lib/sanity.ts';
import { fieldsFromSchema } from '../lib/schemaForm.ts';
import { layerIndices, minimalTargets, toggleNode } from '../lib/tree.ts';
import { type BudgetRow, TARGET_FIELDS } from '../store.ts';

const formatLabels: Record<string, string> = {
  peft: 'PEFT adapter',
  lora: 'LoRA-converted',
  native: 'native checkpoint',
  merged: 'merged model',
};

function BudgetPanel({ budget }: { budget: Budget }) {
  return (
    <div className="budget" data-testid="budget">
      <div className="stats">
        <Stat
          label="Trainable"
          value={<span data-testid="budget-trainable">{formatCount(budget.trainable)}</span>}
        />
        <Stat label="of model" value={formatPercent(budget.percentOfModel)} />
        <Stat
          label="Frozen adapter"
          value={formatCount(budget.frozen)}
          hint="random projections, SVD factors: stored, not trained"
        />
        <Stat label="Training memory" value={formatBytes(budget.memoryBytes)} />
      </div>
      <table className="table compact">
        <thead>
          <tr>
            <th>Export</th>
            <th className="num">Size</th>
          </tr>
        </thead>
        <tbody>
          {Object.entries(budget.fileBytes).map(([format, bytes]) => (
            <tr key={format}>
              <td>{formatLabels[format] ?? format}</td>
              <td className="num mono">{formatBytes(bytes)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {Object.keys(budget.memoryBreakdown).length > 0 && (
        <details>
          <summary>Memory breakdown</summary>
          <table className="table compact">
            <tbody>
              {Object.entries(budget.memoryBreakdown).map(([k, v]) => (
                <tr key={k}>
                  <td>{k}</td>
                  <td className="num mono">{formatBytes(v)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </details>
      )}
      <h3 className="sub">
        Targets <span className="muted">({budget.targets.length} modules)</span>
      </h3>
      {budget.tyingGroups.length > 0 && (
        <div className="tying" data-testid="tying-groups">
          <h3 className="sub">Weight tying</h3>
          <p className="muted small">Modules in one group share one trainable tensor.</p>
          <ul>
            {budget.tyingGroups.map((g, i) => (
              <li key={g.name} className={`tie tie-${i % 6}`}>
                <span className="mono">{g.name}</span>{' '}
                <span className="muted">({formatCount(g.size)} params)</span>
                <div className="small muted">
                  {g.modules.length <= 6
                    ? g.modules.join(', ')
                    : `${g.modules.slice(0, 5).join(', ')} … +${g.modules.length - 5}`}
                </div>
              </li>
            ))}
          </ul>
        </div>
      )}
    </div>
  );
}

function Comparison({ rows, current }: { rows: BudgetRow[]; current: string }) {
  return (
    <table className="table" data-testid="method-comparison">
      <thead>
        <tr>
          <th>Method</th>
          <th className="num">Trainable</th>
          <th className="num">% model</th>
          <th className="num">Adapter file</th>
          <th className="num">Memory</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((row) =>
          'error' in row ? (
            <tr key={row.method}>
              <td>{row.method}</td>
              <td colSpan={4} className="muted small">
                {row.error}
              </td>
            </tr>
          ) : (
            <tr key={row.method} className={row.method === current ? 'current' : ''}>
              <td>{row.method}</td>
              <td className="num mono">{formatCount(row.trainable)}</td>
              <td className="num mono">{formatPercent(row.percentOfModel)}</td>
              <td className="num mono">{formatBytes(row.fileBytes.peft ?? row.fileBytes.native)}</td>
              <td className="num mono">{formatBytes(row.memoryBytes)}</td>
            </tr>
          ),
        )}
      </tbody>
    </table>
  );
}

/** The choices of a layer-range select: every block index, or all. */
function LayerOptions({ layers }: { layers: number[] }) {
  return (
    <>
      <option value="">all</option>
      {layers.map((l) => (
        <option key={l} value={l}>
          {l}
        </option>
      ))}
    </>
  );
}

function Targets() {
  const model = useStudio((s) => s.model);
  const draft = useStudio((s) => s.draft);
  const budget = useStudio((s) => s.budget);
  const setConfig = useStudio((s) => s.setConfig);
  const config = draft?.config ?? {};
  const target = config.targetModules;
  const [pattern, setPattern] = useState(typeof target === 'string' && target !== 'all-linear' ? target : '');
  const layers = useMemo(() => (model ? layerIndices(model.modules) : []), [model]);
  const adaptable = useMemo(
    () => (model ? model.modules.filter((m) => m.adaptable).map((m) => m.name) : []),
    [model],
  );
  const selected = useMemo(() => new Set(budget?.targets ?? []), [budget]);
  const range = config.layersToTransform;
  const rangeList = Array.isArray(range) ? (range as number[]) : typeof range === 'number' ? [range] : [];
  const from = rangeList.length > 0 ? Math.min(...rangeList) : '';
  const to = rangeList.length > 0 ? Math.max(...rangeList) : '';
  const setRange = (a: number | '', b: number | '') => {
    if (a === '' || b === '' || b < a) {
      setConfig({ layersToTransform: undefined });
      return;
    }
    setConfig({ layersToTransform: Array.from({ length: b - a + 1 }, (_, i) => a + i) });
  };
  if (!model) return <Empty title="Reading the model…" />;
  const mode =
    target === undefined
      ? 'default'
      : target === 'all-linear'
        ? 'all-linear'
        : typeof target === 'string'
          ? 'pattern'
          : 'list';
  return (
    <div className="targets" data-testid="targets">
      <div className="target-modes">
        <button
          type="button"
          className={mode === 'default' ? 'chip on' : 'chip'}
          onClick={() => setConfig({ targetModules: undefined })}
        >
          Architecture default
        </button>
        <button
          type="button"
          className={mode === 'all-linear' ? 'chip on' : 'chip'}
          onClick={() => setConfig({ targetModules: 'all-linear', layersToTransform: undefined })}
          data-testid="all-linear"
        >
          all-linear
        </button>
        <span className="muted small">
          {mode === 'list' ? `list: ${(target as string[]).join(', ')}` : ''}
        </span>
      </div>
      <form
        className="pattern-box"
        onSubmit={(e) => {
          e.preventDefault();
          setConfig({ targetModules: pattern.trim() || undefined, layersToTransform: undefined });
        }}
      >
        <label
          htmlFor="target-pattern"
          title="A regular expression matched against the full module name (PEFT's re.fullmatch)"
        >
          Pattern
        </label>
        <input
          id="target-pattern"
          className="mono"
          value={pattern}
          placeholder={String.raw`.*\.(q_proj|v_proj)`}
          onChange={(e) => setPattern(e.target.value)}
          spellCheck={false}
        />
        <button type="submit">Apply</button>
      </form>
      {layers.length > 0 && (
        <div className="layer-range">
          <span title="layersToTransform: only these transformer blocks (needs a list of names)">Layers</span>
          <select
            aria-label="first layer"
            value={from}
            onChange={(e) =>
              setRange(
                e.target.value === '' ? '' : Number(e.target.value),
                to === '' ? layers[layers.length - 1] : to,
              )
            }
          >
            <LayerOptions layers={layers} />
          </select>
          <span>to</span>
          <select
            aria-label="last layer"
            value={to}
            onChange={(e) =>
              setRange(from === '' ? layers[0] : from, e.target.value === '' ? '' : Number(e.target.value))
            }
          >
            <LayerOptions layers={layers} />
          </select>
        </div>
      )}
      <ErrorNote area="budget" />
      <div className="scroll tree-box">
        <ModuleTree
          modules={model.modules}
          selected={selected}
          testId="target-tree"
          onToggle={(node) => {
            const next = toggleNode(node, selected);
            const list = minimalTargets(next, adaptable);
            setConfig({ targetModules: list.length > 0 ? list : undefined, layersToTransform: undefined });
          }}
        />
      </div>
    </div>
  );
}

export function AdapterView() {
  const project = useStudio((s) => s.project);
  const methods = useStudio((s) => s.methods);
  const draft = useStudio((s) => s.draft);
  const budget = useStudio((s) => s.budget);
  const comparison = useStudio((s) => s.comparison);
  const setMethod = useStudio((s) => s.setMethod);
  const setConfig = useStudio((s) => s.setConfig);
  const compareMethods = useStudio((s) => s.compareMethods);
  const saveAdapter = useStudio((s) => s.saveAdapter);
  const warnings = warningsByField(useSanityWarnings(), 'adapter');
  const busy = useStudio((s) => s.busy);
  const setView = useStudio((s) => s.setView);
  const described = methods.find((m) => m.name === draft?.method);
  const fields = useMemo(
    () =>
      described
        ? fieldsFromSchema(described.jsonSchema, (k) => (TARGET_FIELDS as readonly string[]).includes(k))
        : [],
    [described],
  );
  const targetsKey = JSON.stringify([draft?.config.targetModules, draft?.config.layersToTransform]);
  // biome-ignore lint/correctness/useExhaustiveDependencies: the comparison follows the targets only
  useEffect(() => {
    if (draft) void compareMethods();
  }, [targetsKey, draft?.method]);

  if (!project || !draft) {
    return (
      <div className="view">
        <Empty title="No project open">
          <button type="button" onClick={() => setView('project')}>
            Open or create a project
          </button>
        </Empty>
      </div>
    );
  }
  return (
    <div className="view">
      <header className="view-head">
        <h1>Adapter</h1>
        <div className="head-actions">
          <button type="button" onClick={() => void saveAdapter()} disabled={busy.adapter}>
            Save to project
          </button>
          <StartRun label="Train →" testId="train-now" />
        </div>
      </header>
      <ErrorNote area="adapter" />
      <div className="method-picker">
        {methods.map((m) => (
          <button
            key={m.name}
            type="button"
            aria-pressed={m.name === draft.method}
            className={`method ${m.name === draft.method ? 'on' : ''}`}
            onClick={() => setMethod(m.name)}
            data-testid={`method-${m.name}`}
          >
            <span className="method-label">{m.label}</span>
            <span className="method-desc">{m.description}</span>
          </button>
        ))}
      </div>
      <div className="grid-3">
        <Card title={`${described?.label ?? draft.method} settings`} testId="method-form">
          <StoreForm
            form="adapter"
            fields={fields}
            values={draft.config}
            onChange={setConfig}
            warnings={warnings}
          />
        </Card>
        <Card title="Target modules">
          <Targets />
        </Card>
        <Card title="Budget" actions={busy.budget ? <span className="muted small">updating…</span> : null}>
          {budget ? (
            <BudgetPanel budget={budget} />
          ) : (
            <Empty title="No budget yet">Fix the settings to see the budget.</Empty>
          )}
        </Card>
      </div>
      <Card title="Method comparison on these targets" actions={<ErrorNote area="compare" />}>
        {comparison ? <Comparison rows={comparison} current={draft.method} /> : <Empty title="Comparing…" />}
      </Card>
    </div>
  );
}
