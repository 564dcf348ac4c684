import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Config } from '../config.ts';
import { ApiError } from '../errors.ts';
import { ErrorResponse, IdParams, errorResponses } from '../schemas/common.ts';
import { PredictBody, PredictQuery, PredictResponse } from '../schemas/predict.ts';
import type { ModelRecord } from '../metadata/model-record.ts';
import { paths } from '../storage/paths.ts';
import { classesOf, predictColumns } from '../inference/predict-inputs.ts';
import { nameClasses, versionClassNames } from '../datasets/class-names.ts';
import { findOr404 } from './lookup.ts';

/** POST /v1/models/:id/predict in TensorFlow Serving's REST format, run on the tensor thread. */
const predictRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  app.post('/models/:id/predict', {
    schema: {
      tags: ['predict'],
      summary: 'Predict with a trained model version (TF Serving format)',
      params: IdParams,
      querystring: PredictQuery,
      body: PredictBody,
      response: { 200: PredictResponse, 409: Type.Ref(ErrorResponse), 413: Type.Ref(ErrorResponse), ...errorResponses },
    },
  }, async (req) => {
    const model = await findOr404<ModelRecord>(app, 'model', req.tenant, req.params.id);
    const version = req.body.version ?? model.versions.at(-1)?.version;
    if (version === undefined) throw new ApiError('MODEL_HAS_NO_VERSION', 'the model has not been trained yet: run a fit first');
    if (!model.versions.some((v) => v.version === version)) {
      throw new ApiError('NOT_FOUND', `the model has no version ${version}; it has ${model.versions.map((v) => v.version).join(', ')}`, 'version');
    }
    const { columns } = predictColumns(req.body, model.inputs, config.limits.predictInstances);
    const { outputs } = await app.tensors.predict({
      modelKey: `${req.tenant}/${model.id}/${version}`,
      dir: paths.modelVersion(config.dataDir, req.tenant, model.id, version),
      inputs: columns,
      batchSize: req.body.batch_size ?? 256,
    });
    const named = model.outputs.length > 1;
    const values = named ? Object.fromEntries(model.outputs.map((o, i) => [o.name, outputs[i]])) : outputs[0];
    // A model trained on string labels (a CSV) answers the label strings.
    const names = req.query.classes ? await versionClassNames(app.records, req.tenant, model, version) : null;
    const classesFor = (i: number) => nameClasses(classesOf(outputs[i]), names?.[i] ?? null);
    const classes = !req.query.classes ? undefined
      : named ? Object.fromEntries(model.outputs.map((o, i) => [o.name, classesFor(i)])) : classesFor(0);
    const key = req.body.instances !== undefined ? 'predictions' : 'outputs';
    return { model_version: version, [key]: values, ...(classes !== undefined ? { classes } : {}) };
  });
};
export default predictRoutes;
