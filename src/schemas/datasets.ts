import { Type } from '@sinclair/typebox';
import { Timestamp } from './common.ts';

const TensorSpec = Type.Object({ shape: Type.Array(Type.Integer()), dtype: Type.String() });

export const DatasetBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 128 }),
    x: Type.Union([Type.Array(Type.Unknown()), Type.Record(Type.String(), Type.Array(Type.Unknown()))], {
      description: 'One entry per sample (numbers or nested arrays), or an object of such arrays keyed by model input name.',
    }),
    y: Type.Union([Type.Array(Type.Unknown()), Type.Record(Type.String(), Type.Array(Type.Unknown()))], {
      description: 'Targets: one entry per sample, or an object keyed by model output name.',
    }),
  },
  { additionalProperties: false },
);

export const Dataset = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    samples: Type.Integer(),
    x: Type.Union([TensorSpec, Type.Record(Type.String(), TensorSpec), Type.Null()]),
    y: Type.Union([TensorSpec, Type.Record(Type.String(), TensorSpec), Type.Null()]),
    created_at: Timestamp,
  },
  { $id: 'Dataset' },
);
