import { SpecError } from '../errors.ts';
import type { ColumnToWrite } from './dataset-files.ts';
import { flattenSamples } from './json-arrays.ts';

const NAME_RE = /^[A-Za-z0-9_.-]{1,128}$/;

/**
 * Turns the JSON body form of a dataset (`x`, `y` as arrays, or objects keyed by
 * input / output name) into validated float32 columns of one sample count.
 */
export function columnsFromJson(
  body: { x: unknown; y?: unknown; sample_weight?: unknown },
  limits: { datasetSamples: number; datasetValues: number },
): { samples: number; x: ColumnToWrite[]; y: ColumnToWrite[]; w: ColumnToWrite | null } {
  let budget = limits.datasetValues;
  let samples: number | undefined;
  let samplesFrom = '';
  const side = (value: unknown, which: 'x' | 'y'): ColumnToWrite[] => {
    if (value === undefined) return [];
    const entries: Array<[string | null, unknown, string]> = [];
    if (Array.isArray(value)) entries.push([null, value, which]);
    else if (value && typeof value === 'object') {
      const named = Object.entries(value as Record<string, unknown>);
      if (named.length === 0) throw new SpecError(which, `${which} must name at least one ${which === 'x' ? 'input' : 'output'}`, 'DATASET_INVALID');
      for (const [name, arr] of named) {
        if (!NAME_RE.test(name)) throw new SpecError(`${which}.${name}`, `"${name}" is not a valid ${which === 'x' ? 'input' : 'output'} name (letters, digits, _ . - only)`, 'DATASET_INVALID');
        entries.push([name, arr, `${which}.${name}`]);
      }
    } else {
      throw new SpecError(which, `${which} must be an array of samples, or an object of arrays keyed by ${which === 'x' ? 'input' : 'output'} name`, 'DATASET_INVALID');
    }
    return entries.map(([name, arr, path], i) => {
      const flat = flattenSamples(arr, path, budget);
      budget -= flat.data.length;
      if (samples === undefined) {
        samples = flat.samples;
        samplesFrom = path;
      } else if (flat.samples !== samples) {
        throw new SpecError(path, `${path} has ${flat.samples} samples but ${samplesFrom} has ${samples}; every array needs one entry per sample`, 'DATASET_INVALID');
      }
      if (flat.samples > limits.datasetSamples) {
        throw new SpecError(path, `${path} has ${flat.samples} samples, over the limit of ${limits.datasetSamples} (MAX_DATASET_SAMPLES)`, 'LIMIT_EXCEEDED');
      }
      return {
        info: { name, shape: flat.shape, dtype: 'float32' as const, min: flat.min, max: flat.max, file: `${which}-${i}.f32` },
        data: flat.data,
      };
    });
  };
  const x = side(body.x, 'x');
  const y = side(body.y, 'y');
  let w: ColumnToWrite | null = null;
  if (body.sample_weight !== undefined && body.sample_weight !== null) {
    // Keras's sample_weight: one number >= 0 per sample.
    const flat = flattenSamples(body.sample_weight, 'sample_weight', budget);
    if (flat.shape.length > 1 || (flat.shape.length === 1 && flat.shape[0] !== 1)) {
      throw new SpecError('sample_weight', `sample_weight must hold one number per sample, got samples of shape [${flat.shape.join(', ')}]`, 'DATASET_INVALID');
    }
    if (samples !== undefined && flat.samples !== samples) {
      throw new SpecError('sample_weight', `sample_weight has ${flat.samples} entries but ${samplesFrom} has ${samples}; give one weight per sample`, 'DATASET_INVALID');
    }
    if (flat.samples > 0 && !(flat.min >= 0)) throw new SpecError('sample_weight', `sample_weight holds ${flat.min}; sample weights must be numbers >= 0`, 'DATASET_INVALID');
    w = { info: { name: null, shape: [], dtype: 'float32', min: flat.min, max: flat.max, file: 'w-0.f32' }, data: flat.data };
  }
  return { samples: samples ?? 0, x, y, w };
}
