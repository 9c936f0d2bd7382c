import type { FilesSlice, Slice } from './types.ts';

export function datasetKey(input: { path: string; task?: string; valFraction?: number }): string {
  return `${input.path}|${input.task ?? 'causal-lm'}|${input.valFraction ?? 0}`;
}

export const filesSlice: Slice<FilesSlice> = (set, get) => ({
  listing: null,
  browsingFor: null,
  datasets: {},

  async browse(field, dir) {
    if (field === null) {
      set({ browsingFor: null });
      return;
    }
    set({ browsingFor: field });
    const projectDir = get().project?.dir;
    const listing = await get().request('files', 'files.list', { dir, projectDir });
    if (listing) set({ listing });
    // a folder the browser may not show (or that is gone): say why, and show where browsing may start
    else if (dir) {
      const start = await get().request('files-start', 'files.list', { projectDir });
      if (start) set({ listing: start });
    }
  },

  async describeDataset(area, input) {
    const info = await get().request(area, 'files.dataset', input);
    if (info) set((s) => ({ datasets: { ...s.datasets, [datasetKey(input)]: info } }));
    return info;
  },
});
