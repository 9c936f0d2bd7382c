import type { MethodName } from '../adapters/types.ts';

/** Format version of every file under `runs/<id>/analysis/`; readers reject other versions by name. */
export const ANALYSIS_VERSION = 1;

/** Norms of one adapter tensor (per-module, or model-level when `shared`). */
export interface TensorNorms {
  /** Native state key suffix at the module (`lora_A`), or the full key for model-level tensors. */
  name: string;
  shape: number[];
  trainable: boolean;
  /** A model-level tensor used by several modules (VeRA's projections, TinyLoRA's tied v). */
  shared: boolean;
  frobenius: number;
  /** Largest singular value (|x| for scalars, the L2 norm for vectors); null for tensors of rank > 2. */
  spectral: number | null;
}

/** Summary statistics of a vector of scaling values (DoRA magnitude, VeRA λ, TinyLoRA v). */
export interface VectorStats {
  name: string;
  length: number;
  mean: number;
  std: number;
  min: number;
  max: number;
  meanAbs: number;
  l2: number;
}

/** The scaling of one module's update, read from the method, its config and its state. */
export interface ScalingFactors {
  /**
   * The scalar multiplying the update, where the method has one: LoRA's α/r (or α/√r), TLoRA's learned α.
   * Null for methods without one (VeRA, TinyLoRA scale through vectors).
   */
  scale: number | null;
  /** `fixed` from the config, `learned` when a trainable scalar, `none`. */
  kind: 'fixed' | 'learned' | 'none';
  /** How `scale` is obtained, for display (`loraAlpha / r = 16 / 8`). */
  formula: string;
  /** Trainable vectors that scale the update per feature or per basis direction. */
  vectors: VectorStats[];
  /** TinyLoRA: the weight-tying group whose v this module uses. */
  group?: number;
}

export interface EnergyFraction {
  k: number;
  /** Σ_{i<k} σᵢ² / Σ σᵢ²: the share of ‖ΔW‖_F² in the top-k directions. */
  fraction: number;
}

/** Singular-value spectrum of ΔW at one module. */
export interface Spectrum {
  /**
   * `low-rank`: from `lowRankFactors()`: in snapshots by thin QR of both factors and SVD of the k × k core
   * (k ≤ 64); in the recorded time series and for k > 64 from the eigenvalues of the factors' k × k Gram
   * product in float64 (accurate for σᵢ ≳ 1e-7·σ₁).
   * `dense`: SVD of the dense ΔW (methods without low-rank factors, e.g. DoRA, on small modules), flagged.
   * `none`: not computed (no factors and the module is above the dense size limit); see `note`.
   */
  source: 'low-rank' | 'dense' | 'none';
  note?: string;
  /** Inner dimension k of the factors (or min(rows, cols) for dense). */
  rank: number;
  /** Descending; at most `rank` values (dense spectra are cut at the first 256). */
  singularValues: number[];
  /** exp(H(p)) with pᵢ = σᵢ / Σσ (Roy & Vetterli's effective rank); 0 for ΔW = 0. */
  effectiveRank: number;
  /** ‖ΔW‖_F² / ‖ΔW‖_2²; 0 for ΔW = 0. */
  stableRank: number;
  energy: EnergyFraction[];
}

/** The cheap per-module metrics recorded over training (one row of the layer × step heatmaps). */
export interface ModuleMetrics {
  module: string;
  /** Transformer block index parsed from the name (`….layers.3.…` → 3), null outside blocks. */
  layerIndex: number | null;
  /** The name with its block index replaced by `*` (`model.layers.*.self_attn.q_proj`): one heatmap each. */
  role: string;
  /** ΔW shape in logical orientation (out × in; Embedding: num × dim). */
  rows: number;
  cols: number;
  deltaFrobenius: number;
  deltaSpectral: number | null;
  baseFrobenius: number;
  /** ‖ΔW‖_F / ‖W0‖_F. */
  relativeDelta: number;
  /** √(Σ‖t‖_F²) over the module's own trainable tensors (the paper's "L2 norm" heatmap). */
  trainableNorm: number;
  tensors: TensorNorms[];
  scaling: ScalingFactors;
  spectrum: Spectrum;
}

export interface Moments {
  count: number;
  mean: number;
  /** Population standard deviation (ddof = 0). */
  std: number;
  /** m3 / m2^1.5 (biased, as scipy.stats.skew); null when std = 0. */
  skewness: number | null;
  /** m4 / m2² − 3 (biased, as scipy.stats.kurtosis); null when std = 0. */
  excessKurtosis: number | null;
}

/** Fixed-width histogram: bin i covers [min + i·w, min + (i+1)·w), the last bin includes `max`. */
export interface Histogram {
  min: number;
  max: number;
  counts: number[];
  moments: Moments;
}

export interface ModuleSnapshot extends ModuleMetrics {
  histograms: {
    base: Histogram;
    delta: Histogram;
    /** Per adapter tensor, by `TensorNorms.name`. */
    tensors: Record<string, Histogram>;
  };
}

export interface BudgetSummary {
  trainable: number;
  /** Frozen adapter tensors (random projections, SVD factors). */
  frozenAdapter: number;
  /** Parameters of the base model (what full fine-tuning trains). */
  modelParameters: number;
  /** trainable / modelParameters. */
  fraction: number;
}

