// Out-of-memory errors from any backend fail the job at once, naming the batch size to lower.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UnrecoverableError } from 'bullmq';
import { JobFailure, outOfMemory } from '../../workers/process-job.ts';
import { SpecError } from '../../src/errors.ts';

test('backend out-of-memory messages become OUT_OF_MEMORY failures naming the batch size', () => {
  const messages = [
    'OOM when allocating tensor with shape[65536,4096] and type float on /job:localhost/replica:0/task:0/device:GPU:0',
    'CUDA_ERROR_OUT_OF_MEMORY: out of memory',
    'Failed to allocate 1073741824 bytes',
    'Array buffer allocation failed',
    'RangeError: Invalid typed array length: 4294967296',
  ];
  for (const m of messages) {
    const f = outOfMemory(new Error(m), 4096);
    assert.ok(f instanceof JobFailure && f instanceof UnrecoverableError, m);
    assert.equal((f as JobFailure).code, 'OUT_OF_MEMORY');
    assert.match(f!.message, /batch_size 4096.*smaller batch_size/);
  }
  assert.equal(outOfMemory(new Error('ECONNRESET'), 32), null);
  assert.equal(outOfMemory(new SpecError('x', 'out of memory in a message about a spec'), 32), null);
});
