import { useEffect, useState } from 'react';
import { z } from 'zod';
import { contract, type DataPreview } from '../../../engine/common/contract.ts';
import { Card, Empty, ErrorNote, Stat } from '../components/common.tsx';
import { ModuleTree } from '../components/ModuleTree.tsx';
import { PathPicker } from '../components/PathPicker.tsx';
import { StoreForm } from '../components/SchemaForm.tsx';
import { useStudio } from '../context.ts';
import { formatBytes, formatCount, formatDate } from '../lib/format.ts';
import { type Field, fieldsFromSchema } from '../lib/schemaForm.ts';
import { datasetKey } from '../store/files.ts';
import { formErrors } from '../store.ts';

/** The hold-out fraction field, with the bounds the engine's `files.dataset` (and project schema) accept. */
const valFractionField: Field = {
  ...fieldsFromSchema(
    z.toJSONSchema(contract['files.dataset'].input, { io: 'input', unrepresentable: 'any' }) as Record<
      string,
      unknown
    >,
  ).find((f) => f.key === 'valFraction')!,
  label: 'Held-out fraction',
  description:
    'share of the training file kept for validation (the same seed always holds out the same rows)',
  optional: false,
};

/** What the engine will train and validate on: examples of the file(s) and the split it would make. */
function SplitLine({
  dataPath,
  validationPath,
  fraction,
  task,
}: {
  dataPath: string;
  validationPath: string | null;
  fraction: number | null;
  task: 'causal-lm' | 'seq-cls';
}) {
  const describeDataset = useStudio((s) => s.describeDataset);
  const train = useStudio(
    (s) =>
      s.datasets[datasetKey({ path: dataPath, task, valFraction: validationPath ? 0 : (fraction ?? 0) })],
  );
  const validation = useStudio((s) =>
    validationPath ? s.datasets[datasetKey({ path: validationPath, task })] : undefined,
  );
  const trainError = useStudio((s) => s.errors['dataset-train']);
  const validationError = useStudio((s) => s.errors['dataset-validation']);
  useEffect(() => {
    if (!dataPath) return;
    void describeDataset('dataset-train', {
      path: dataPath,
      task,
      valFraction: validationPath ? 0 : (fraction ?? 0),
    });
  }, [dataPath, validationPath, fraction, task, describeDataset]);
  useEffect(() => {
    if (validationPath) void describeDataset('dataset-validation', { path: validationPath, task });
  }, [validationPath, task, describeDataset]);
  if (!dataPath) return null;
  let text: string | null = null;
  if (trainError) text = null;
  else if (!train) text = 'reading the dataset…';
  else if (validationPath)
    text = validation
      ? `${formatCount(train.examples)} training examples; ${formatCount(validation.examples)} validation examples from ${validationPath.split(/[\\/]/).pop()}`
      : validationError
        ? null
        : 'reading the validation file…';
  else if (train.split)
    text = `${formatCount(train.examples)} examples: ${formatCount(train.split.train)} to train on, ${formatCount(train.split.validation)} held out for validation (${Math.round(train.split.fraction * 1000) / 10} %, seed ${train.split.seed})`;
  else
    text = `${formatCount(train.examples)} examples, all for training: no validation loss without a validation file or a held-out fraction`;
  return (
    <div className="split-line" data-testid="split-line">
      <ErrorNote area="dataset-train" />
      <ErrorNote area="dataset-validation" />
      {text && <p className={train?.split || validation ? 'small' : 'small warn-text'}>{text}</p>}
    </div>
  );
}

