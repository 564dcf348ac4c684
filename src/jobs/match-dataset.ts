import { SpecError } from '../errors.ts';
import type { ColumnInfo } from '../datasets/dataset-record.ts';
import type { Shape, TensorInfo } from '../model-spec/types.ts';

/** True when a stored per-sample shape fits a model shape (null dims fit anything). */
export function shapeFits(data: number[], model: Shape): boolean {
  return data.length === model.length && data.every((d, i) => model[i] === null || model[i] === d);
}

/** [] and [1] hold the same values per sample: treat them as one shape. */
function squeezeOnes(shape: Shape): Shape {
  return shape.length === 1 && shape[0] === 1 ? [] : shape;
}

const fmt = (s: Shape) => `[${s.map((d) => (d === null ? 'None' : d)).join(', ')}]`;

/**
 * Orders a dataset's x (or y) columns as the model's inputs (or outputs), by name;
 * an unnamed single column feeds a single-input (single-output) model.
 * Throws DATASET_MISMATCH naming the missing, extra or misshapen column.
 */
export function matchColumns(columns: ColumnInfo[], tensors: TensorInfo[], side: 'x' | 'y', path: string): ColumnInfo[] {
  const what = side === 'x' ? 'input' : 'output';
  if (columns.length === 0) throw new SpecError(path, `the dataset has no ${side}; it needs one ${side} per model ${what}`, 'DATASET_MISMATCH');
  let ordered: ColumnInfo[];
  if (tensors.length === 1 && columns.length === 1 && (columns[0].name === null || columns[0].name === tensors[0].name)) {
    ordered = columns;
  } else {
    const byName = new Map(columns.map((c) => [c.name, c]));
    const missing = tensors.filter((t) => !byName.has(t.name)).map((t) => t.name);
    if (missing.length) {
      const have = columns.map((c) => c.name ?? `(unnamed ${side})`).join(', ');
      throw new SpecError(path, `the model's ${what}s are ${tensors.map((t) => t.name).join(', ')}, but the dataset's ${side} has ${have}; name each ${side} array after a model ${what}`, 'DATASET_MISMATCH');
    }
    const extra = columns.filter((c) => !tensors.some((t) => t.name === c.name)).map((c) => c.name);
    if (extra.length) throw new SpecError(path, `the dataset's ${side} has ${extra.join(', ')}, which the model has no ${what} for`, 'DATASET_MISMATCH');
    ordered = tensors.map((t) => byName.get(t.name)!);
  }
  if (side === 'x') {
    ordered = ordered.map((col, i) => {
      const want = tensors[i].shape;
      if (shapeFits(col.shape, want)) return col;
      const a = squeezeOnes(col.shape);
      const b = squeezeOnes(want);
      if (a.length === 0 && b.length === 0) return { ...col, shape: want as number[] };
      throw new SpecError(path, `input "${tensors[i].name}" expects samples of shape ${fmt(want)}, but the dataset's ${col.name ?? 'x'} has samples of shape ${fmt(col.shape)}`, 'DATASET_MISMATCH');
    });
  }
  return ordered;
}
