import fs from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { SpecError } from '../errors.ts';
import { newId } from '../metadata/ids.ts';
import { paths, tmpPath } from '../storage/paths.ts';
import { ColumnWriter } from './column-writer.ts';
import type { ColumnInfo, DatasetRecord } from './dataset-record.ts';
import type { Dtype } from './dtypes.ts';

export const FORMAT = 2;
const NAME_RE = /^[A-Za-z0-9_.-]{1,128}$/;

/** Limits a staged upload checks as it goes. */
export interface StageLimits {
  rows: number;
  columns: number;
}

/**
 * The columns of a dataset being written into a temporary directory. Columns are added
 * as the upload names them; finish() checks they agree on the sample count.
 */
export class DatasetStage {
  private readonly writers: ColumnWriter[] = [];

  constructor(readonly dir: string, readonly limits: StageLimits) {}

  /** A new column: `name` null for the single unnamed x (or y); side w is the one sample-weight column (unnamed). */
  async column(side: 'x' | 'y' | 'w', name: string | null, dtype: Dtype, shape: number[]): Promise<ColumnWriter> {
    if (side === 'w') {
      if (this.writers.some((w) => w.label.side === 'w')) throw new SpecError('sample_weight', 'sample_weight is given twice', 'DATASET_INVALID');
      if (shape.reduce((a, b) => a * b, 1) !== 1 || shape.length > 1) {
        throw new SpecError('sample_weight', `sample_weight must hold one number per sample (shape [samples] or [samples, 1]), got samples of shape [${shape.join(', ')}]`, 'DATASET_INVALID');
      }
      name = null;
    }
    const where = name === null ? (side === 'w' ? 'sample_weight' : side) : `${side}_${name}`;
    if (name !== null && !NAME_RE.test(name)) {
      throw new SpecError(where, `"${name}" is not a valid ${side === 'x' ? 'input' : 'output'} name (letters, digits, _ . - only)`, 'DATASET_INVALID');
    }
    const same = this.writers.filter((w) => w.label.side === side);
    if (same.some((w) => w.label.name === name)) throw new SpecError(where, `${where} is given twice`, 'DATASET_INVALID');
    if (same.some((w) => (w.label.name === null) !== (name === null))) {
      throw new SpecError(where, `give either one unnamed ${side} or ${side}_<name> arrays, not both`, 'DATASET_INVALID');
    }
    const writer = new ColumnWriter(this.dir, same.length, { side, name }, dtype, shape, this.limits.rows);
    await writer.open();
    this.writers.push(writer);
    return writer;
  }

  /** Closes every column; checks x exists and every column has the same samples. */
  async finish(): Promise<{ samples: number; x: ColumnInfo[]; y: ColumnInfo[]; w: ColumnInfo | null }> {
    const xs = this.writers.filter((w) => w.label.side === 'x');
    if (xs.length === 0) throw new SpecError('x', 'the dataset has no x', 'DATASET_INVALID');
    const first = xs[0]!;
    for (const w of this.writers) {
      if (w.rows !== first.rows) {
        throw new SpecError(w.where, `${w.where} has ${w.rows} samples but ${first.where} has ${first.rows}; every array needs one entry per sample`, 'DATASET_INVALID');
      }
    }
    if (first.rows === 0) throw new SpecError('x', 'the dataset has no samples', 'DATASET_INVALID');
    const infos: ColumnInfo[] = [];
    for (const w of this.writers) infos.push(await w.finish());
    const byName = (side: string) => infos.filter((_, i) => this.writers[i]!.label.side === side);
    const w = byName('w')[0] ?? null;
    if (w && !(w.min >= 0)) throw new SpecError('sample_weight', `sample_weight holds ${w.min}; sample weights must be numbers >= 0`, 'DATASET_INVALID');
    return { samples: first.rows, x: byName('x'), y: byName('y'), w };
  }

  async abort(): Promise<void> {
    await Promise.all(this.writers.map((w) => w.abort()));
  }
}

/** The dataset-level checksum: SHA-256 over each column file's hash, in x, y, then sample-weight order. */
export function datasetChecksum(cols: ColumnInfo[]): string {
  const h = createHash('sha256');
  for (const c of cols) h.update(`${c.file}:${c.sha256 ?? ''}\n`);
  return `sha256:${h.digest('hex')}`;
}

export interface DatasetMeta {
  /** The name, or a function giving it once the upload is read (multipart sends it as a field). */
  name: string | (() => string);
  source: string;
  id?: string;
  extra?: Partial<DatasetRecord>;
  /** The directory to create (default: the tenant's dataset directory for its id). */
  target?: string;
}

/**
 * Writes new datasets together: `fill` streams columns into temporary directories, which are
 * renamed into place with their manifests only when all are complete; on any error nothing is
 * left behind.
 */
export async function createDatasets(dataDir: string, tenant: string, metas: DatasetMeta[], limits: StageLimits, fill: (stages: DatasetStage[]) => Promise<void>): Promise<DatasetRecord[]> {
  const ids = metas.map((m) => m.id ?? newId('ds'));
  const targets = metas.map((m, i) => m.target ?? paths.dataset(dataDir, tenant, ids[i]!));
  const tmps: string[] = [];
  const moved: string[] = [];
  const stages: DatasetStage[] = [];
  try {
    for (const t of targets) {
      const tmp = await tmpPath(dataDir, path.basename(t));
      await fs.mkdir(tmp);
      tmps.push(tmp);
      stages.push(new DatasetStage(tmp, limits));
    }
    await fill(stages);
    const recs: DatasetRecord[] = [];
    for (let i = 0; i < stages.length; i++) {
      const cols = await stages[i]!.finish();
      const all = [...cols.x, ...cols.y, ...(cols.w ? [cols.w] : [])];
      const meta = metas[i]!;
      const rec: DatasetRecord = {
        id: ids[i]!,
        name: typeof meta.name === 'function' ? meta.name() : meta.name,
        samples: cols.samples,
        x_columns: cols.x,
        y_columns: cols.y,
        ...(cols.w ? { w_column: cols.w } : {}),
        created_at: new Date().toISOString(),
        format: FORMAT,
        source: meta.source,
        bytes: all.reduce((a, c) => a + (c.bytes ?? 0), 0),
        checksum: datasetChecksum(all),
        ...meta.extra,
      };
      await fs.writeFile(path.join(tmps[i]!, 'manifest.json'), JSON.stringify(rec));
      recs.push(rec);
    }
    for (let i = 0; i < targets.length; i++) {
      await fs.mkdir(path.dirname(targets[i]!), { recursive: true });
      await fs.rename(tmps[i]!, targets[i]!);
      moved.push(targets[i]!);
    }
    return recs;
  } catch (err) {
    await Promise.all(stages.map((s) => s.abort()));
    await Promise.all([...tmps, ...moved].map((d) => fs.rm(d, { recursive: true, force: true })));
    throw err;
  }
}

/** Writes one new dataset (see createDatasets). */
export async function createDataset(
  dataDir: string,
  tenant: string,
  meta: DatasetMeta,
  limits: StageLimits,
  fill: (stage: DatasetStage) => Promise<void>,
  target?: string,
): Promise<DatasetRecord> {
  const [rec] = await createDatasets(dataDir, tenant, [{ ...meta, target: target ?? meta.target }], limits, ([stage]) => fill(stage!));
  return rec!;
}
