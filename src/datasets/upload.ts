/**
 * Streamed dataset uploads: text/csv, multipart (parts x, y, x_<input>, y_<output>; each a
 * .npy or a CSV with a header row) and .npz bodies. The body is read as it arrives and
 * written to a temporary directory, renamed into place only when complete and valid.
 */
import fs from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import type { FastifyRequest } from 'fastify';
import type { Config } from '../config.ts';
import { ApiError, SpecError } from '../errors.ts';
import { tmpPath } from '../storage/paths.ts';
import { ingestCsv, nameList, queryRoles } from './csv-ingest.ts';
import type { DatasetRecord } from './dataset-record.ts';
import { ingestNpy, isNpy } from './npy.ts';
import { ingestNpz } from './npz-ingest.ts';
import { createDataset, type DatasetStage } from './stage.ts';

export interface UploadQuery {
  name?: string;
  label?: string;
  features?: string;
  delimiter?: string;
  sample_weight?: string;
}

const PART_RE = /^(x|y)(?:_(.+))?$/;

/** Counts bytes through; 413 past `max`. */
async function* limited(source: AsyncIterable<Buffer>, max: number, what: string, counter = { bytes: 0 }): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    counter.bytes += chunk.length;
    if (counter.bytes > max) throw new ApiError('PAYLOAD_TOO_LARGE', `${what} is over the limit of ${max} bytes (MAX_UPLOAD_BYTES)`);
    yield chunk;
  }
}

/** The request body as it arrives, gunzipped when Content-Encoding says gzip; both sizes limited. */
function bodyStream(req: FastifyRequest, max: number): AsyncIterable<Buffer> {
  const encoding = String(req.headers['content-encoding'] ?? 'identity').toLowerCase().trim();
  const raw = limited(req.raw, max, 'the body');
  if (encoding === 'identity' || encoding === '') return raw;
  if (encoding !== 'gzip' && encoding !== 'x-gzip') {
    throw new ApiError('UNSUPPORTED_MEDIA_TYPE', `Content-Encoding ${encoding} is not accepted; send the body plain or gzip-compressed`);
  }
  const gunzip = zlib.createGunzip();
  pipeline(Readable.from(raw), gunzip).catch(() => {});
  return limited(ungzipErrors(gunzip), max, 'the body after gunzip');
}

async function* ungzipErrors(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  try {
    yield* source;
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    if (code.startsWith('Z_')) {
      throw new SpecError('body', `the body is not valid gzip: ${(err as Error).message}`, 'DATASET_INVALID');
    }
    throw err;
  }
}

const KNOWN_QUERY = new Set(['name', 'label', 'features', 'delimiter', 'sample_weight', 'access_token']);

/** Streamed uploads refuse query parameters they do not know (a typo in label= would lose y). */
export function checkUploadQuery(query: Record<string, unknown>): void {
  for (const key of Object.keys(query)) {
    if (!KNOWN_QUERY.has(key)) throw new ApiError('VALIDATION_FAILED', `query.${key} is not a known parameter (name, label, features, delimiter, sample_weight)`, `query.${key}`);
  }
}

function requireName(name: string | undefined): string {
  if (name === undefined || name.length === 0) throw new ApiError('VALIDATION_FAILED', 'give the dataset a name: ?name=...', 'query.name');
  if (name.length > 128) throw new ApiError('VALIDATION_FAILED', 'query.name must be at most 128 characters', 'query.name');
  return name;
}

