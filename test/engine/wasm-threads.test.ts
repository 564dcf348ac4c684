// Multi-threaded wasm in Node (src/engine/wasm-threads.ts): with TF_WASM_THREADS=2 the threaded
// SIMD binary starts, XNNPACK really runs 2 threads, results are right, training converges, and
// the process still exits by itself. Each case runs in a child process (a process starts wasm once).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

function runChild(threads: number): { info: { backend: string; device: string; wasm: { threads: number; simd: boolean; binary: string; note?: string } }; maxDiff: number; first: number; last: number } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./wasm-threads-child.ts', import.meta.url))], {
    env: { ...process.env, N: String(threads), TF_WASM_KERNELS: '' }, encoding: 'utf8', timeout: 90_000,
  });
  assert.equal(r.signal, null, `the child did not exit by itself (killed by ${r.signal}): ${r.stderr.slice(-500)}`);
  assert.equal(r.status, 0, r.stderr.slice(-1000));
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
}

for (const threads of [1, 2]) {
  test(`wasm with ${threads} thread(s): the right binary, right results, training converges, the process exits`, () => {
    const out = runChild(threads);
    assert.equal(out.info.backend, 'wasm');
    assert.equal(out.info.wasm.threads, threads, JSON.stringify(out.info));
    assert.equal(out.info.wasm.simd, true);
    assert.equal(out.info.wasm.binary, threads > 1 ? 'tfjs-backend-wasm-threaded-simd.wasm' : 'tfjs-backend-wasm-simd.wasm');
    assert.equal(out.info.wasm.note, undefined);
    assert.match(out.info.device, new RegExp(`${threads} thread`));
    assert.ok(out.maxDiff < 1e-4, `matmul differs from JS by ${out.maxDiff}`);
    assert.ok(out.last < out.first * 0.5, `loss ${out.first} -> ${out.last}`);
  });
}
