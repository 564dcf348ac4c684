import type { FastifyInstance } from 'fastify';
import { ApiError } from '../errors.ts';
import { isWellFormedId } from '../metadata/ids.ts';
import type { Kind } from '../metadata/records.ts';

/** The tenant's record, or a 404 (also for ids that cannot exist, or that belong to another tenant). */
export async function findOr404<T>(app: FastifyInstance, kind: Kind, tenant: string, id: string, path?: string): Promise<T> {
  const rec = isWellFormedId(id) ? await app.records.get<T>(kind, tenant, id) : undefined;
  if (!rec) throw new ApiError('NOT_FOUND', `no ${kind} with id "${id}"`, path);
  return rec;
}
