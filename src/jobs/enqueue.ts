import type { FastifyInstance } from 'fastify';
import { appendEvent } from './events.ts';
import type { JobRecord } from './contract.ts';

/**
 * Stores the job record, its first event and the BullMQ job. The record comes
 * first, so a worker never picks up a job it cannot find.
 */
export async function enqueueJob(app: FastifyInstance, prefix: string, tenant: string, job: JobRecord, attempts: number): Promise<void> {
  await app.records.create('job', tenant, job.id, job as unknown as Record<string, unknown>);
  await appendEvent(app.redis, prefix, job.id, { type: 'status', status: 'queued' });
  try {
    await app.queue().add(job.kind, { jobId: job.id, tenant, kind: job.kind }, {
      jobId: job.id,
      attempts,
      backoff: { type: 'exponential', delay: 2000 },
      removeOnComplete: { count: 1000 },
      removeOnFail: { count: 1000 },
    });
  } catch (err) {
    await app.records.delete('job', tenant, job.id);
    throw err;
  }
}
