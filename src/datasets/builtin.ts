/**
 * Built-in datasets (iris, breast_cancer, digits from src/datasets/builtin, with attribution
 * there and in docs/datasets.md), present in every tenant as builtin-<name> and read-only.
 * Their files are written once per DATA_DIR (a directory per content hash, shared by every
 * tenant); each tenant gets a record in Redis pointing there (not in its list index, so
 * GET /v1/datasets lists only the tenant's own unless ?builtin=true).
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import type { Config } from '../config.ts';
import type { Records } from '../metadata/records.ts';
import { paths } from '../storage/paths.ts';
import { ingestCsv } from './csv-ingest.ts';
import type { DatasetRecord } from './dataset-record.ts';
import { createDataset, FORMAT } from './stage.ts';

const SOURCE_DIR = fileURLToPath(new URL('./builtin/', import.meta.url));

const ATTRIBUTION = 'UCI Machine Learning Repository, as shipped in scikit-learn (sklearn/datasets/data); see docs/datasets.md.';

export const BUILTIN_DATASETS = [
  { id: 'builtin-iris', name: 'iris', file: 'iris.csv', attribution: `Iris (R. A. Fisher, 1936). ${ATTRIBUTION}` },
  { id: 'builtin-breast_cancer', name: 'breast_cancer', file: 'breast_cancer.csv', attribution: `Breast Cancer Wisconsin (Diagnostic) (Street, Wolberg, Mangasarian). ${ATTRIBUTION}` },
  { id: 'builtin-digits', name: 'digits', file: 'digits.csv', attribution: `Optical Recognition of Handwritten Digits, 8x8 (Alpaydin, Kaynak). ${ATTRIBUTION}` },
] as const;

const BUILTIN_IDS: Set<string> = new Set(BUILTIN_DATASETS.map((b) => b.id));

export function isBuiltinId(id: string): boolean {
  return BUILTIN_IDS.has(id);
}

/** Writes (once) and returns the built-in datasets' records for this DATA_DIR. */
async function materialise(dataDir: string): Promise<DatasetRecord[]> {
  const out: DatasetRecord[] = [];
  for (const b of BUILTIN_DATASETS) {
    const file = path.join(SOURCE_DIR, b.file);
    const csv = await fsp.readFile(file);
    const key = `${b.name}-${createHash('sha256').update(csv).digest('hex').slice(0, 16)}-f${FORMAT}`;
    const dir = paths.builtin(dataDir, key);
    const manifest = path.join(dir, 'manifest.json');
    if (!fs.existsSync(manifest)) {
      const header = csv.subarray(0, csv.indexOf(10)).toString('utf8').trim().split(',');
      const label = header[header.length - 1]!;
      try {
        await createDataset(dataDir, '', {
          id: b.id,
          name: b.name,
          source: 'builtin',
          extra: { builtin: true, storage: path.join('builtin', key), attribution: b.attribution, created_at: '2024-01-01T00:00:00.000Z' },
        }, { rows: 1e9, columns: 1e6 }, async (stage) => {
          await ingestCsv([csv], stage, {
            delimiter: 44,
            roles: (h) => ({ features: h.filter((c) => c !== label), labels: [label] }),
            maxColumns: 1e6,
            where: b.file,
          });
        }, dir);
      } catch (err) {
        // Another process wrote it first: use theirs.
        if (!fs.existsSync(manifest)) throw err;
      }
    }
    out.push(JSON.parse(await fsp.readFile(manifest, 'utf8')) as DatasetRecord);
  }
  return out;
}

/** Built-in datasets of one API process: files once, a record per tenant on first use. */
export class Builtins {
  private recordsPromise: Promise<DatasetRecord[]> | null = null;
  private readonly tenants = new Map<string, Promise<void>>();

  constructor(private readonly config: Config, private readonly redis: Redis, private readonly records: Records) {}

  /** The built-in records (writing their files on first call). */
  list(): Promise<DatasetRecord[]> {
    if (!this.recordsPromise) {
      this.recordsPromise = materialise(this.config.dataDir);
      this.recordsPromise.catch(() => {
        this.recordsPromise = null;
      });
    }
    return this.recordsPromise;
  }

  async get(id: string): Promise<DatasetRecord | undefined> {
    return (await this.list()).find((r) => r.id === id);
  }

  /** Makes sure the tenant's Redis has the built-in records (so fit and evaluate find them). */
  ensure(tenant: string): Promise<void> {
    let p = this.tenants.get(tenant);
    if (!p) {
      p = this.seed(tenant);
      this.tenants.set(tenant, p);
      p.catch(() => this.tenants.delete(tenant));
    }
    return p;
  }

  private async seed(tenant: string): Promise<void> {
    const recs = await this.list();
    const multi = this.redis.multi();
    for (const rec of recs) {
      const key = this.records.key('dataset', tenant, rec.id);
      const fields: Record<string, string> = {};
      for (const [k, v] of Object.entries(rec)) if (v !== undefined) fields[k] = JSON.stringify(v);
      multi.del(key).hset(key, fields);
    }
    await multi.exec();
  }
}
