import { useEffect } from 'react';
import { ErrorNote, ProgressBar, StatusBadge } from './components/common.tsx';
import { useApi, useStudio } from './context.ts';
import { eventBatcher } from './store/events.ts';
import { isActive, type ViewId, views } from './store.ts';
import { AdapterView } from './views/AdapterView.tsx';
import { AnalysisView } from './views/AnalysisView.tsx';
import { ExportView } from './views/ExportView.tsx';
import { ProjectView } from './views/ProjectView.tsx';
import { RunsView } from './views/RunsView.tsx';
import { TrainView } from './views/TrainView.tsx';
import { TryView } from './views/TryView.tsx';

const titles: Record<ViewId, string> = {
  project: 'Project',
  adapter: 'Adapter',
  train: 'Train',
  analysis: 'Analysis',
  runs: 'Runs',
  export: 'Export',
  try: 'Try it',
};

const icons: Record<ViewId, string> = {
  project: '▤',
  adapter: '◈',
  train: '▶',
  analysis: '▦',
  runs: '☰',
  export: '⇪',
  try: '✎',
};

function EngineBanner() {
  const host = useStudio((s) => s.host);
  const restart = useStudio((s) => s.restartEngine);
  const resume = useStudio((s) => s.resumeRun);
  if (host.state === 'up') {
    if (host.interruptedRuns.length === 0) return null;
    return (
      // biome-ignore lint/a11y/useSemanticElements: a live status banner that holds action buttons, not a form output
      <div className="banner warn" role="status" data-testid="engine-banner">
        <span>The engine restarted. {host.interruptedRuns.length} run(s) stopped mid-training.</span>
        {host.interruptedRuns.map((dir) => (
          <button key={dir} type="button" className="primary" onClick={() => void resume(dir)}>
            Resume {dir.split(/[\\/]/).pop()} from its last checkpoint
          </button>
        ))}
      </div>
    );
  }
  return (
    <div
      className={`banner ${host.state === 'down' ? 'bad' : 'warn'}`}
      role="alert"
      data-testid="engine-banner"
    >
      <span>
        {host.state === 'down' ? 'The engine stopped: ' : ''}
        {host.message}
      </span>
      {host.state === 'down' && (
        <button type="button" className="primary" onClick={() => void restart()}>
          Restart the engine
        </button>
      )}
    </div>
  );
}

/** The sidebar chip of each run the engine drives: it opens the run's Train view, in its own project. */
function TrainingTicker() {
  const live = useStudio((s) => s.liveRuns);
  const project = useStudio((s) => s.project);
  const details = useStudio((s) => s.details);
  const openProject = useStudio((s) => s.openProject);
  const selectRun = useStudio((s) => s.selectRun);
  const setView = useStudio((s) => s.setView);
  const runs = Object.values(live).filter((r) => isActive(r));
  if (runs.length === 0) return null;
  return (
    <>
      {runs.map((run) => {
        const detail = details[run.dir];
        const step = Math.max(detail?.progress.step ?? 0, run.step);
        const total = detail?.progress.totalSteps ?? run.totalSteps;
        const here = project?.dir === run.projectDir;
        return (
          <button
            key={run.dir}
            type="button"
            className="ticker"
            data-testid="run-chip"
            onClick={() => {
              if (!here) void openProject(run.projectDir, { view: 'train', run: run.id });
              else {
                void selectRun(run.dir);
                setView('train');
              }
            }}
            title={`${run.status}: run ${run.id} of ${run.projectDir}: open its Train view`}
          >
            <span className="ticker-head">
              <StatusBadge status={run.status} />
              <span className="ticker-id mono">{run.id}</span>
            </span>
            {!here && (
              <span className="ticker-project small muted">{run.projectDir.split(/[\\/]/).pop()}</span>
            )}
            <ProgressBar fraction={total > 0 ? step / total : 0} label="training progress" />
            <span className="small mono">
              {step}/{total}
            </span>
          </button>
        );
      })}
    </>
  );
}

