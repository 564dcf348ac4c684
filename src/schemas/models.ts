import { Type } from '@sinclair/typebox';
import { ShapeSchema, Timestamp } from './common.ts';

export const ModelBody = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    spec: Type.Object({}, {
      additionalProperties: true,
      description: 'A native spec: {"type": "sequential", "layers": [...]} or {"type": "functional", "inputs", "layers", "outputs"}. ' +
        'Layers include {"type": "Custom", "config", "weights", "call"} and activations {"expression": "..."} (docs/expressions.md).',
    }),
    compile: Type.Optional(Type.Object({}, {
      additionalProperties: true,
      description: '{"optimizer", "loss", "loss_weights", "metrics"} as in Keras model.compile. ' +
        'A loss may be {"expression": "..."} of y_true and y_pred, a metric {"name": "...", "expression": "..."} (docs/expressions.md).',
    })),
  },
  { additionalProperties: false },
);

const TensorInfo = Type.Object({ name: Type.String(), shape: ShapeSchema });
const OutputShape = Type.Union([ShapeSchema, Type.Array(ShapeSchema)]);

export const Summary = Type.Object({
  layers: Type.Array(Type.Object({
    name: Type.String(),
    type: Type.String(),
    output_shape: OutputShape,
    params: Type.Integer(),
    connected_to: Type.Optional(Type.Array(Type.String())),
  })),
  total_params: Type.Integer(),
  trainable_params: Type.Integer(),
  non_trainable_params: Type.Integer(),
});

export const ModelVersion = Type.Object({
  version: Type.Integer(),
  job_id: Type.String(),
  created_at: Timestamp,
  metrics: Type.Record(Type.String(), Type.Number(), { description: 'The last epoch logs of the fit that made it.' }),
});

export const Model = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    spec: Type.Unknown(),
    compile: Type.Unknown(),
    summary: Summary,
    inputs: Type.Array(TensorInfo),
    outputs: Type.Array(TensorInfo),
    versions: Type.Array(ModelVersion),
    created_at: Timestamp,
  },
  { $id: 'Model' },
);
