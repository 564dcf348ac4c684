import { Type, type TSchema } from '@sinclair/typebox';
import { Timestamp } from './common.ts';

const Stats = Type.Object({
  min: Type.Number(),
  max: Type.Number(),
  mean: Type.Number(),
  std: Type.Number({ description: 'Population standard deviation (what Keras\'s Normalization.adapt uses).' }),
  features: Type.Optional(Type.Object({
    min: Type.Array(Type.Number()),
    max: Type.Array(Type.Number()),
    mean: Type.Array(Type.Number()),
    std: Type.Array(Type.Number()),
  }, { description: 'Per index of the last axis (absent past 4096 features).' })),
  class_counts: Type.Optional(Type.Record(Type.String(), Type.Integer(), { description: 'Label value -> samples, for one integer label per sample.' })),
});

const TensorSpec = Type.Object({
  shape: Type.Array(Type.Integer()),
  dtype: Type.String({ description: 'Storage dtype: float32, int32, uint8 or bool (float64 uploads are stored as float32). Every column is fed to the model as float32.' }),
});

/** x and y laid out as in the dataset (one entry, or keyed by input / output name). */
const SideOf = <T extends TSchema>(item: T, description: string) => Type.Object({
  x: Type.Union([item, Type.Record(Type.String(), item), Type.Null()]),
  y: Type.Union([item, Type.Record(Type.String(), item), Type.Null()]),
}, { description });

export const DatasetBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 128 }),
    x: Type.Union([Type.Array(Type.Unknown()), Type.Record(Type.String(), Type.Array(Type.Unknown()))], {
      description: 'One entry per sample (numbers or nested arrays), or an object of such arrays keyed by model input name.',
    }),
    y: Type.Union([Type.Array(Type.Unknown()), Type.Record(Type.String(), Type.Array(Type.Unknown()))], {
      description: 'Targets: one entry per sample, or an object keyed by model output name.',
    }),
    sample_weight: Type.Optional(Type.Array(Type.Number({ minimum: 0 }), {
      description: 'Keras\'s sample_weight: one number >= 0 per sample, multiplying that sample\'s loss in fit and evaluate.',
    })),
  },
  { additionalProperties: false },
);

/** Query of POST /v1/datasets for streamed uploads (ignored for JSON bodies). */
export const DatasetUploadQuery = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'Name of the dataset (CSV and .npz bodies; multipart may send a "name" field instead).' })),
    label: Type.Optional(Type.String({ maxLength: 4096, description: 'CSV: the label column(s), comma-separated; one gives y of shape [], k give shape [k]. String columns are mapped to integers (sorted vocabulary).' })),
    features: Type.Optional(Type.String({ maxLength: 65536, description: 'CSV: the feature columns for x, comma-separated (default: every column not a label).' })),
    delimiter: Type.Optional(Type.String({ minLength: 1, maxLength: 3, description: 'CSV field separator: one character, or "tab" (default ",").' })),
    sample_weight: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'CSV: the column holding each sample\'s weight (Keras\'s sample_weight, numbers >= 0); it is neither a feature nor a label.' })),
  },
  // JSON bodies ignore the query (as before); streamed uploads refuse parameters they do not know.
  { additionalProperties: true },
);

export const DatasetListQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
    cursor: Type.Optional(Type.String({ maxLength: 64, description: 'next_cursor of the previous page' })),
    builtin: Type.Optional(Type.Boolean({ description: 'true: list the built-in datasets (builtin-iris, ...) instead of the tenant\'s own.' })),
  },
  { additionalProperties: false },
);

export const DatasetIdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) });

export const SplitBody = Type.Object(
  {
    fractions: Type.Array(Type.Number({ exclusiveMinimum: 0, maximum: 1 }), { minItems: 2, maxItems: 10, description: 'Fraction of the samples in each part; they sum to 1.' }),
    seed: Type.Optional(Type.Integer({ description: 'Seeds the shuffle (default 0): the same seed gives the same parts.' })),
    stratify: Type.Optional(Type.Boolean({ default: false, description: 'Keep each class\'s share in every part (needs one integer or one-hot label per sample).' })),
    names: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { description: 'Names of the parts (default: <name>-part<i>).' })),
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
    source: Type.Optional(Type.String({ description: 'How it was made: json, csv, multipart, npz, split or builtin.' })),
    bytes: Type.Optional(Type.Integer({ description: 'Bytes of its stored column files.' })),
    checksum: Type.Optional(Type.String({ description: '"sha256:<hex>" over the SHA-256 of each column file.' })),
    stats: Type.Optional(SideOf(Stats, 'Statistics of each x and y column (datasets stored with them).')),
    columns: Type.Optional(SideOf(Type.Array(Type.String()), 'The CSV column names along the last axis of each column (CSV uploads).')),
    vocabulary: Type.Optional(Type.Record(Type.String(), Type.Array(Type.String()), {
      description: 'String labels of each CSV label column (by its name): class index -> string.',
    })),
    builtin: Type.Optional(Type.Boolean({ description: 'A built-in dataset, present in every tenant and read-only.' })),
    attribution: Type.Optional(Type.String()),
    sample_weight: Type.Optional(Type.Object({
      shape: Type.Array(Type.Integer()),
      dtype: Type.String(),
      min: Type.Number(),
      max: Type.Number(),
      mean: Type.Optional(Type.Number()),
    }, { description: 'The dataset\'s sample-weight column (Keras\'s sample_weight: one number >= 0 per sample), when it has one; fit and evaluate use it unless told "sample_weight": false.' })),
    split_of: Type.Optional(Type.Object({
      dataset_id: Type.String(),
      part: Type.Integer(),
      fractions: Type.Array(Type.Number()),
      seed: Type.Integer(),
      stratify: Type.Boolean(),
    })),
  },
  { $id: 'Dataset' },
);
