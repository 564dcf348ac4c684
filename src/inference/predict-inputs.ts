import { ApiError, SpecError } from '../errors.ts';
import { flattenSamples } from '../datasets/json-arrays.ts';
import { feedShape, fmt } from '../jobs/match-dataset.ts';
import type { ArrayColumn, TensorInfo } from '../model-spec/types.ts';


/** TF Serving's row format: rows, or objects of named inputs per row -> one array per input. */
function rowsToColumns(instances: unknown[], inputs: TensorInfo[]): Array<[unknown[], string]> {
  const named = instances.every((row) => row !== null && typeof row === 'object' && !Array.isArray(row));
  if (!named) {
    if (inputs.length > 1) {
      throw new ApiError('PREDICT_INPUT_INVALID', `the model has ${inputs.length} inputs (${inputs.map((i) => i.name).join(', ')}): give each instance as an object keyed by input name`, 'instances[0]');
    }
    return [[instances, 'instances']];
  }
  return inputs.map((input) => {
    const column = instances.map((row, r) => {
      const value = (row as Record<string, unknown>)[input.name];
      if (value === undefined) throw new ApiError('PREDICT_INPUT_INVALID', `instances[${r}] has no "${input.name}"; the model's inputs are ${inputs.map((i) => i.name).join(', ')}`, `instances[${r}].${input.name}`);
      return value;
    });
    return [column, `instances[*].${input.name}`];
  });
}

/** TF Serving's columnar format: an array (one input) or an object keyed by input name. */
function columnarToColumns(value: unknown, inputs: TensorInfo[]): Array<[unknown, string]> {
  if (Array.isArray(value)) {
    if (inputs.length > 1) throw new ApiError('PREDICT_INPUT_INVALID', `the model has ${inputs.length} inputs: give "inputs" as an object keyed by ${inputs.map((i) => i.name).join(', ')}`, 'inputs');
    return [[value, 'inputs']];
  }
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!inputs.some((i) => i.name === key)) throw new ApiError('PREDICT_INPUT_INVALID', `the model has no input "${key}"; its inputs are ${inputs.map((i) => i.name).join(', ')}`, `inputs.${key}`);
  }
  return inputs.map((input) => {
    if (obj[input.name] === undefined) throw new ApiError('PREDICT_INPUT_INVALID', `"inputs" has no "${input.name}"`, `inputs.${input.name}`);
    return [obj[input.name], `inputs.${input.name}`];
  });
}

/**
 * Turns a predict body into float32 columns in the model's input order, checking
 * every input's shape; a mismatch is a 400 naming the expected and received shapes.
 */
export function predictColumns(body: { instances?: unknown[]; inputs?: unknown }, inputs: TensorInfo[], maxInstances: number): { columns: ArrayColumn[]; samples: number } {
  if ((body.instances === undefined) === (body.inputs === undefined)) {
    throw new ApiError('PREDICT_INPUT_INVALID', 'give exactly one of "instances" (rows) or "inputs" (columns)', body.instances ? 'inputs' : 'instances');
  }
  const raw = body.instances !== undefined ? rowsToColumns(body.instances, inputs) : columnarToColumns(body.inputs, inputs);
  let samples = -1;
  const columns = raw.map(([value, path], i) => {
    let flat;
    try {
      flat = flattenSamples(value, path, maxInstances * 1_000_000);
    } catch (err) {
      if (err instanceof SpecError) throw new ApiError('PREDICT_INPUT_INVALID', err.message, err.path);
      throw err;
    }
    if (flat.samples > maxInstances) throw new ApiError('PAYLOAD_TOO_LARGE', `${flat.samples} instances is over the limit of ${maxInstances} (MAX_PREDICT_INSTANCES)`, path);
    if (samples >= 0 && flat.samples !== samples) throw new ApiError('PREDICT_INPUT_INVALID', `${path} has ${flat.samples} samples, other inputs have ${samples}`, path);
    samples = flat.samples;
    const want = inputs[i].shape;
    const shape = feedShape(flat.shape, want);
    if (!shape) {
      throw new ApiError('PREDICT_INPUT_INVALID',
        `input "${inputs[i].name}" expects shape ${fmt([null, ...want])}, received ${fmt([flat.samples, ...flat.shape])}`,
        path, { expected: [null, ...want], received: [flat.samples, ...flat.shape] });
    }
    return { shape, data: flat.data };
  });
  return { columns, samples };
}

/** argmax over the last axis of each prediction; a single sigmoid unit thresholds at 0.5. */
export function classesOf(prediction: unknown): unknown {
  if (!Array.isArray(prediction)) return prediction;
  if (prediction.length > 0 && typeof prediction[0] === 'number') {
    const row = prediction as number[];
    if (row.length === 1) return row[0] > 0.5 ? 1 : 0;
    let best = 0;
    for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
    return best;
  }
  return prediction.map(classesOf);
}
