import { SpecError } from '../errors.ts';
import type { ColumnInfo } from '../datasets/dataset-record.ts';
import type { Shape, TensorInfo } from '../model-spec/types.ts';

/** True when a stored per-sample shape fits a model shape (null dims fit anything). */
export function shapeFits(data: number[], model: Shape): boolean {
  return data.length === model.length && data.every((d, i) => model[i] === null || model[i] === d);
}

const scalarLike = (shape: Shape) => shape.length === 0 || (shape.length === 1 && shape[0] === 1);

/**
 * The per-sample shape to feed data of shape `data` to a model tensor of shape `model`:
 * `data` when it fits, the model's where both are [] or [1] (they hold the same values),
 * undefined when it does not fit.
 */
export function feedShape(data: number[], model: Shape): number[] | undefined {
  if (shapeFits(data, model)) return data;
  return scalarLike(data) && scalarLike(model) ? (model as number[]) : undefined;
}

/** A shape as Keras prints it: [None, 4]. */
export const fmt = (s: Shape) => `[${s.map((d) => (d === null ? 'None' : d)).join(', ')}]`;

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
      const shape = feedShape(col.shape, want);
      if (shape) return shape === col.shape ? col : { ...col, shape };
      throw new SpecError(path, `input "${tensors[i].name}" expects samples of shape ${fmt(want)}, but the dataset's ${col.name ?? 'x'} has samples of shape ${fmt(col.shape)}`, 'DATASET_MISMATCH');
    });
  }
  return ordered;
}
