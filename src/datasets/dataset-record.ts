import type { Dtype } from './dtypes.ts';
import type { ColumnStats, FeatureStats } from './stats.ts';

/**
 * A stored column: its per-sample shape, dtype, value range (for label checks) and, for
 * datasets stored since format 2, statistics, checksum and label vocabulary.
 */
export interface ColumnInfo {
  /** The input/output name it feeds, or null for the unnamed single x / y. */
  name: string | null;
  shape: number[];
  /** Storage dtype (format 1 datasets are all float32). Every column is fed as float32. */
  dtype: Dtype;
  min: number;
  max: number;
  /** File name inside the dataset directory. */
  file: string;
  mean?: number;
  std?: number;
  /** Per index of the last axis (absent past MAX_FEATURE_STATS features). */
  features?: FeatureStats;
  /** Label value -> rows, for columns of one integer per sample. */
  class_counts?: Record<string, number>;
  /** The CSV columns along the last axis, when the column came from a CSV. */
  columns?: string[];
  /** String labels of a CSV column (by its name): class index -> string. */
  vocabulary?: Record<string, string[]>;
  /** Bytes of the file and its SHA-256 (hex). */
  bytes?: number;
  sha256?: string;
}

/** The dataset record in Redis (and manifest.json next to its files). */
export interface DatasetRecord {
  id: string;
  name: string;
  samples: number;
  x_columns: ColumnInfo[];
  y_columns: ColumnInfo[];
  /** Keras's sample_weight: one number >= 0 per sample (shape []), when the dataset has one. */
  w_column?: ColumnInfo;
  created_at: string;
  /** 2 for datasets with dtypes and statistics; absent for the first format (float32 only). */
  format?: number;
  /** How it was made: json, csv, npy (multipart), npz, split, builtin. */
  source?: string;
  /** Bytes of all column files. */
  bytes?: number;
  /** "sha256:<hex>" over the column files' hashes, in file order. */
  checksum?: string;
  /** Built-in datasets are shared by every tenant and read-only. */
  builtin?: boolean;
  /** Directory under DATA_DIR holding the files, when not the tenant's own (built-ins). */
  storage?: string;
  /** Where the data comes from and its licence (built-ins). */
  attribution?: string;
  /** For a part of POST /v1/datasets/:id/split: where it came from. */
  split_of?: { dataset_id: string; part: number; fractions: number[]; seed: number; stratify: boolean };
}

type TensorSpec = { shape: number[]; dtype: string };

/** A column's statistics as the API shows them: the stored ones. */
type PublicStats = ColumnStats;

/** x or y as API.md shows it: one entry for the unnamed single column, else keyed by name. */
function bySide<T>(cols: ColumnInfo[], pick: (c: ColumnInfo) => T | undefined): T | Record<string, T> | null {
  if (cols.length === 0) return null;
  if (cols.length === 1 && cols[0].name === null) return pick(cols[0]) ?? null;
  const entries = cols.map((c) => [c.name, pick(c)] as const).filter(([, v]) => v !== undefined);
  return entries.length ? Object.fromEntries(entries) as Record<string, T> : null;
}

function statsOf(c: ColumnInfo): PublicStats | undefined {
  if (c.mean === undefined || c.std === undefined) return undefined;
  return {
    min: c.min, max: c.max, mean: c.mean, std: c.std,
    ...(c.features ? { features: c.features } : {}),
    ...(c.class_counts ? { class_counts: c.class_counts } : {}),
  };
}

/**
 * The dataset as the API shows it (API.md): x and y as {shape, dtype} exactly as before;
 * statistics, CSV column names and label vocabularies beside them, in the same x / y layout.
 */
export function publicDataset(rec: DatasetRecord) {
  const spec = (c: ColumnInfo): TensorSpec => ({ shape: c.shape, dtype: c.dtype });
  const all = [...rec.x_columns, ...rec.y_columns];
  const stats = all.some((c) => c.mean !== undefined) ? { x: bySide(rec.x_columns, statsOf), y: bySide(rec.y_columns, statsOf) } : undefined;
  const columns = all.some((c) => c.columns) ? { x: bySide(rec.x_columns, (c) => c.columns), y: bySide(rec.y_columns, (c) => c.columns) } : undefined;
  const vocabulary = Object.assign({}, ...rec.y_columns.map((c) => c.vocabulary ?? {})) as Record<string, string[]>;
  return {
    id: rec.id,
    name: rec.name,
    samples: rec.samples,
    x: bySide(rec.x_columns, spec),
    y: bySide(rec.y_columns, spec),
    created_at: rec.created_at,
    ...(rec.source ? { source: rec.source } : {}),
    ...(rec.bytes !== undefined ? { bytes: rec.bytes } : {}),
    ...(rec.checksum ? { checksum: rec.checksum } : {}),
    ...(stats ? { stats } : {}),
    ...(columns ? { columns } : {}),
    ...(Object.keys(vocabulary).length ? { vocabulary } : {}),
    ...(rec.builtin ? { builtin: true } : {}),
    ...(rec.attribution ? { attribution: rec.attribution } : {}),
    ...(rec.split_of ? { split_of: rec.split_of } : {}),
    ...(rec.w_column ? { sample_weight: sampleWeightOf(rec.w_column) } : {}),
  };
}

/** The sample-weight column as the API shows it. */
function sampleWeightOf(c: ColumnInfo) {
  return { shape: c.shape, dtype: c.dtype, min: c.min, max: c.max, ...(c.mean !== undefined ? { mean: c.mean } : {}) };
}

/** Bytes one sample of these columns takes as float32 (what training feeds). */
export function float32RowBytes(cols: ColumnInfo[]): number {
  return cols.reduce((a, c) => a + 4 * c.shape.reduce((p, d) => p * d, 1), 0);
}
