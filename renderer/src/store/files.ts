import type { FilesSlice, Slice } from './types.ts';

export function datasetKey(input: { path: string; task?: string; valFraction?: number }): string {
  return `${input.path}|${input.task ?? 'causal-lm'}|${input.valFraction ?? 0}`;
}

export const filesSlice: Slice<FilesSlice> = (set, get) => {
  // Listings can answer out of order (a refused folder's fallback after the next click's listing): only the
  // newest browse may set what the browser shows.
  let latest = 0;
  return {
    listing: null,
    browsingFor: null,
    datasets: {},

    async browse(field, dir) {
      const call = ++latest;
      if (field === null) {
        set({ browsingFor: null });
        return;
      }
      set({ browsingFor: field });
      const projectDir = get().project?.dir;
      const listing = await get().request('files', 'files.list', { dir, projectDir });
      if (call !== latest) return;
      if (listing) set({ listing });
      // a folder the browser may not show (or that is gone): say why, and show where browsing may start
      else if (dir) {
        const start = await get().request('files-start', 'files.list', { projectDir });
        if (start && call === latest) set({ listing: start });
      }
    },

    async describeDataset(area, input) {
      const info = await get().request(area, 'files.dataset', input);
      if (info) set((s) => ({ datasets: { ...s.datasets, [datasetKey(input)]: info } }));
      return info;
    },
  };
};
