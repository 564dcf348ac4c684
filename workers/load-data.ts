import type { Records } from '../src/metadata/records.ts';
import type { DatasetRecord } from '../src/datasets/dataset-record.ts';
import { readColumn } from '../src/datasets/dataset-files.ts';
import { matchColumns } from '../src/jobs/match-dataset.ts';
import type { ArrayColumn, TensorInfo } from '../src/model-spec/types.ts';
import { UnrecoverableError } from 'bullmq';

/** A dataset's x and y, read from the blob store in the model's input and output order. */
export async function loadDataset(
  records: Records,
  dataDir: string,
  tenant: string,
  datasetId: string,
  inputs: TensorInfo[],
  outputs: TensorInfo[],
): Promise<{ x: ArrayColumn[]; y: ArrayColumn[]; samples: number }> {
  const ds = await records.get<DatasetRecord>('dataset', tenant, datasetId);
  if (!ds) throw new UnrecoverableError(`dataset ${datasetId} was deleted before the job ran`);
  const xs = matchColumns(ds.x_columns, inputs, 'x', 'dataset_id');
  const ys = matchColumns(ds.y_columns, outputs, 'y', 'dataset_id');
  const x = await Promise.all(xs.map((c) => readColumn(dataDir, tenant, ds.id, c, ds.samples)));
  const y = await Promise.all(ys.map((c) => readColumn(dataDir, tenant, ds.id, c, ds.samples)));
  // matchColumns may give x the model's shape where [] and [1] differ only in name.
  xs.forEach((c, i) => (x[i].shape = c.shape));
  return { x, y, samples: ds.samples };
}
