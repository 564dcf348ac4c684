import fs from 'node:fs/promises';
import path from 'node:path';
import type { Records } from '../src/metadata/records.ts';
import type { ColumnInfo, DatasetRecord } from '../src/datasets/dataset-record.ts';
import { float32RowBytes } from '../src/datasets/dataset-record.ts';
import { datasetDir, readColumnFile, storedRowBytes } from '../src/datasets/dataset-files.ts';
import { matchColumns } from '../src/jobs/match-dataset.ts';
import { columnClassNames } from '../src/datasets/class-names.ts';
import type { TensorInfo } from '../src/model-spec/types.ts';
import { loadDatasetConfig } from '../src/config.ts';
import { UnrecoverableError } from 'bullmq';
import type { DataColumn } from './train-loop.ts';

export interface LoadedDataset {
  x: DataColumn[];
  y: DataColumn[];
  /** The dataset's sample-weight column (Keras's sample_weight), when it has one. */
  w: DataColumn | null;
  samples: number;
  /** The dataset record (vocabularies, statistics). */
  record: DatasetRecord;
  /** True when the columns are read from disk batch by batch (over DATASET_MEMORY_BYTES). */
  fromDisk: boolean;
  /** Per model output (in order): the string labels its class indices stand for, when the dataset has them. */
  classNames: Array<string[] | null>;
}

/**
 * A dataset's x and y in the model's input and output order: loaded whole when it takes at
 * most `memoryBytes` as float32 (DATASET_MEMORY_BYTES), else as columns read from disk.
 */
export async function loadDataset(
  records: Records,
  dataDir: string,
  tenant: string,
  datasetId: string,
  inputs: TensorInfo[],
  outputs: TensorInfo[],
  opts: { memoryBytes?: number } = {},
): Promise<LoadedDataset> {
  const ds = await records.get<DatasetRecord>('dataset', tenant, datasetId);
  if (!ds) throw new UnrecoverableError(`dataset ${datasetId} was deleted before the job ran`);
  const xs = matchColumns(ds.x_columns, inputs, 'x', 'dataset_id');
  const ys = matchColumns(ds.y_columns, outputs, 'y', 'dataset_id');
  const dir = datasetDir(dataDir, tenant, ds);
  const memoryBytes = opts.memoryBytes ?? loadDatasetConfig().memoryBytes;
  const fromDisk = ds.samples * float32RowBytes([...xs, ...ys, ...(ds.w_column ? [ds.w_column] : [])]) > memoryBytes;
  const load = async (c: ColumnInfo): Promise<DataColumn> => {
    const file = path.join(dir, c.file);
    if (!fromDisk) return { ...(await readColumnFile(dir, c, ds.samples)), shape: c.shape, info: c };
    const { size } = await fs.stat(file);
    const want = ds.samples * storedRowBytes(c);
    if (size !== want) throw new Error(`dataset ${ds.id} file ${c.file} has ${size} bytes, expected ${want}`);
    return { shape: c.shape, stored: { path: file, dtype: c.dtype ?? 'float32', first: 0, rows: ds.samples }, info: c };
  };
  // matchColumns gives x the model's shape where [] and [1] differ only in name.
  const x = await Promise.all(xs.map(load));
  const y = await Promise.all(ys.map(load));
  // Records from before sample weights have no w_column.
  const w = ds.w_column ? await load(ds.w_column) : null;
  return { x, y, w, samples: ds.samples, record: ds, fromDisk, classNames: ys.map(columnClassNames) };
}