function NewProjectForm() {
  const appInfo = useStudio((s) => s.appInfo);
  const busy = useStudio((s) => s.busy.project);
  const createProject = useStudio((s) => s.createProject);
  const invalid = useStudio((s) => formErrors(s, 'new-project').length > 0);
  const [dir, setDir] = useState('');
  const [modelDir, setModelDir] = useState('');
  const [dataPath, setDataPath] = useState('');
  const [validationMode, setValidationMode] = useState<'fraction' | 'file'>('fraction');
  const [validationPath, setValidationPath] = useState('');
  const [fraction, setFraction] = useState<Record<string, unknown>>({ valFraction: 0.1 });
  const [task, setTask] = useState<'causal-lm' | 'seq-cls'>('causal-lm');
  const valFraction = typeof fraction.valFraction === 'number' ? fraction.valFraction : null;
  const validationFile = validationMode === 'file' ? validationPath.trim() : '';
  const missing =
    !dir.trim() || !modelDir.trim() || !dataPath.trim() || (validationMode === 'file' && !validationFile);
  return (
    <form
      className="stack"
      data-testid="new-project"
      onSubmit={(e) => {
        e.preventDefault();
        void createProject({
          dir: dir.trim(),
          modelDir: modelDir.trim(),
          dataPath: dataPath.trim(),
          task,
          settings: {
            data: validationFile ? { validation: validationFile } : { valFraction: valFraction ?? 0 },
          },
        });
      }}
    >
      <PathPicker
        id="new-dir"
        label="Project folder (created)"
        value={dir}
        onChange={setDir}
        kind="new-folder"
        placeholder={appInfo ? `${appInfo.defaultProjectsDir}/my-project` : ''}
      />
      <PathPicker
        id="new-model"
        label="Base model folder"
        value={modelDir}
        onChange={setModelDir}
        kind="model"
        help="a Hugging Face model folder: config.json, model.safetensors, tokenizer.json"
      />
      {appInfo?.demoModelDir && (
        <button
          type="button"
          className="link small align-start"
          onClick={() => setModelDir(appInfo.demoModelDir ?? '')}
        >
          use the bundled demo model
        </button>
      )}
      <PathPicker
        id="new-data"
        label="Training data"
        value={dataPath}
        onChange={setDataPath}
        kind="dataset"
        help="JSONL (prompt/completion, chat messages or text), CSV or TSV"
      />
      <fieldset className="validation-choice">
        <legend>Validation</legend>
        {(
          [
            ['fraction', 'hold out part of the training data'],
            ['file', 'a validation file'],
          ] as const
        ).map(([mode, text]) => (
          <label className="radio" key={mode}>
            <input
              type="radio"
              name="validation"
              checked={validationMode === mode}
              onChange={() => setValidationMode(mode)}
            />
            {text}
          </label>
        ))}
        {validationMode === 'fraction' ? (
          <StoreForm
            form="new-project"
            fields={[valFractionField]}
            values={fraction}
            onChange={setFraction}
          />
        ) : (
          <PathPicker
            id="new-validation"
            label="Validation file"
            value={validationPath}
            onChange={setValidationPath}
            kind="dataset"
          />
        )}
      </fieldset>
      <SplitLine
        dataPath={dataPath.trim()}
        validationPath={validationFile || null}
        fraction={valFraction}
        task={task}
      />
      <div className="field">
        <label htmlFor="new-task">Task</label>
        <select id="new-task" value={task} onChange={(e) => setTask(e.target.value as typeof task)}>
          <option value="causal-lm">Language modelling (causal LM)</option>
          <option value="seq-cls">Sequence classification</option>
        </select>
      </div>
      <button
        type="submit"
        className="primary"
        disabled={busy || missing || invalid}
        data-testid="create-project"
      >
        Create project
      </button>
    </form>
  );
}

function StartPanel() {
  const appInfo = useStudio((s) => s.appInfo);
  const recent = useStudio((s) => s.recent);
  const busy = useStudio((s) => s.busy.project);
  const openDemo = useStudio((s) => s.openDemo);
  const openProject = useStudio((s) => s.openProject);
  const [openDir, setOpenDir] = useState('');
  return (
    <div className="start">
      <Card title="Try the demo" className="start-demo" testId="demo-card">
        <p>
          A tiny language model bundled with the studio and a small instruction dataset: train an adapter in
          seconds and look inside it.
        </p>
        <button
          type="button"
          className="primary big"
          disabled={busy || !appInfo?.demoModelDir}
          onClick={() => void openDemo()}
          data-testid="open-demo"
        >
          {busy ? 'Opening…' : 'Open demo project'}
        </button>
        {appInfo && !appInfo.demoModelDir && (
          <p className="muted">The demo model is not installed (assets/demo is missing).</p>
        )}
      </Card>
      <Card title="Open a project">
        <form
          onSubmit={(e) => {
            e.preventDefault();
            if (openDir.trim()) void openProject(openDir.trim());
          }}
        >
          <PathPicker
            id="open-dir"
            label="Project folder"
            value={openDir}
            onChange={setOpenDir}
            kind="project"
          />
          <button type="submit" disabled={busy || !openDir.trim()}>
            Open
          </button>
        </form>
        <h3 className="sub">Recent</h3>
        {recent.length === 0 ? (
          <p className="muted">No recent projects.</p>
        ) : (
          <ul className="recent">
            {recent.map((r) => (
              <li key={r.dir}>
                <button
                  type="button"
                  className="recent-entry"
                  onClick={() => void openProject(r.dir)}
                  title={r.dir}
                  data-testid="recent-entry"
                >
                  <span className="recent-name">{r.name}</span>
                  <span className="recent-path muted mono small">{r.dir}</span>
                  <span className="muted small">{formatDate(r.openedAt)}</span>
                </button>
              </li>
            ))}
          </ul>
        )}
      </Card>
      <Card title="New project">
        <NewProjectForm />
      </Card>
    </div>
  );
}