export function App() {
  const api = useApi();
  const view = useStudio((s) => s.view);
  const setView = useStudio((s) => s.setView);
  const theme = useStudio((s) => s.theme);
  const setTheme = useStudio((s) => s.setTheme);
  const project = useStudio((s) => s.project);
  const backend = useStudio((s) => s.backend);
  const handleEvents = useStudio((s) => s.handleEvents);
  const closeProject = useStudio((s) => s.closeProject);
  const training = useStudio((s) =>
    Object.values(s.liveRuns).some((r) => isActive(r) && r.status === 'running'),
  );

  useEffect(() => {
    const batcher = eventBatcher(handleEvents);
    const off = api.onEvent(batcher.push);
    return () => {
      off();
      batcher.dispose();
    };
  }, [api, handleEvents]);

  useEffect(() => {
    document.documentElement.dataset.theme = theme;
  }, [theme]);

  useEffect(() => {
    api.desktop?.setTrainingActive(training);
  }, [api, training]);

  const openProject = useStudio((s) => s.openProject);
  const openDemo = useStudio((s) => s.openDemo);
  useEffect(
    () =>
      api.desktop?.onMenu((command) => {
        if (command.kind === 'openProject') void openProject(command.dir);
        else if (command.kind === 'openDemo') void openDemo();
        else if (command.kind === 'view') setView(command.view);
        else setTheme(command.theme);
      }),
    [api, openProject, openDemo, setView, setTheme],
  );

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (!e.altKey || e.ctrlKey || e.metaKey) return;
      const index = Number(e.key) - 1;
      if (index >= 0 && index < views.length) {
        e.preventDefault();
        setView(views[index]);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [setView]);

  const View = {
    project: ProjectView,
    adapter: AdapterView,
    train: TrainView,
    analysis: AnalysisView,
    runs: RunsView,
    export: ExportView,
    try: TryView,
  }[view];

  return (
    <div className="app">
      <a href="#main" className="skip">
        Skip to content
      </a>
      <nav className="sidebar" aria-label="views">
        <div className="brand">
          <img src="./icon.svg" alt="" width={28} height={28} />
          <div>
            <div className="brand-name">Adapter Studio</div>
            <div className="brand-project small" title={project?.dir} data-testid="project-name">
              {project?.name ?? 'no project'}
            </div>
            {project && (
              <button
                type="button"
                className="link small"
                onClick={() => void closeProject()}
                data-testid="close-project"
              >
                close project
              </button>
            )}
          </div>
        </div>
        <ul>
          {views.map((v, i) => (
            <li key={v}>
              <button
                type="button"
                className={`nav ${view === v ? 'on' : ''}`}
                aria-current={view === v ? 'page' : undefined}
                onClick={() => setView(v)}
                data-testid={`nav-${v}`}
                title={`${titles[v]} (Alt+${i + 1})`}
              >
                <span className="nav-icon" aria-hidden>
                  {icons[v]}
                </span>
                {titles[v]}
              </button>
            </li>
          ))}
        </ul>
        <div className="sidebar-foot">
          <TrainingTicker />
          {backend && (
            <div className="small muted" title={backend.reason}>
              backend: <strong>{backend.chosen}</strong>
            </div>
          )}
          <button
            type="button"
            className="link small"
            onClick={() => setTheme(theme === 'dark' ? 'light' : 'dark')}
          >
            {theme === 'dark' ? '☀ Light theme' : '☾ Dark theme'}
          </button>
          <div className="small muted">{api.transport === 'electron' ? 'desktop' : 'browser mode'}</div>
        </div>
      </nav>
      <main id="main" tabIndex={-1}>
        <EngineBanner />
        {/* app-wide calls: start-up, the engine's settings, live runs, a deep link that names a missing run */}
        {['app', 'settings', 'live', 'recent', 'route'].map((area) => (
          <ErrorNote key={area} area={area} />
        ))}
        <View />
      </main>
    </div>
  );
}