function delimiterByte(d: string | undefined): number {
  if (d === undefined || d === ',') return 44;
  if (d === 'tab' || d === '\t' || d === '\\t') return 9;
  if (d.length === 1 && d.charCodeAt(0) < 128 && !/[\r\n"]/.test(d)) return d.charCodeAt(0);
  throw new ApiError('VALIDATION_FAILED', 'query.delimiter must be one ASCII character (or "tab")', 'query.delimiter');
}

function limits(config: Config) {
  return { rows: config.limits.uploadRows, columns: config.limits.uploadColumns, bytes: config.limits.uploadBytes };
}

/** POST /v1/datasets with Content-Type text/csv. */
export async function uploadCsv(req: FastifyRequest, config: Config, tenant: string, query: UploadQuery): Promise<DatasetRecord> {
  const name = requireName(query.name);
  const labels = nameList(query.label);
  const features = query.features === undefined ? null : nameList(query.features);
  const delimiter = delimiterByte(query.delimiter);
  const body = bodyStream(req, config.limits.uploadBytes);
  return createDataset(config.dataDir, tenant, { name, source: 'csv' }, limits(config), async (stage) => {
    await ingestCsv(body, stage, {
      delimiter,
      roles: queryRoles(labels, features, { label: 'query.label', features: 'query.features', weight: 'query.sample_weight' }, query.sample_weight === undefined || query.sample_weight === '' ? undefined : query.sample_weight.trim()),
      maxColumns: config.limits.uploadColumns,
      where: 'body',
    });
  });
}

/** POST /v1/datasets with an .npz body (application/octet-stream, application/zip, application/x-npz). */
export async function uploadNpz(req: FastifyRequest, config: Config, tenant: string, query: UploadQuery): Promise<DatasetRecord> {
  const name = requireName(query.name);
  const body = bodyStream(req, config.limits.uploadBytes);
  const file = await tmpPath(config.dataDir, 'upload.npz');
  try {
    let head: Buffer | null = null;
    async function* sniff(): AsyncGenerator<Buffer> {
      for await (const chunk of body) {
        if (!head) {
          head = chunk;
          if (isNpy(chunk)) throw new SpecError('body', 'a single .npy body cannot hold x and y: send a .npz (np.savez(f, x=x, y=y)) or a multipart form with parts x and y', 'DATASET_INVALID');
          if (chunk.length >= 2 && !(chunk[0] === 0x50 && chunk[1] === 0x4b)) throw new SpecError('body', 'an application/octet-stream body must be a .npz archive (np.savez(f, x=x, y=y))', 'DATASET_INVALID');
        }
        yield chunk;
      }
    }
    // Our own handle, closed before the finally below removes the file (a write stream could create it after).
    const fh = await fs.open(file, 'wx');
    try {
      for await (const chunk of sniff()) {
        let done = 0;
        while (done < chunk.length) done += (await fh.write(chunk, done, chunk.length - done)).bytesWritten;
      }
    } finally {
      await fh.close();
    }
    if (!head) throw new SpecError('body', 'the body is empty: send a .npz archive', 'DATASET_INVALID');
    return await createDataset(config.dataDir, tenant, { name, source: 'npz' }, limits(config), (stage) => ingestNpz(file, stage, limits(config)));
  } finally {
    await fs.rm(file, { force: true });
  }
}

type MultipartPart = {
  type: 'file' | 'field';
  fieldname: string;
  filename?: string;
  file?: Readable & { truncated?: boolean };
  value?: unknown;
};

/** POST /v1/datasets as multipart/form-data: a `name` field (or ?name=) and parts x, y (or x_<input>, y_<output>). */
export async function uploadMultipart(req: FastifyRequest, config: Config, tenant: string, query: UploadQuery): Promise<DatasetRecord> {
  const parts = (req as unknown as { parts: () => AsyncIterable<MultipartPart> }).parts();
  const counter = { bytes: 0 };
  let name = query.name;
  const lim = limits(config);
  const seen = new Set<string>();
  const fill = async (stage: DatasetStage) => {
    try {
      for await (const part of parts) {
        if (part.type === 'field') {
          if (part.fieldname === 'name') {
            name = String(part.value ?? '');
            continue;
          }
          throw new SpecError(part.fieldname, `unexpected form field "${part.fieldname}"; send x and y as files (.npy or .csv) and the name as ?name= or a "name" field`, 'DATASET_INVALID');
        }
        const m = part.fieldname === 'sample_weight' ? (['sample_weight', 'w'] as unknown as RegExpExecArray) : PART_RE.exec(part.fieldname);
        if (!m) {
          part.file?.resume();
          throw new SpecError(part.fieldname, `unexpected part "${part.fieldname}"; name the parts x and y, or x_<input> and y_<output>, and optionally sample_weight`, 'DATASET_INVALID');
        }
        if (seen.has(part.fieldname)) throw new SpecError(part.fieldname, `part ${part.fieldname} is given twice`, 'DATASET_INVALID');
        seen.add(part.fieldname);
        const side = m[1] as 'x' | 'y' | 'w';
        const colName = m[2] ?? null;
        await ingestPart(limited(part.file!, lim.bytes, 'the body', counter), stage, side, colName, part.fieldname, config);
      }
    } catch (err) {
      throw multipartError(err);
    }
    requireName(name);
  };
  return createDataset(config.dataDir, tenant, { name: () => requireName(name), source: 'multipart' }, lim, fill);
}

/** One multipart part: a .npy (sniffed by its magic) or a CSV with a header row. */
async function ingestPart(source: AsyncIterable<Buffer>, stage: DatasetStage, side: 'x' | 'y' | 'w', name: string | null, where: string, config: Config): Promise<void> {
  const it = source[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) throw new SpecError(where, `part ${where} is empty`, 'DATASET_INVALID');
  async function* rest(): AsyncGenerator<Buffer> {
    yield first.value as Buffer;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  }
  if (isNpy(first.value as Buffer)) {
    await ingestNpy(rest(), stage, side, name, limits(config), where);
    return;
  }
  await ingestCsv(rest(), stage, {
    delimiter: 44,
    roles: (header) => {
      if (side !== 'w') return side === 'x' ? { features: header, labels: [] } : { features: [], labels: header };
      if (header.length !== 1) throw new SpecError(where, `a CSV sample_weight part must have one column, got ${header.length}`, 'DATASET_INVALID');
      return { features: [], labels: [], weight: header[0]! };
    },
    xName: name,
    yName: name,
    maxColumns: config.limits.uploadColumns,
    where,
  });
}

/** @fastify/multipart's own errors, in our format. */
function multipartError(err: unknown): unknown {
  const e = err as { code?: string; message?: string; statusCode?: number };
  if (e?.code === 'FST_REQ_FILE_TOO_LARGE' || e?.code === 'FST_PARTS_LIMIT' || e?.code === 'FST_FILES_LIMIT' || e?.code === 'FST_FIELDS_LIMIT') {
    return new ApiError('PAYLOAD_TOO_LARGE', `the form is over a limit: ${e.message}`);
  }
  // (A premature close is a body that ends inside the form; when the client went away, no one reads the answer.)
  if (e?.code === 'FST_INVALID_MULTIPART_CONTENT_TYPE' || e?.code === 'ERR_STREAM_PREMATURE_CLOSE'
    || (typeof e?.message === 'string' && /Unexpected end of (form|multipart)|Malformed part header|Multipart: Boundary not found/i.test(e.message))) {
    return new SpecError('body', `the multipart body is malformed: ${e.message}`, 'DATASET_INVALID');
  }
  return err;
}
