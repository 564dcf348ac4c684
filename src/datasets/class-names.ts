/**
 * String class names for predict's `classes`: a model trained on a dataset whose label column
 * held strings (a CSV with string labels) answers the strings, not their indices.
 */
import type { Records } from '../metadata/records.ts';
import type { ModelRecord } from '../metadata/model-record.ts';
import type { JobRecord } from '../jobs/contract.ts';
import type { ColumnInfo, DatasetRecord } from './dataset-record.ts';

/** Class index -> name of a y column with one string label per sample; null otherwise. */
export function columnClassNames(col: ColumnInfo | undefined): string[] | null {
  if (!col?.vocabulary || col.shape.reduce((a, b) => a * b, 1) !== 1) return null;
  const lists = Object.values(col.vocabulary);
  return lists.length === 1 ? lists[0]! : null;
}

/** Per model output (in order), the class names of the dataset's matching y column. */
export function datasetClassNames(ds: DatasetRecord, outputs: Array<{ name: string }>): Array<string[] | null> {
  return outputs.map((o, i) => {
    const col = outputs.length === 1 && ds.y_columns.length === 1 ? ds.y_columns[0] : ds.y_columns.find((c) => c.name === o.name) ?? ds.y_columns[i];
    return columnClassNames(col);
  });
}

/**
 * The class names of a model version: kept on the version (`class_names`, when the worker
 * records them), else those of the dataset its fit job trained on (if it still exists).
 */
export async function versionClassNames(records: Records, tenant: string, model: ModelRecord, version: number): Promise<Array<string[] | null> | null> {
  const v = model.versions.find((x) => x.version === version) as (ModelRecord['versions'][number] & { class_names?: Array<string[] | null> }) | undefined;
  if (!v) return null;
  if (v.class_names) return v.class_names;
  const job = await records.get<JobRecord>('job', tenant, v.job_id);
  if (!job) return null;
  const ds = await records.get<DatasetRecord>('dataset', tenant, job.dataset_id);
  if (!ds) return null;
  const names = datasetClassNames(ds, model.outputs);
  return names.some((n) => n) ? names : null;
}

/** Replaces class indices (as classesOf gives them, nested) by their names. */
export function nameClasses(classes: unknown, names: string[] | null): unknown {
  if (!names) return classes;
  if (Array.isArray(classes)) return classes.map((c) => nameClasses(c, names));
  return typeof classes === 'number' && Number.isInteger(classes) && classes >= 0 && classes < names.length ? names[classes] : classes;
}
