// The expression language: what parses, what evaluates to what, and hostile text refused
// with a position and what was expected.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../src/engine/backend.ts';
import { compileExpression, evaluate } from '../../src/expressions/evaluate.ts';
import { ExpressionError, EXPRESSION_LIMITS, parseExpression } from '../../src/expressions/parser.ts';

await initBackend('cpu');

const NAMES = new Set(['x', 'y', 'inputs']);

function run(text: string, scope: Record<string, number[] | number[][] | number>): number | number[] {
  const ast = compileExpression(text, NAMES);
  return tf.tidy(() => {
    const s = new Map(Object.entries(scope).map(([k, v]) => [k, typeof v === 'number' ? v : tf.tensor(v)]));
    const out = evaluate(ast, s);
    if (typeof out === 'number') return out;
    const t = out as tf.Tensor;
    return t.rank === 0 ? t.dataSync()[0]! : Array.from(t.dataSync());
  });
}

const close = (a: number | number[], b: number | number[]) => {
  const xs = [a].flat();
  const ys = [b].flat();
  assert.equal(xs.length, ys.length, `${xs} vs ${ys}`);
  xs.forEach((v, i) => assert.ok(Math.abs(v - ys[i]!) < 1e-5, `${xs} vs ${ys}`));
};

test('operators follow Python precedence', () => {
  close(run('1 + 2 * 3', {}), 7);
  close(run('-2 ** 2', {}), -4); // -(2 ** 2), as in Python
  close(run('2 ** -1', {}), 0.5);
  close(run('2 ** 3 ** 2', {}), 512); // right-associative
  close(run('(1 + 2) * 3', {}), 9);
  close(run('x / 2 - 1', { x: [2, 4] }), [0, 1]);
  close(run('x @ y', { x: [[1, 2]], y: [[3], [4]] }), [11]);
  close(run('cast(x > 1, float32) + cast(x <= 1, float32) * 10', { x: [0, 2] }), [10, 1]);
  close(run('where(x >= 1, x, -x)', { x: [-3, 2] }), [3, 2]);
});

test('functions take positional and keyword arguments with Keras defaults', () => {
  const m = [[1, 2], [3, 4]];
  close(run('sum(x)', { x: m }), 10);
  close(run('sum(x, axis=-1)', { x: m }), [3, 7]);
  close(run('mean(x, axis=0, keepdims=true)', { x: m }), [2, 3]);
  close(run('mean(x, axis=[0, 1])', { x: m }), 2.5);
  close(run('max(x, 1)', { x: m }), [2, 4]);
  close(run('argmax(x)', { x: m }), [1, 1]);
  close(run('clip(x, 1.5, 3)', { x: [1, 2, 4] }), [1.5, 2, 3]);
  close(run('relu(x, max_value=6)', { x: [-1, 3, 9] }), [0, 3, 6]);
  close(run('relu(x, alpha=0.5)', { x: [-2, 2] }), [-1, 2]);
  close(run('one_hot(x, 3)', { x: [0, 2] }), [1, 0, 0, 0, 0, 1]);
  close(run('reshape(x, [-1])', { x: m }), [1, 2, 3, 4]);
  close(run('transpose(x)', { x: m }), [1, 3, 2, 4]);
  close(run('concat([x, x], axis=-1)', { x: [[1], [2]] }), [1, 1, 2, 2]);
  close(run('squeeze(expand_dims(x, 0))', { x: [1, 2] }), [1, 2]);
  close(run('softmax(x)', { x: [0, 0] }), [0.5, 0.5]);
  close(run('epsilon()', {}), 1e-7);
  close(run('sqrt(square(x)) + abs(x) - 2 * abs(x)', { x: [-3] }), [0]);
  close(run('slice(x, [0, 1], [2, 1])', { x: m }), [2, 4]);
  close(run('gather(x, [1], axis=1)', { x: m }), [2, 4]);
  close(run('pow(x, 2) + maximum(x, 3) + minimum(x, 0)', { x: [2] }), [7]);
  close(run('std(x) ** 2 - var(x)', { x: [1, 2, 3, 4] }), 0);
});

