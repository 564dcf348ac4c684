import { Type } from '@sinclair/typebox';
import { Timestamp } from './common.ts';

const Callback = Type.Object({ type: Type.String() }, { additionalProperties: true });

export const FitBody = Type.Object(
  {
    dataset_id: Type.String({ minLength: 1, maxLength: 64 }),
    epochs: Type.Integer({ minimum: 1, default: 1 }),
    batch_size: Type.Integer({ minimum: 1, default: 32 }),
    validation_split: Type.Optional(Type.Number({ minimum: 0, exclusiveMaximum: 1 })),
    validation_dataset_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    shuffle: Type.Boolean({ default: true }),
    initial_epoch: Type.Integer({ minimum: 0, default: 0 }),
    class_weight: Type.Optional(Type.Record(Type.String({ pattern: '^[0-9]+$' }), Type.Number({ minimum: 0 }))),
    seed: Type.Optional(Type.Integer({ minimum: 0, description: 'Seeds the per-epoch shuffle and, on a model\'s first fit, its initial weights: the same seed gives the same history.' })),
    compile: Type.Optional(Type.Object({}, { additionalProperties: true, description: 'Recompiles the model before this fit, as model.compile() does in Keras: later fits and evaluates use it too. Required when the model was created without compile.' })),
    callbacks: Type.Optional(Type.Array(Callback, { maxItems: 16, description: 'Keras callbacks by name with Keras\'s arguments: early_stopping, reduce_lr_on_plateau, terminate_on_nan, model_checkpoint.' })),
    max_seconds: Type.Optional(Type.Integer({ minimum: 1, description: 'Fail the fit as TIMED_OUT once it has trained this long (over every attempt); the model keeps its previous version.' })),
    sample_weight: Type.Optional(Type.Boolean({ description: 'Use the dataset\'s sample-weight column, when it has one (default true); false trains unweighted.' })),
    steps_per_epoch: Type.Optional(Type.Integer({ minimum: 1, description: 'Batches per epoch (Keras): the batches of `epochs` shuffled passes over the data form one stream, epoch e runs batches [e*S, (e+1)*S); when the stream runs out, training stops there with an OUT_OF_DATA warning.' })),
  },
  { additionalProperties: false },
);

export const EvaluateBody = Type.Object(
  {
    dataset_id: Type.String({ minLength: 1, maxLength: 64 }),
    batch_size: Type.Integer({ minimum: 1, default: 32 }),
    version: Type.Optional(Type.Integer({ minimum: 1, description: 'Model version to evaluate (default: newest).' })),
    sample_weight: Type.Optional(Type.Boolean({ description: 'Weight the losses by the dataset\'s sample-weight column, when it has one (default true).' })),
  },
  { additionalProperties: false },
);

const NumberList = Type.Record(Type.String(), Type.Array(Type.Number()));

export const Job = Type.Object(
  {
    id: Type.String(),
    kind: Type.Union([Type.Literal('fit'), Type.Literal('evaluate')]),
    model_id: Type.String(),
    dataset_id: Type.String(),
    status: Type.Union(['queued', 'running', 'completed', 'failed', 'cancelled'].map((s) => Type.Literal(s))),
    params: Type.Record(Type.String(), Type.Unknown()),
    progress: Type.Union([Type.Object({ epoch: Type.Integer(), epochs: Type.Integer() }), Type.Null()]),
    history: Type.Union([NumberList, Type.Null()]),
    result: Type.Union([Type.Record(Type.String(), Type.Number()), Type.Null()]),
    error: Type.Union([Type.Object({ code: Type.String(), message: Type.String() }), Type.Null()]),
    base_version: Type.Union([Type.Integer(), Type.Null()]),
    model_version: Type.Union([Type.Integer(), Type.Null()]),
    warnings: Type.Optional(Type.Array(Type.Object({ code: Type.String(), message: Type.String() }), { description: 'What the job did differently from what was asked, e.g. OUT_OF_DATA: steps_per_epoch x epochs needed more batches than epochs passes over the data hold, so training stopped early (as Keras does).' })),
    best_epoch: Type.Optional(Type.Union([Type.Integer(), Type.Null()], { description: 'With model_checkpoint(save_best_only): the epoch whose weights became model_version.' })),
    engine: Type.Optional(Type.Object({
      path: Type.Union([Type.Literal('dense'), Type.Literal('tfjs')]),
      reason: Type.Optional(Type.String()),
    }, { description: 'How a completed fit trained: "dense", the dense fast path (a chain of Dense layers on the wasm backend, docs/engine.md), or "tfjs", tfjs kernels, with the reason it was not the dense path.' })),
    attempts: Type.Integer(),
    created_at: Timestamp,
    started_at: Type.Union([Timestamp, Type.Null()]),
    finished_at: Type.Union([Timestamp, Type.Null()]),
  },
  { $id: 'Job' },
);

export const JobListQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
    cursor: Type.Optional(Type.String({ maxLength: 64 })),
    model_id: Type.Optional(Type.String({ maxLength: 64 })),
    status: Type.Optional(Type.Union(['queued', 'running', 'completed', 'failed', 'cancelled'].map((s) => Type.Literal(s)))),
  },
  { additionalProperties: false },
);

export const EventsQuery = Type.Object(
  {
    since: Type.Integer({ minimum: 0, default: 0, description: 'Replay only events with a larger seq.' }),
    access_token: Type.Optional(Type.String({ description: 'The API key, for clients that cannot set headers.' })),
  },
  { additionalProperties: false },
);
