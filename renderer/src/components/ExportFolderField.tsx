import { useApi } from '../context.ts';

/** The folder an export writes to: a path field, plus the desktop's folder picker when there is one. */
export function ExportFolderField({
  label,
  pickerTitle,
  value,
  onChange,
}: {
  label: string;
  pickerTitle: string;
  value: string;
  onChange: (path: string) => void;
}) {
  const api = useApi();
  return (
    <>
      <input
        className="grow mono"
        aria-label={label}
        value={value}
        onChange={(e) => onChange(e.target.value)}
        spellCheck={false}
      />
      {api.desktop && (
        <button
          type="button"
          onClick={async () => {
            const picked = await api.desktop?.saveFolder(pickerTitle, value);
            if (picked) onChange(picked);
          }}
        >
          Browse…
        </button>
      )}
    </>
  );
}
