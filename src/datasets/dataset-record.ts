/** A stored column: its per-sample shape, dtype and value range (for label checks). */
export interface ColumnInfo {
  /** The input/output name it feeds, or null for the unnamed single x / y. */
  name: string | null;
  shape: number[];
  dtype: 'float32';
  min: number;
  max: number;
  /** File name inside the dataset directory. */
  file: string;
}

/** The dataset record in Redis. */
export interface DatasetRecord {
  id: string;
  name: string;
  samples: number;
  x_columns: ColumnInfo[];
  y_columns: ColumnInfo[];
  created_at: string;
}

type TensorSpec = { shape: number[]; dtype: string };

function publicColumns(cols: ColumnInfo[]): TensorSpec | Record<string, TensorSpec> | null {
  if (cols.length === 0) return null;
  if (cols.length === 1 && cols[0].name === null) return { shape: cols[0].shape, dtype: cols[0].dtype };
  return Object.fromEntries(cols.map((c) => [c.name, { shape: c.shape, dtype: c.dtype }]));
}

/** The dataset as the API shows it (API.md). */
export function publicDataset(rec: DatasetRecord) {
  return {
    id: rec.id,
    name: rec.name,
    samples: rec.samples,
    x: publicColumns(rec.x_columns),
    y: publicColumns(rec.y_columns),
    created_at: rec.created_at,
  };
}