/** Everything computed for an adapter at one point: `snapshot-step-N.json`. */
export interface Snapshot {
  version: typeof ANALYSIS_VERSION;
  kind: 'snapshot';
  step: number | null;
  createdAt: string;
  adapterName: string;
  method: MethodName;
  config: Record<string, unknown>;
  budget: BudgetSummary;
  modules: ModuleSnapshot[];
  shared: (TensorNorms & { histogram: Histogram })[];
  /** Wall time of the analysis itself. */
  elapsedMs: number;
}

/** One line of `timeseries.jsonl`. */
export interface TimeSeriesRow {
  version: typeof ANALYSIS_VERSION;
  kind: 'timeseries';
  step: number;
  /** `interval`: every N steps; `checkpoint`: when a checkpoint was written; `final`: end of training. */
  trigger: 'interval' | 'checkpoint' | 'final';
  time: string;
  /** Cost of this record (ms), so the overhead is visible in the run itself. */
  elapsedMs: number;
  modules: ModuleMetrics[];
  shared: TensorNorms[];
}

/** A layer × step matrix for one metric and one module role (the paper's norm and scaling heatmaps). */
export interface Heatmap {
  metric: HeatmapMetric;
  role: string;
  /** Row labels: block indices as strings, or module names for modules outside blocks. */
  rows: string[];
  modules: string[];
  steps: number[];
  /** values[row][column]; null where a module was not recorded at that step. */
  values: (number | null)[][];
}

export type HeatmapMetric =
  | 'deltaFrobenius'
  | 'deltaSpectral'
  | 'relativeDelta'
  | 'trainableNorm'
  | 'scale'
  | 'scalingVectors'
  | 'effectiveRank'
  | 'stableRank';

/** A line chart: one metric aggregated over modules, per step. */
export interface Series {
  metric: HeatmapMetric;
  aggregate: 'mean' | 'max';
  steps: number[];
  values: number[];
}

export interface SubspaceSimilarity {
  k: number;
  /** Cosines of the principal angles between the top-k singular subspaces, descending. */
  cosines: number[];
  /** ‖U_aᵀ U_b‖_F² / k ∈ [0, 1] (the LoRA paper's normalised subspace similarity). */
  similarity: number;
}

export interface ModuleComparison {
  module: string;
  normA: number;
  normB: number;
  /** Cosine of the flattened ΔW_a and ΔW_b; null when either is zero. */
  cosineDelta: number | null;
  /** Cosine of the flattened W0 + ΔW_a and W0 + ΔW_b (dominated by W0: near 1 by construction). */
  cosineAdapted: number;
  /** ‖ΔW_a − ΔW_b‖_F. */
  differenceFrobenius: number;
  /** Left (output) and right (input) singular subspaces; null when a spectrum is unavailable or ΔW = 0. */
  subspace: { left: SubspaceSimilarity; right: SubspaceSimilarity } | null;
}

/** ΔW_a − ΔW_b of one module, block-averaged to at most `rows × cols` cells for a heatmap. */
export interface DifferenceMatrix {
  module: string;
  sourceRows: number;
  sourceCols: number;
  rows: number;
  cols: number;
  /** Row-major block means. */
  values: number[];
  maxAbs: number;
}

export interface RunRef {
  /** The run or checkpoint folder, as given. */
  dir: string;
  adapterName: string;
  method: MethodName;
  step: number | null;
  trainable: number;
}

/** `compare-<other>.json`. */
export interface Comparison {
  version: typeof ANALYSIS_VERSION;
  kind: 'compare';
  createdAt: string;
  a: RunRef;
  b: RunRef;
  modules: ModuleComparison[];
  onlyInA: string[];
  onlyInB: string[];
  difference: DifferenceMatrix | null;
  budget: { a: number; b: number; fullFineTuning: number };
}

export interface EigenCost {
  n: number;
  flops: number;
  /** From a measured rate on this machine (see `eigenRate`); a guide, not a promise. */
  seconds: number;
}

/** `eigen/<hash>.json`: eigenvalues of W0 or W0 + ΔW of one square module. */
export interface EigenResult {
  version: typeof ANALYSIS_VERSION;
  kind: 'eigen';
  module: string;
  which: 'base' | 'adapted';
  n: number;
  /** sha256 of the float64 matrix bytes: the cache key. */
  hash: string;
  re: number[];
  im: number[];
  seconds: number;
  summary: {
    spectralRadius: number;
    positiveReal: number;
    negativeReal: number;
    /** Eigenvalues with a nonzero imaginary part. */
    complex: number;
  };
  /** |λ| for eigenvalues with Re λ ≥ 0 and Re λ < 0 (the paper's split), on shared bins. */
  magnitudeHistograms: { positive: Histogram; negative: Histogram };
}

/** What `readAnalysis` returns: everything under `analysis/`, without the model. */
export interface AnalysisData {
  runDir: string;
  timeseries: TimeSeriesRow[];
  heatmaps: Heatmap[];
  series: Series[];
  snapshots: { step: number | null; file: string }[];
  latestSnapshot: Snapshot | null;
  comparisons: Comparison[];
  eigen: EigenResult[];
}
