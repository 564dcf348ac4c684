/**
 * Streaming per-feature statistics of a column: min, max, mean and (population) std for
 * each index of the last axis (what Keras's Normalization(axis=-1).adapt computes), the
 * whole column's, and class counts for integer label columns.
 */

/** Per-feature statistics are kept in the manifest (and shown) up to this many features. */
export const MAX_FEATURE_STATS = 4096;
/** Class counts are kept for integer labels in [0, MAX_CLASSES). */
export const MAX_CLASSES = 100_000;

export interface FeatureStats {
  min: number[];
  max: number[];
  mean: number[];
  std: number[];
}

export interface ColumnStats {
  min: number;
  max: number;
  mean: number;
  std: number;
  /** Per index of the last axis (one entry for scalar samples); absent past MAX_FEATURE_STATS. */
  features?: FeatureStats;
  /** Label value -> rows, for columns of one integer value per sample. */
  class_counts?: Record<string, number>;
}

/** Thrown for a NaN or infinite value: `index` is its position among the values seen. */
export class NonFiniteValue extends Error {
  constructor(readonly index: number, readonly value: number) {
    super(`value ${value} at flat index ${index} is not finite`);
  }
}

export class StatsAccumulator {
  readonly features: number;
  private readonly lo: Float64Array;
  private readonly hi: Float64Array;
  private readonly shift: Float64Array;
  private readonly s1: Float64Array;
  private readonly s2: Float64Array;
  /** Values seen per feature. */
  private perFeature = 0;
  private seen = 0;
  private counts: Float64Array | null;
  private maxClass = -1;

  /** `shape`: the per-sample shape; `classes`: track class counts (one value per sample). */
  constructor(shape: number[], classes: boolean) {
    const size = shape.reduce((a, b) => a * b, 1);
    this.features = shape.length ? shape[shape.length - 1]! : 1;
    if (this.features === 0) this.features = 1;
    const f = this.features;
    this.lo = new Float64Array(f).fill(Infinity);
    this.hi = new Float64Array(f).fill(-Infinity);
    this.shift = new Float64Array(f);
    this.s1 = new Float64Array(f);
    this.s2 = new Float64Array(f);
    this.counts = classes && size === 1 ? new Float64Array(16) : null;
  }

  /** Adds values (a whole number of samples, row-major). Throws NonFiniteValue. */
  update(values: ArrayLike<number>): void {
    const f = this.features;
    const n = values.length;
    if (n === 0) return;
    const { lo, hi, shift, s1, s2 } = this;
    let j = 0;
    if (this.perFeature === 0) {
      for (let k = 0; k < f && k < n; k++) shift[k] = Number.isFinite(values[k]!) ? values[k]! : 0;
    }
    const groups = n / f;
    for (let g = 0; g < groups; g++) {
      for (let k = 0; k < f; k++, j++) {
        const v = values[j]!;
        if (v - v !== 0) throw new NonFiniteValue(this.seen + j, v);
        if (v < lo[k]!) lo[k] = v;
        if (v > hi[k]!) hi[k] = v;
        const d = v - shift[k]!;
        s1[k] += d;
        s2[k] += d * d;
      }
    }
    this.perFeature += groups;
    this.seen += n;
    if (this.counts) this.countClasses(values);
  }

  private countClasses(values: ArrayLike<number>): void {
    let counts = this.counts!;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      if (!(v >= 0 && v < MAX_CLASSES && Math.floor(v) === v)) {
        this.counts = null;
        return;
      }
      if (v >= counts.length) {
        const grown = new Float64Array(Math.min(MAX_CLASSES, Math.max(v + 1, counts.length * 2)));
        grown.set(counts);
        counts = this.counts = grown;
      }
      counts[v]++;
      if (v > this.maxClass) this.maxClass = v;
    }
  }

  /** Values seen so far. */
  get count(): number {
    return this.seen;
  }

  result(): ColumnStats {
    const f = this.features;
    const c = this.perFeature;
    if (c === 0) return { min: 0, max: 0, mean: 0, std: 0 };
    const mean: number[] = [];
    const variance: number[] = [];
    for (let k = 0; k < f; k++) {
      const m = this.s1[k]! / c;
      mean.push(this.shift[k]! + m);
      variance.push(Math.max(0, this.s2[k]! / c - m * m));
    }
    const overall = mean.reduce((a, b) => a + b, 0) / f;
    const overallVar = variance.reduce((a, v, k) => a + v + (mean[k]! - overall) ** 2, 0) / f;
    let min = Infinity;
    let max = -Infinity;
    for (let k = 0; k < f; k++) {
      if (this.lo[k]! < min) min = this.lo[k]!;
      if (this.hi[k]! > max) max = this.hi[k]!;
    }
    const out: ColumnStats = {
      min,
      max,
      mean: overall,
      std: Math.sqrt(overallVar),
    };
    if (f <= MAX_FEATURE_STATS) {
      out.features = { min: Array.from(this.lo), max: Array.from(this.hi), mean, std: variance.map(Math.sqrt) };
    }
    if (this.counts) {
      const counts: Record<string, number> = {};
      for (let k = 0; k <= this.maxClass; k++) if (this.counts[k]) counts[String(k)] = this.counts[k]!;
      out.class_counts = counts;
    }
    return out;
  }
}
