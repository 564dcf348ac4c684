import { SpecError } from '../errors.ts';

/** A nested JSON array flattened: samples, per-sample shape, row-major values and their range. */
export interface FlatArray {
  samples: number;
  shape: number[];
  data: Float32Array;
  min: number;
  max: number;
}

const MAX_RANK = 8;

/** The shape of a nested array, read from its first elements. */
function inferShape(value: unknown, path: string): number[] {
  const shape: number[] = [];
  let cursor = value;
  while (Array.isArray(cursor)) {
    if (cursor.length === 0) throw new SpecError(path, `${path} has an empty array; every dimension must be at least 1`, 'DATASET_INVALID');
    shape.push(cursor.length);
    if (shape.length > MAX_RANK + 1) throw new SpecError(path, `${path} is nested deeper than ${MAX_RANK} dimensions per sample`, 'DATASET_INVALID');
    cursor = cursor[0];
  }
  return shape;
}

/**
 * Validates and flattens a JSON array of samples (numbers or nested arrays of numbers, all
 * of one shape) into float32. Errors name the first bad element, e.g. "x[3][1]".
 */
export function flattenSamples(value: unknown, path: string, maxValues: number): FlatArray {
  if (!Array.isArray(value)) throw new SpecError(path, `${path} must be an array with one entry per sample`, 'DATASET_INVALID');
  const full = inferShape(value, path);
  const samples = full[0];
  const shape = full.slice(1);
  const perSample = shape.reduce((a, b) => a * b, 1);
  const total = samples * perSample;
  if (total > maxValues) {
    throw new SpecError(path, `${path} holds ${total} numbers, over the limit of ${maxValues} (MAX_DATASET_VALUES); upload it in parts or raise the limit`, 'LIMIT_EXCEEDED');
  }
  const data = new Float32Array(total);
  let offset = 0;
  let min = Infinity;
  let max = -Infinity;
  const walk = (node: unknown, depth: number, where: string): void => {
    if (depth === full.length) {
      if (typeof node !== 'number' || !Number.isFinite(node)) {
        throw new SpecError(where, `${where} must be a finite number, got ${describe(node)}`, 'DATASET_INVALID');
      }
      data[offset++] = node;
      if (node < min) min = node;
      if (node > max) max = node;
      return;
    }
    if (!Array.isArray(node) || node.length !== full[depth]) {
      const want = `an array of ${full[depth]}`;
      const got = Array.isArray(node) ? `an array of ${node.length}` : describe(node);
      throw new SpecError(where, `${where} must be ${want} (the shape of the first sample is [${shape.join(', ')}]), got ${got}`, 'DATASET_INVALID');
    }
    for (let i = 0; i < node.length; i++) walk(node[i], depth + 1, `${where}[${i}]`);
  };
  walk(value, 0, path);
  return { samples, shape, data, min, max };
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.slice(0, 20))}`;
  return typeof v === 'number' ? String(v) : typeof v;
}
