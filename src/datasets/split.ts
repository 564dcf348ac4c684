/**
 * POST /v1/datasets/:id/split: new datasets from a shuffled partition of one (sklearn's
 * train_test_split with several parts): rows in a seeded order (the same block-and-window
 * shuffle training uses, so large datasets are read window by window), cut by fractions,
 * optionally per class (stratify) so each part keeps the class shares. Dtypes, shapes and
 * names of the columns are kept; statistics are computed afresh for each part.
 */
import { ApiError, SpecError } from '../errors.ts';
import type { ColumnInfo, DatasetRecord } from './dataset-record.ts';
import { float32RowBytes } from './dataset-record.ts';
import { datasetDir, readColumnFile } from './dataset-files.ts';
import { allocate, type StoredArray } from './dtypes.ts';
import { seededEpochPlan, shuffleLayout } from './order.ts';
import { FileCache, WindowReader } from './reader.ts';
import { createDatasets, type StageLimits } from './stage.ts';
import type { ColumnWriter } from './column-writer.ts';
import path from 'node:path';

export interface SplitOptions {
  fractions: number[];
  seed?: number;
  stratify?: boolean;
  names?: string[];
}

/** Integer sizes summing to `n`, proportional to `fractions` (largest remainders; ties to the first). */
export function partSizes(n: number, fractions: number[]): number[] {
  const exact = fractions.map((f) => f * n);
  const sizes = exact.map(Math.floor);
  let left = n - sizes.reduce((a, b) => a + b, 0);
  const byRemainder = exact.map((e, i) => [e - Math.floor(e), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let k = 0; left > 0; k = (k + 1) % byRemainder.length, left--) sizes[byRemainder[k]![1]]!++;
  return sizes;
}

/** Class index per row, from one y column of integer labels or one-hot rows. */
async function classLabels(dir: string, rec: DatasetRecord): Promise<Int32Array> {
  if (rec.y_columns.length !== 1) throw new SpecError('stratify', `stratify needs one y column of class labels; the dataset has ${rec.y_columns.length}`, 'DATASET_INVALID');
  const col = rec.y_columns[0]!;
  const size = col.shape.reduce((a, b) => a * b, 1);
  const { data } = await readColumnFile(dir, col, rec.samples);
  const labels = new Int32Array(rec.samples);
  for (let r = 0; r < rec.samples; r++) {
    if (size === 1) {
      const v = data[r]!;
      if (!(v >= 0 && Number.isInteger(v))) throw new SpecError('stratify', `stratify needs integer class labels (or one-hot rows); sample ${r} has label ${v}`, 'DATASET_INVALID');
      labels[r] = v;
    } else {
      let best = 0;
      for (let j = 1; j < size; j++) if (data[r * size + j]! > data[r * size + best]!) best = j;
      labels[r] = best;
    }
  }
  return labels;
}

/** The part of each position of the seeded order. */
function assign(order: Int32Array, fractions: number[], labels: Int32Array | null): Uint8Array {
  const n = order.length;
  const part = new Uint8Array(n);
  if (!labels) {
    const sizes = partSizes(n, fractions);
    let p = 0;
    sizes.forEach((size, i) => {
      part.fill(i, p, p + size);
      p += size;
    });
    return part;
  }
  const counts = new Map<number, number>();
  for (let r = 0; r < n; r++) counts.set(labels[r]!, (counts.get(labels[r]!) ?? 0) + 1);
  const quota = new Map([...counts].map(([c, m]) => [c, partSizes(m, fractions)]));
  const next = new Map([...counts.keys()].map((c) => [c, { part: 0, used: 0 }]));
  for (let p = 0; p < n; p++) {
    const c = labels[order[p]!]!;
    const q = quota.get(c)!;
    const st = next.get(c)!;
    while (st.used >= q[st.part]!) {
      st.part++;
      st.used = 0;
    }
    part[p] = st.part;
    st.used++;
  }
  return part;
}

/** Writes the parts; returns their records (not yet in Redis). */
export async function splitDataset(dataDir: string, tenant: string, src: DatasetRecord, opts: SplitOptions, limits: StageLimits, windowBytes: number): Promise<DatasetRecord[]> {
  const { fractions } = opts;
  const sum = fractions.reduce((a, b) => a + b, 0);
  if (Math.abs(sum - 1) > 1e-6) throw new ApiError('VALIDATION_FAILED', `fractions must sum to 1 (they sum to ${sum})`, 'fractions');
  if (opts.names && opts.names.length !== fractions.length) throw new ApiError('VALIDATION_FAILED', `give one name per part (${fractions.length})`, 'names');
  const seed = opts.seed ?? 0;
  const stratify = Boolean(opts.stratify);
  const dir = datasetDir(dataDir, tenant, src);
  // The sample-weight column (if any) goes along; the order depends on x and y only.
  const cols: ColumnInfo[] = [...src.x_columns, ...src.y_columns, ...(src.w_column ? [src.w_column] : [])];
  const n = src.samples;
  const plan = seededEpochPlan(shuffleLayout(n, float32RowBytes([...src.x_columns, ...src.y_columns]), windowBytes), seed, 0);
  const order = plan.order!;
  const part = assign(order, fractions, stratify ? await classLabels(dir, src) : null);
  const sizes = fractions.map((_, i) => part.reduce((a, p) => a + (p === i ? 1 : 0), 0));
  const empty = sizes.findIndex((s) => s === 0);
  if (empty >= 0) throw new SpecError('fractions', `part ${empty} would have no samples (${n} samples split by [${fractions.join(', ')}])`, 'DATASET_INVALID');

  const metas = fractions.map((_, i) => ({
    name: opts.names?.[i] ?? `${src.name}-part${i}`.slice(0, 128),
    source: 'split',
    extra: { split_of: { dataset_id: src.id, part: i, fractions, seed, stratify } },
  }));
  return createDatasets(dataDir, tenant, metas, limits, async (stages) => {
    const writers: ColumnWriter[][] = [];
    for (const stage of stages) {
      const ws: ColumnWriter[] = [];
      for (const c of cols) {
        const side = src.x_columns.includes(c) ? 'x' : src.y_columns.includes(c) ? 'y' : 'w';
        const w = await stage.column(side, c.name, c.dtype ?? 'float32', c.shape);
        if (c.columns) w.extra.columns = c.columns;
        if (c.vocabulary) w.extra.vocabulary = c.vocabulary;
        ws.push(w);
      }
      writers.push(ws);
    }
    const sizesOf = cols.map((c) => c.shape.reduce((a, b) => a * b, 1));
    const CHUNK = Math.max(1, Math.floor((1 << 22) / Math.max(4, float32RowBytes(cols))));
    const buffers: StoredArray[][] = stages.map(() => cols.map((c, ci) => allocate(c.dtype ?? 'float32', CHUNK * sizesOf[ci]!)));
    const fill = new Array<number>(stages.length).fill(0);
    const flush = async (k: number) => {
      if (fill[k] === 0) return;
      for (let ci = 0; ci < cols.length; ci++) await writers[k]![ci]!.append(buffers[k]![ci]!.subarray(0, fill[k]! * sizesOf[ci]!));
      fill[k] = 0;
    };
    const files = new FileCache();
    // Raw: rows are copied in their stored dtype (int32 values past 2^24 would not survive float32).
    const reader = new WindowReader(cols.map((c) => ({ shape: c.shape, stored: { path: path.join(dir, c.file), dtype: c.dtype ?? 'float32', first: 0, rows: n } })), plan, files, true);
    try {
      for (let start = 0; start < n; start += CHUNK) {
        const end = Math.min(n, start + CHUNK);
        const rows = await reader.rows(start, end);
        for (let p = start; p < end; p++) {
          const k = part[p]!;
          for (let ci = 0; ci < cols.length; ci++) {
            const size = sizesOf[ci]!;
            buffers[k]![ci]!.set(rows[ci]!.subarray((p - start) * size, (p - start + 1) * size), fill[k]! * size);
          }
          if (++fill[k]! === CHUNK) await flush(k);
        }
      }
      for (let k = 0; k < stages.length; k++) await flush(k);
    } finally {
      await reader.release();
      await files.close();
    }
  });
}
