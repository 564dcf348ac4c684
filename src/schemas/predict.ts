import { Type } from '@sinclair/typebox';

export const PredictBody = Type.Object(
  {
    instances: Type.Optional(Type.Array(Type.Unknown(), { minItems: 1, description: 'Rows (TF Serving row format); named inputs as an object per row.' })),
    inputs: Type.Optional(Type.Union([Type.Array(Type.Unknown()), Type.Record(Type.String(), Type.Array(Type.Unknown()))], {
      description: 'Columns (TF Serving columnar format): an array, or an object keyed by input name.',
    })),
    version: Type.Optional(Type.Integer({ minimum: 1, description: 'Model version (default: newest).' })),
    batch_size: Type.Optional(Type.Integer({ minimum: 1, maximum: 4096, default: 256 })),
  },
  { additionalProperties: false },
);

export const PredictQuery = Type.Object(
  { classes: Type.Boolean({ default: false, description: 'Add "classes": the argmax of each prediction.' }) },
  { additionalProperties: false },
);

export const PredictResponse = Type.Object({
  model_version: Type.Integer(),
  predictions: Type.Optional(Type.Unknown()),
  outputs: Type.Optional(Type.Unknown()),
  classes: Type.Optional(Type.Unknown()),
});
