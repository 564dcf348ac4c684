/**
 * POST /v1/models as a multipart upload of a TensorFlow.js model: its model.json and the
 * weight files its weightsManifest names. The model is built through the same validation
 * as any spec and starts at version 1 with those weights, ready to predict or fine-tune.
 */
import path from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config.ts';
import { ApiError } from '../errors.ts';
import { newId } from '../metadata/ids.ts';
import type { ModelRecord } from '../metadata/model-record.ts';
import { paths } from '../storage/paths.ts';
import { removeModelFiles } from '../storage/model-files.ts';

/** model.json itself is small; the weights are bounded by the parameter limit. */
const MAX_MODEL_JSON_BYTES = 16 * 1024 * 1024;

interface Upload {
  name?: string;
  compile?: unknown;
  modelJson?: Record<string, unknown>;
  files: Map<string, Buffer>;
}

async function readUpload(req: FastifyRequest): Promise<Upload> {
  const upload: Upload = { files: new Map() };
  for await (const part of req.parts()) {
    if (part.type === 'field') {
      const value = String(part.value);
      if (part.fieldname === 'name') upload.name = value;
      else if (part.fieldname === 'compile') {
        try {
          upload.compile = JSON.parse(value);
        } catch {
          throw new ApiError('INVALID_JSON', 'the "compile" field is not valid JSON', 'compile');
        }
      } else throw new ApiError('VALIDATION_FAILED', `unknown field "${part.fieldname}"; accepted: name, compile, and the files model.json and its weights`, part.fieldname);
      continue;
    }
    const data = await part.toBuffer();
    const file = path.basename(part.filename || part.fieldname);
    if (file.endsWith('.json') || part.fieldname === 'model.json') {
      if (upload.modelJson) throw new ApiError('VALIDATION_FAILED', 'send one model.json', part.fieldname);
      if (data.length > MAX_MODEL_JSON_BYTES) throw new ApiError('PAYLOAD_TOO_LARGE', `model.json is over ${MAX_MODEL_JSON_BYTES} bytes`, 'model.json');
      try {
        upload.modelJson = JSON.parse(data.toString('utf8'));
      } catch (err) {
        throw new ApiError('INVALID_JSON', `model.json is not valid JSON: ${(err as Error).message}`, 'model.json');
      }
    } else {
      upload.files.set(file, data);
    }
  }
  return upload;
}

type ManifestGroup = { paths: string[]; weights: Array<{ name: string; shape: number[]; dtype: string }> };

/** The weight specs and the weight bytes in manifest order (shards of each group concatenated). */
function weightsFromManifest(modelJson: Record<string, unknown>, files: Map<string, Buffer>) {
  const manifest = modelJson.weightsManifest as ManifestGroup[] | undefined;
  if (!Array.isArray(manifest)) throw new ApiError('MODEL_SPEC_INVALID', 'model.json has no weightsManifest: export it with model.save() or tensorflowjs_converter', 'model.json.weightsManifest');
  const missing = manifest.flatMap((g) => g.paths ?? []).map((p) => path.basename(p)).filter((p) => !files.has(p));
  if (missing.length) throw new ApiError('MODEL_SPEC_INVALID', `the weight files ${missing.join(', ')} named by model.json's weightsManifest were not uploaded`, 'weights');
  const used = new Set(manifest.flatMap((g) => g.paths.map((p) => path.basename(p))));
  const extra = [...files.keys()].filter((f) => !used.has(f));
  if (extra.length) throw new ApiError('VALIDATION_FAILED', `the files ${extra.join(', ')} are not in model.json's weightsManifest`, 'weights');
  const buffers = manifest.flatMap((g) => g.paths.map((p) => files.get(path.basename(p))!));
  const joined = Buffer.concat(buffers);
  const weightData = joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength) as ArrayBuffer;
  return { weightSpecs: manifest.flatMap((g) => g.weights ?? []), weightData };
}

export async function importModelUpload(app: FastifyInstance, req: FastifyRequest, config: Config): Promise<ModelRecord> {
  const upload = await readUpload(req);
  if (!upload.modelJson || typeof upload.modelJson !== 'object' || !('modelTopology' in upload.modelJson)) {
    throw new ApiError('VALIDATION_FAILED', 'a multipart model upload needs a TensorFlow.js model.json (with modelTopology and weightsManifest) and its weight files', 'model.json');
  }
  const { weightSpecs, weightData } = weightsFromManifest(upload.modelJson, upload.files);
  const id = newId('mdl');
  const versionDir = paths.modelVersion(config.dataDir, req.tenant, id, 1);
  const inspected = await app.tensors.importModel({
    spec: upload.modelJson,
    compile: upload.compile ?? null,
    limits: { maxLayers: config.limits.modelLayers, maxParams: config.limits.modelParams },
    weightSpecs,
    weightData,
    dataDir: config.dataDir,
    versionDir,
  });
  const topology = upload.modelJson.modelTopology as { config?: { name?: unknown } };
  const now = new Date().toISOString();
  const rec: ModelRecord = {
    id,
    name: upload.name ?? (typeof topology?.config?.name === 'string' ? topology.config.name : 'model'),
    spec: upload.modelJson.modelTopology,
    compile: upload.compile ?? null,
    compiled: inspected.compile,
    summary: inspected.summary,
    summary_text: inspected.summary_text,
    inputs: inspected.inputs,
    outputs: inspected.outputs,
    versions: [{ version: 1, job_id: 'import', created_at: now, metrics: {} }],
    version_counter: 1,
    created_at: now,
  };
  try {
    await app.records.create('model', req.tenant, rec.id, rec as unknown as Record<string, unknown>);
  } catch (err) {
    await removeModelFiles(config.dataDir, req.tenant, id);
    throw err;
  }
  return rec;
}