/** Text that must be refused, and the position it must point at (where it is well defined). */
const HOSTILE: Array<[string, number?]> = [
  ['x.constructor', 1],
  ['x.__proto__', 1],
  ['constructor', 0],
  ['__proto__', 0],
  ['prototype', 0],
  ['x["constructor"]', 2],
  ['sum.constructor.constructor("return process")()', 3],
  ['require("fs")', 8],
  ['require', 0],
  ['process', 0],
  ['process.exit(1)', 7],
  ['globalThis', 0],
  ['this', 0],
  ['eval("1")', 5],
  ['Function("return 1")', 9],
  ['import("fs")', 7],
  ['`${x}`', 0],
  ["'x'", 0],
  ['"x"', 0],
  ['x = 1', 2],
  ['x; y', 1],
  ['x => x', 2],
  ['lambda: x', 6],
  ['(x) => x', 4],
  ['{}', 0],
  ['x ? 1 : 2', 2],
  ['new Array(10)', 4],
  ['x[0]', 1],
  ['y[0]', 1],
  ['inputs[-1]', 7],
  ['inputs[1.5]', 7],
  ['1e999', 0],
  ['9'.repeat(400), 0],
  ['2 ** 1e30', 5],
  ['1 < x < 2', 6],
  ['sum(x, bogus=1)', 7],
  ['sum(x, axis=1, axis=2)', 15],
  ['sum(axis=1, x)', 12],
  ['sum()', 0],
  ['sum(x, 1, true, 4)', 0],
  ['unknown_fn(x)', 0],
  ['x +', 3],
  ['(x', 2],
  ['x)', 1],
  ['', 0],
  ['x # comment', 2],
  ['x & y', 2],
  ['x || y', 2],
  ['\\u0070rocess', 0],
  ['(' .repeat(10_000) + 'x' + ')'.repeat(10_000)],
  ['-'.repeat(10_000) + 'x'],
  [Array.from({ length: 100_000 }, () => 'x').join(' + ')],
  [Array.from({ length: 300 }, () => 'x').join('+')],
  ['sum(' .repeat(40) + 'x' + ')'.repeat(40)],
];

test(`${HOSTILE.length} hostile inputs are refused with a position and what was expected`, () => {
  assert.ok(HOSTILE.length >= 30);
  for (const [text, pos] of HOSTILE) {
    let caught: unknown;
    try {
      compileExpression(text, NAMES);
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof ExpressionError, `${text.slice(0, 40)} was accepted (or threw ${caught})`);
    assert.ok(caught.message.length > 10 && caught.message.length < 1000, caught.message);
    assert.ok(Number.isInteger(caught.position) && caught.position >= 0 && caught.position <= EXPRESSION_LIMITS.maxLength);
    if (pos !== undefined) assert.equal(caught.position, pos, `${text}: ${caught.message}`);
  }
});

test('limits are named in the message', () => {
  assert.throws(() => parseExpression('x+'.repeat(1500) + 'x'), /over the limit of 2000/);
  assert.throws(() => parseExpression('('.repeat(40) + 'x' + ')'.repeat(40)), /deeper than 32 levels/);
  assert.throws(() => parseExpression(Array.from({ length: 450 }, () => '1').join('+')), /more than 400 terms/);
  assert.throws(() => parseExpression('1e16'), /out of range/);
  assert.throws(() => compileExpression('one_hot(x, 1000000000)', NAMES) && run('one_hot(x, 1000000000)', { x: [1] }), /depth must be from 1 to 100000/);
});

test('a tensor over the size limit is refused before it is made', () => {
  const ast = compileExpression('reshape(x, [-1, 1]) * reshape(x, [1, -1])', NAMES);
  assert.throws(() => tf.tidy(() => void evaluate(ast, new Map([['x', tf.zeros([10_000])]]))), /\[10000, 10000\] \(100000000 elements\), over the limit of 67108864/);
  assert.throws(() => tf.tidy(() => void evaluate(compileExpression('one_hot(x, 100000)', NAMES), new Map([['x', tf.zeros([1000])]]))), /over the limit/);
});

test('evaluation errors point at the operator or call that failed', () => {
  const ast = compileExpression('x + reshape(y, [3, 5])', NAMES);
  assert.throws(
    () => tf.tidy(() => void evaluate(ast, new Map([['x', tf.zeros([2])], ['y', tf.zeros([4])]]))),
    (err: unknown) => err instanceof ExpressionError && err.position === 4 && /reshape\(\) at position 4/.test(err.message),
  );
  assert.throws(
    () => tf.tidy(() => void evaluate(compileExpression('sum(x, axis=y)', NAMES), new Map([['x', tf.zeros([2])], ['y', tf.zeros([1])]]))),
    /axis must be a whole number, got a float32 tensor/,
  );
});
