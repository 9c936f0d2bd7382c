import type { BrowseEntry } from '../../../engine/common/contract.ts';
import { useApi, useStudio } from '../context.ts';
import { formatBytes, formatCount } from '../lib/format.ts';
import { ErrorNote } from './common.tsx';

/**
 * What a path field wants: a project to open, a model folder, a dataset file, a folder to create (a new
 * project, an export) whose parent is browsed, or an existing folder taken as it is (an adapter to import).
 */
export type PathKind = 'project' | 'model' | 'dataset' | 'new-folder' | 'folder';

const DATASET_EXTENSIONS = ['jsonl', 'csv', 'tsv', 'json', 'ndjson'];

function separatorOf(dir: string): string {
  return dir.includes('\\') && !dir.includes('/') ? '\\' : '/';
}

function lastPart(path: string): string {
  return path.split(/[\\/]/).filter(Boolean).pop() ?? '';
}

function EntryLine({ entry }: { entry: BrowseEntry }) {
  const icon = { dir: '📁', project: '▤', model: '◈', dataset: '≡' }[entry.kind];
  return (
    <>
      <span className="browse-icon" aria-hidden>
        {icon}
      </span>
      <span className="browse-name">{entry.name}</span>
      {entry.model && (
        <span className="browse-meta small muted">
          {entry.model.architecture} · {formatBytes(entry.model.sizeBytes)}
        </span>
      )}
      {entry.dataset && (
        <span className="browse-meta small muted">
          {entry.dataset.format} ·{' '}
          {entry.dataset.rows === null
            ? formatBytes(entry.dataset.bytes)
            : `${formatCount(entry.dataset.rows)} rows`}
        </span>
      )}
      {entry.kind === 'project' && <span className="browse-meta small muted">studio project</span>}
      {entry.problem && <span className="browse-meta small bad-text">{entry.problem}</span>}
    </>
  );
}

/** The engine's folder browser (browser mode): roots, the folder, its model folders and datasets. */
function FolderBrowser({
  id,
  kind,
  value,
  onChange,
}: {
  id: string;
  kind: PathKind;
  value: string;
  onChange: (p: string) => void;
}) {
  const listing = useStudio((s) => (s.browsingFor === id ? s.listing : null));
  const busy = useStudio((s) => Boolean(s.busy.files));
  const browse = useStudio((s) => s.browse);
  const close = () => void browse(null);
  const pick = (path: string) => {
    onChange(path);
    close();
  };
  const wanted = (e: BrowseEntry) =>
    (kind === 'model' && e.kind === 'model') ||
    (kind === 'dataset' && e.kind === 'dataset') ||
    (kind === 'project' && e.kind === 'project');
  return (
    <div
      className="browser"
      role="dialog"
      aria-label={`choose a ${kind === 'new-folder' ? 'folder' : kind}`}
      data-testid="folder-browser"
    >
      <div className="browser-roots">
        {listing?.roots.map((root) => (
          <button
            key={root.path}
            type="button"
            className="chip"
            onClick={() => void browse(id, root.path)}
            title={root.path}
          >
            {root.label}
          </button>
        ))}
      </div>
      <ErrorNote area="files" />
      {listing && (
        <>
          <div className="browser-head">
            <button
              type="button"
              disabled={!listing.parent || busy}
              onClick={() => listing.parent && void browse(id, listing.parent)}
              aria-label="parent folder"
            >
              ↑
            </button>
            <span className="mono small browser-dir" title={listing.dir} data-testid="browser-dir">
              {listing.dir}
            </span>
          </div>
          <ul className="browser-list">
            {listing.entries.map((entry) => (
              <li key={entry.path} className={wanted(entry) ? 'wanted' : ''} data-kind={entry.kind}>
                {wanted(entry) ? (
                  <button
                    type="button"
                    className="browse-entry"
                    onClick={() => pick(entry.path)}
                    title={`use ${entry.path}`}
                  >
                    <EntryLine entry={entry} />
                  </button>
                ) : entry.kind === 'dataset' ? (
                  <span className="browse-entry muted">
                    <EntryLine entry={entry} />
                  </span>
                ) : (
                  <button
                    type="button"
                    className="browse-entry"
                    onClick={() => void browse(id, entry.path)}
                    title={`open ${entry.path}`}
                  >
                    <EntryLine entry={entry} />
                  </button>
                )}
              </li>
            ))}
            {listing.entries.length === 0 && <li className="muted small">nothing to choose here</li>}
          </ul>
          {listing.omitted > 0 && (
            <p className="muted small">
              and {listing.omitted} other file{listing.omitted === 1 ? '' : 's'}
            </p>
          )}
        </>
      )}
      <div className="btn-row">
        {kind === 'folder' && listing && (
          <button type="button" className="primary" onClick={() => pick(listing.dir)}>
            Use this folder
          </button>
        )}
        {kind === 'new-folder' && listing && (
          <button
            type="button"
            className="primary"
            onClick={() =>
              pick(`${listing.dir}${separatorOf(listing.dir)}${lastPart(value) || 'my-project'}`)
            }
          >
            Create it in this folder
          </button>
        )}
        <button type="button" onClick={close}>
          Close
        </button>
      </div>
    </div>
  );
}

/**
 * A path field with a Browse button: native dialogs in the desktop app, the engine's folder browser in
 * browser mode (a remote box, where nobody remembers the model's path). Typing stays possible.
 */
export function PathPicker({
  id,
  label,
  value,
  onChange,
  kind,
  placeholder,
  help,
}: {
  id: string;
  label: string;
  value: string;
  onChange: (v: string) => void;
  kind: PathKind;
  placeholder?: string;
  help?: string;
}) {
  const api = useApi();
  const open = useStudio((s) => s.browsingFor === id);
  const browse = useStudio((s) => s.browse);
  const startIn = () => {
    const text = value.trim();
    if (!text) return undefined;
    // a file or a folder still to be made: browse where it is (or would be)
    return kind === 'dataset' || kind === 'new-folder'
      ? text.replace(/[\\/][^\\/]*$/, '') || undefined
      : text;
  };
  const desktopPick = async () => {
    const d = api.desktop;
    if (!d) return null;
    if (kind === 'dataset') return d.openFile(label, DATASET_EXTENSIONS);
    if (kind === 'new-folder') return d.saveFolder(label, value || undefined);
    return d.openFolder(label);
  };
  return (
    <div className="field" data-path-field={id}>
      <label htmlFor={id}>{label}</label>
      <div className="path-input">
        <input
          id={id}
          className="mono"
          value={value}
          placeholder={placeholder}
          onChange={(e) => onChange(e.target.value)}
          spellCheck={false}
          autoComplete="off"
        />
        <button
          type="button"
          aria-expanded={api.desktop ? undefined : open}
          data-testid={`browse-${id}`}
          onClick={async () => {
            if (api.desktop) {
              const picked = await desktopPick();
              if (picked) onChange(picked);
            } else if (open) void browse(null);
            else void browse(id, startIn());
          }}
        >
          Browse…
        </button>
      </div>
      {help && <span className="field-help">{help}</span>}
      {open && <FolderBrowser id={id} kind={kind} value={value} onChange={onChange} />}
    </div>
  );
}
