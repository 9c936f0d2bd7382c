import { useState } from 'react';
import type { DataPreview } from '../../../engine/api/contract.ts';
import { Card, Empty, ErrorNote, Stat } from '../components/common.tsx';
import { ModuleTree } from '../components/ModuleTree.tsx';
import { useApi, useStudio } from '../context.ts';
import { formatBytes, formatCount, formatDate } from '../lib/format.ts';

function PathInput({
  id,
  label,
  value,
  onChange,
  placeholder,
  browseTitle,
}: {
  id: string;
  label: string;
  value: string;
  onChange: (v: string) => void;
  placeholder?: string;
  browseTitle?: string;
}) {
  const api = useApi();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <div className="path-input">
        <input
          id={id}
          value={value}
          placeholder={placeholder}
          onChange={(e) => onChange(e.target.value)}
          spellCheck={false}
        />
        {api.desktop && browseTitle && (
          <button
            type="button"
            onClick={async () => {
              const picked = await api.desktop?.openFolder(browseTitle);
              if (picked) onChange(picked);
            }}
          >
            Browse…
          </button>
        )}
      </div>
    </div>
  );
}

function StartPanel() {
  const appInfo = useStudio((s) => s.appInfo);
  const recent = useStudio((s) => s.recent);
  const busy = useStudio((s) => s.busy.project);
  const openDemo = useStudio((s) => s.openDemo);
  const openProject = useStudio((s) => s.openProject);
  const createProject = useStudio((s) => s.createProject);
  const [openDir, setOpenDir] = useState('');
  const [dir, setDir] = useState('');
  const [modelDir, setModelDir] = useState('');
  const [dataPath, setDataPath] = useState('');
  const [task, setTask] = useState<'causal-lm' | 'seq-cls'>('causal-lm');
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
          <PathInput
            id="open-dir"
            label="Project folder"
            value={openDir}
            onChange={setOpenDir}
            browseTitle="Open project"
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
        <form
          className="stack"
          onSubmit={(e) => {
            e.preventDefault();
            void createProject({
              dir: dir.trim(),
              modelDir: modelDir.trim(),
              dataPath: dataPath.trim(),
              task,
            });
          }}
        >
          <PathInput
            id="new-dir"
            label="Project folder (created)"
            value={dir}
            onChange={setDir}
            placeholder={appInfo ? `${appInfo.defaultProjectsDir}/my-project` : ''}
            browseTitle="Project folder"
          />
          <PathInput
            id="new-model"
            label="Base model folder (config.json, model.safetensors, tokenizer.json)"
            value={modelDir}
            onChange={setModelDir}
            browseTitle="Base model folder"
          />
          {appInfo?.demoModelDir && (
            <button
              type="button"
              className="link small"
              onClick={() => setModelDir(appInfo.demoModelDir ?? '')}
            >
              use the bundled demo model
            </button>
          )}
          <PathInput
            id="new-data"
            label="Dataset file (JSONL, CSV or TSV)"
            value={dataPath}
            onChange={setDataPath}
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
            disabled={busy || !dir.trim() || !modelDir.trim() || !dataPath.trim()}
          >
            Create project
          </button>
        </form>
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