export function PreviewList({ preview }: { preview: DataPreview }) {
  return (
    <div className="preview" data-testid="data-preview">
      <div className="preview-meta">
        <Stat label="Format" value={preview.format} />
        <Stat label="Train examples" value={formatCount(preview.trainCount)} />
        <Stat
          label="Validation"
          value={formatCount(preview.validationCount)}
          hint={preview.validationSource}
        />
        <span className="muted small">validation: {preview.validationSource}</span>
      </div>
      <p className="legend small">
        <span className="seg seg-masked">prompt (no loss)</span>{' '}
        <span className="seg seg-trained">trained tokens</span>
      </p>
      <ol className="examples">
        {preview.examples.map((example) => (
          <li key={`${example.split}-${example.index}`} className="example">
            <div className="example-head small muted">
              #{example.index} · {example.split} · {example.tokens} tokens
              {example.truncated ? ' · truncated' : ''}
              {example.label !== undefined && (
                <>
                  {' '}
                  · label <strong>{example.label}</strong>
                </>
              )}
            </div>
            <div className="example-text">
              {example.segments.map((segment, i) => (
                <span
                  // biome-ignore lint/suspicious/noArrayIndexKey: segments are positional
                  key={i}
                  className={`seg ${segment.trained ? 'seg-trained' : 'seg-masked'}`}
                >
                  {segment.text}
                </span>
              ))}
            </div>
          </li>
        ))}
      </ol>
    </div>
  );
}

export function ProjectView() {
  const project = useStudio((s) => s.project);
  const model = useStudio((s) => s.model);
  const preview = useStudio((s) => s.preview);
  const setView = useStudio((s) => s.setView);
  if (!project) {
    return (
      <div className="view">
        <header className="view-head">
          <h1>Adapter Studio</h1>
          <p className="muted">
            Parameter-efficient fine-tuning on your machine: no Python, no CUDA toolkit.
          </p>
        </header>
        <ErrorNote area="project" />
        <StartPanel />
      </div>
    );
  }
  return (
    <div className="view">
      <header className="view-head">
        <div>
          <h1>{project.name}</h1>
          <p className="muted mono small">{project.dir}</p>
        </div>
        <div className="head-actions">
          <button type="button" className="primary" onClick={() => setView('adapter')}>
            Configure adapter →
          </button>
        </div>
      </header>
      <ErrorNote area="project" />
      <div className="grid-2">
        <Card title="Base model" testId="model-card">
          <ErrorNote area="model" />
          {model ? (
            <>
              <div className="stats">
                <Stat label="Architecture" value={model.architecture} />
                <Stat label="Parameters" value={formatCount(model.numParameters)} />
                <Stat label="Size on disk" value={formatBytes(model.sizeBytes)} />
                <Stat label="Layers" value={model.numLayers} />
                <Stat label="Hidden" value={model.hiddenSize} />
                <Stat label="Vocabulary" value={formatCount(model.vocabSize)} />
              </div>
              <p className="muted small mono">{model.dir}</p>
              <h3 className="sub">Module tree</h3>
              <div className="scroll tree-box">
                <ModuleTree modules={model.modules} testId="model-tree" />
              </div>
            </>
          ) : (
            <Empty title="Reading the model…" />
          )}
        </Card>
        <Card title="Dataset" testId="dataset-card">
          <p className="muted small mono">{project.dataPath}</p>
          <ErrorNote area="preview" />
          {preview ? <PreviewList preview={preview} /> : <Empty title="Preparing the preview…" />}
        </Card>
      </div>
    </div>
  );
}
