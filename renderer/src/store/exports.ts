import type { ExportSlice, Slice } from './types.ts';

export const exportSlice: Slice<ExportSlice> = (set, get) => ({
  estimates: {},
  exports: [],

  async estimateExport(runDir) {
    const estimate = await get().request('export-estimate', 'export.estimate', { runDir });
    if (estimate) set((s) => ({ estimates: { ...s.estimates, [runDir]: estimate } }));
  },
  async runExport(runDir, format, out, extra = {}) {
    const result = await get().request(`export-${format}`, 'export.run', { runDir, format, out, ...extra });
    if (result) set((s) => ({ exports: [result, ...s.exports.filter((e) => e.out !== result.out)] }));
    return result;
  },
});
