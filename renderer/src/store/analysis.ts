import type { AnalysisSlice, EigenJob, Slice } from './types.ts';

export const analysisSlice: Slice<AnalysisSlice> = (set, get) => ({
  analysisSection: 'norms',
  setAnalysisSection: (analysisSection) => set({ analysisSection }),
  analysis: {},
  runComparison: null,
  eigenJobs: {},

  async loadAnalysis(runDir) {
    const analysis = await get().request('analysis', 'analysis.get', { runDir, maxSteps: 60 });
    if (analysis) set((s) => ({ analysis: { ...s.analysis, [runDir]: analysis } }));
  },
  async compareRuns(runA, runB) {
    const runComparison = await get().request('compare-runs', 'analysis.compare', {
      runA,
      runB,
      maxPoints: 400,
    });
    set({ runComparison });
  },
  async startEigen(runDir, module) {
    const job = await get().request('eigen', 'analysis.eigen.start', { runDir, module });
    if (job) {
      set((s) => ({
        eigenJobs: {
          ...s.eigenJobs,
          [job.jobId]: { jobId: job.jobId, runDir, module, fraction: 0, message: 'queued' },
        },
      }));
    }
  },
  async cancelEigen(jobId) {
    const done = await get().request('eigen', 'analysis.eigen.cancel', { jobId });
    if (done) {
      set((s) => {
        const eigenJobs = { ...s.eigenJobs };
        delete eigenJobs[jobId];
        return { eigenJobs };
      });
    }
  },
  applyEigenEvent(event) {
    set((s) => {
      const job = s.eigenJobs[event.jobId];
      if (!job) return {};
      const next: EigenJob =
        event.type === 'eigen.progress'
          ? { ...job, fraction: event.fraction, message: event.message }
          : event.type === 'eigen.done'
            ? { ...job, fraction: 1, message: 'done', result: event.result }
            : { ...job, message: 'failed', error: event.error };
      return { eigenJobs: { ...s.eigenJobs, [event.jobId]: next } };
    });
  },
});
