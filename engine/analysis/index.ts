/**
 * Adaptation analysis: per-module norms, scaling factors, exact low-rank spectra, distributions, eigenvalues
 * (background jobs), time series recorded during training, cross-run comparison, and the files under
 * `runs/<id>/analysis/` with typed chart data (`readAnalysis`).
 */
export {
  type CompareOptions,
  type CompareSide,
  compareAdapters,
  compareRuns,
  downsample,
  subspaceSimilarity,
} from './compare.ts';
export { DEFAULT_BINS, histogram, moments } from './distribution.ts';
export {
  EigCancelledError,
  type EigenJob,
  type EigenJobOptions,
  type EigenRequest,
  eigenMatrices,
  eigenRate,
  estimateEigenCost,
  matrixHash,
  startEigenJob,
} from './eigen.ts';
export {
  type CollectOptions,
  collectMetrics,
  type MetricsCache,
  newMetricsCache,
  tensorNorms,
} from './metrics.ts';
export {
  AnalysisRecorder,
  CHEAP_EXACT_RANK,
  type RecorderOptions,
  type RecordTrigger,
  runRecorder,
} from './recorder.ts';
export { scalingFactors, vectorStats } from './scaling.ts';
export { type AnalyzeOptions, analyzeAdapter, budgetOf } from './snapshot.ts';
export {
  DENSE_SPECTRUM_LIMIT,
  effectiveRank,
  energyFractions,
  lowRankSvd,
  spectralNorm,
  stableRank,
} from './spectrum.ts';
export {
  AnalysisFileError,
  analysisDir,
  buildHeatmaps,
  buildSeries,
  compareFile,
  eigenDir,
  HEATMAP_METRICS,
  readAnalysis,
  readTimeSeries,
  snapshotFile,
  TIMESERIES_FILE,
  writeComparison,
  writeSnapshot,
} from './store.ts';
export { type AnalysisSummary, formatSummary, type ScaleMove, summarize } from './summary.ts';
export * from './types.ts';
