/**
 * Checks an expression AST against a whitelist of names and the function table, and
 * evaluates it with tfjs ops. Names resolve only through Maps built here (never object
 * properties), so nothing outside the table can be reached.
 */
import * as tf from '@tensorflow/tfjs';
import { checkSize, compare, dot, findFunction, FUNCTION_NAMES, type DType, type FunctionDef, type ParamDef, type Value } from './functions.ts';
import { ExpressionError, parseExpression, type Node } from './parser.ts';

/** Literal names every expression may use. */
const CONSTANTS = new Map<string, Value>([
  ['true', true], ['True', true], ['false', false], ['False', false], ['None', null], ['null', null],
  ['float32', { dtype: 'float32' }], ['float64', { dtype: 'float32' }], ['int32', { dtype: 'int32' }], ['int64', { dtype: 'int32' }], ['bool', { dtype: 'bool' }],
]);

/** Names user definitions (config keys, weight names) may not take. */
export function isReservedName(name: string): boolean {
  return CONSTANTS.has(name) || findFunction(name) !== undefined;
}

/** Largest whole number an integer argument may be (axes, shapes, indices). */
const MAX_INT_ARG = 1_000_000_000;

function describeValue(v: Value): string {
  if (v instanceof tf.Tensor) return `a ${v.dtype} tensor of shape [${v.shape.join(', ')}]`;
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'None';
  if (typeof v === 'object') return `the dtype ${v.dtype}`;
  return typeof v === 'boolean' ? String(v) : `the number ${v}`;
}

function listNames(names: Iterable<string>): string {
  return [...names].map((n) => `"${n}"`).join(', ');
}

/**
 * Static checks: every name is one of `names` (or a literal), every function exists and gets
 * arguments it takes. `inputs[i]` is allowed where `names` has "inputs".
 */
export function checkExpression(ast: Node, names: ReadonlySet<string>): void {
  const visit = (n: Node): void => {
    switch (n.kind) {
      case 'number':
        return;
      case 'name':
        if (!names.has(n.name) && !CONSTANTS.has(n.name)) {
          const hint = findFunction(n.name) ? ` ("${n.name}" is a function: call it as ${n.name}(...))` : '';
          throw new ExpressionError(`unknown name "${n.name}" at position ${n.pos}${hint}; names available here: ${listNames(names)}`, n.pos, `one of ${listNames(names)}`);
        }
        return;
      case 'index':
        if (!names.has('inputs')) throw new ExpressionError(`inputs[...] at position ${n.pos}: there is no "inputs" here`, n.pos, `one of ${listNames(names)}`);
        return;
      case 'unary':
        return visit(n.arg);
      case 'binary':
        visit(n.left);
        return visit(n.right);
      case 'list':
        return n.items.forEach(visit);
      case 'call': {
        const def = findFunction(n.fn);
        if (!def) {
          throw new ExpressionError(`unknown function "${n.fn}" at position ${n.pos}; see the function table (docs/expressions.md): ${FUNCTION_NAMES.join(', ')}`, n.pos, 'a function from the table');
        }
        if (n.args.length > def.params.length) {
          throw new ExpressionError(`${n.fn}() takes at most ${def.params.length} argument(s) (${signature(def)}), got ${n.args.length} at position ${n.pos}`, n.pos, signature(def));
        }
        const given = new Set(def.params.slice(0, n.args.length).map((p) => p.name));
        for (const kw of n.kwargs) {
          if (!def.params.some((p) => p.name === kw.name)) {
            throw new ExpressionError(`${n.fn}() has no argument "${kw.name}" (position ${kw.pos}); it takes ${signature(def)}`, kw.pos, signature(def));
          }
          if (given.has(kw.name)) throw new ExpressionError(`${n.fn}() gets "${kw.name}" twice (position ${kw.pos})`, kw.pos, signature(def));
          given.add(kw.name);
        }
        for (const p of def.params) {
          if (p.default === undefined && !given.has(p.name)) {
            throw new ExpressionError(`${n.fn}() needs its argument "${p.name}" (position ${n.pos}); it takes ${signature(def)}`, n.pos, signature(def));
          }
        }
        n.args.forEach(visit);
        n.kwargs.forEach((k) => visit(k.value));
        return;
      }
    }
  };
  visit(ast);
}

/** "sum(x, axis=None, keepdims=false)". */
export function signature(def: FunctionDef): string {
  const param = (p: ParamDef) => (p.default === undefined ? p.name : `${p.name}=${p.default === null ? 'None' : JSON.stringify(p.default)}`);
  return `${def.name}(${def.params.map(param).join(', ')})`;
}

/** Parses and checks in one step. */
export function compileExpression(text: unknown, names: ReadonlySet<string>): Node {
  const ast = parseExpression(text);
  checkExpression(ast, names);
  return ast;
}

// ---------------------------------------------------------------------------------------------
// Evaluation

function toTensor(v: Value, what: string): tf.Tensor {
  if (v instanceof tf.Tensor) return v;
  if (typeof v === 'number') return tf.scalar(v);
  throw new Error(`${what} must be a tensor or a number, got ${describeValue(v)}`);
}

function toInt(v: Value, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || Math.abs(v) > MAX_INT_ARG) {
    throw new Error(`${what} must be a whole number, got ${describeValue(v)}`);
  }
  return v;
}

function bind(def: ParamDef, v: Value, fn: string): unknown {
  const what = `${fn}(): ${def.name}`;
  if (v === null && def.default === null) return null;
  switch (def.kind) {
    case 'tensor':
      return toTensor(v, what);
    case 'tensors':
      if (!Array.isArray(v) || v.length === 0) throw new Error(`${what} must be a list of tensors like [a, b], got ${describeValue(v)}`);
      return v.map((item, i) => toTensor(item, `${what}[${i}]`));
    case 'axis':
    case 'int':
      return toInt(v, what);
    case 'axes':
      return Array.isArray(v) ? v.map((item, i) => toInt(item, `${what}[${i}]`)) : toInt(v, what);
    case 'ints':
      if (!Array.isArray(v)) return [toInt(v, what)];
      return v.map((item, i) => toInt(item, `${what}[${i}]`));
    case 'number':
      if (typeof v !== 'number') throw new Error(`${what} must be a number, got ${describeValue(v)}`);
      return v;
    case 'bool':
      if (typeof v !== 'boolean') throw new Error(`${what} must be true or false, got ${describeValue(v)}`);
      return v;
    case 'dtype':
      if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof tf.Tensor) {
        throw new Error(`${what} must be a dtype (float32, int32 or bool), got ${describeValue(v)}`);
      }
      return v;
  }
}

function numeric(op: string, x: number, y: number): number | boolean {
  switch (op) {
    case '+': return x + y;
    case '-': return x - y;
    case '*': return x * y;
    case '/': return x / y;
    case '**': return x ** y;
    case '<': return x < y;
    case '<=': return x <= y;
    case '>': return x > y;
    case '>=': return x >= y;
    case '==': return x === y;
    default: return x !== y;
  }
}

function binaryOp(op: string, l: Value, r: Value): Value {
  if (typeof l === 'number' && typeof r === 'number' && op !== '@') {
    const v = numeric(op, l, r);
    if (typeof v === 'number' && !Number.isFinite(v)) throw new Error(`${l} ${op} ${r} is not a finite number`);
    return v;
  }
  const x = toTensor(l, `the left side of ${op}`);
  const y = toTensor(r, `the right side of ${op}`);
  // Refuse a result too large before tfjs allocates it (broadcasting [n, 1] + [1, n] grows fast).
  if (op !== '@') checkSize(tf.backend_util.assertAndGetBroadcastShape(x.shape, y.shape), op);
  switch (op) {
    case '+': return tf.add(x, y);
    case '-': return tf.sub(x, y);
    case '*': return tf.mul(x, y);
    case '/': return tf.div(x, y);
    case '**': return tf.pow(x, y);
    case '@': return dot(x, y);
    default: return compare[op as keyof typeof compare](x, y);
  }
}

/** tfjs messages made one readable line. */
function clean(err: unknown): string {
  const msg = (err instanceof Error ? err.message : String(err))
    .replace(/\s+/g, ' ')
    .trim()
    // tfjs prints shapes as "2,5": show them as [2, 5].
    .replace(/(?<![[\d,])(\d+(?:,\d+)+)(?![\]\d,])/g, (m) => `[${m.split(',').join(', ')}]`);
  return msg.length > 300 ? `${msg.slice(0, 297)}...` : msg;
}

/**
 * Evaluates a checked AST. `scope` holds the names (tensors or numbers); "inputs" may be a
 * list for inputs[i]. Call inside tf.tidy: intermediate tensors are not disposed here.
 */
export function evaluate(ast: Node, scope: ReadonlyMap<string, Value>): Value {
  const at = <T>(n: Node, label: string, fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof ExpressionError) throw err;
      throw new ExpressionError(`${label} at position ${n.pos}: ${clean(err)}`, n.pos);
    }
  };
  const run = (n: Node): Value => {
    switch (n.kind) {
      case 'number':
        return n.value;
      case 'name':
        if (scope.has(n.name)) return scope.get(n.name)!;
        if (CONSTANTS.has(n.name)) return CONSTANTS.get(n.name)!;
        throw new ExpressionError(`unknown name "${n.name}" at position ${n.pos}`, n.pos);
      case 'index': {
        const inputs = scope.get('inputs');
        if (!Array.isArray(inputs)) throw new ExpressionError(`inputs[${n.index}] at position ${n.pos}: this layer has a single input; write "inputs"`, n.pos, 'inputs');
        if (n.index >= inputs.length) throw new ExpressionError(`inputs[${n.index}] at position ${n.pos}: this layer has ${inputs.length} inputs (inputs[0] to inputs[${inputs.length - 1}])`, n.pos);
        return inputs[n.index]!;
      }
      case 'unary': {
        const v = run(n.arg);
        if (n.op === '+') return v;
        return typeof v === 'number' ? -v : at(n, 'unary minus', () => tf.neg(toTensor(v, 'the operand of -')));
      }
      case 'binary': {
        const l = run(n.left);
        const r = run(n.right);
        return at(n, `"${n.op}"`, () => binaryOp(n.op, l, r));
      }
      case 'list':
        return n.items.map(run);
      case 'call': {
        const def = findFunction(n.fn);
        if (!def) throw new ExpressionError(`unknown function "${n.fn}" at position ${n.pos}`, n.pos);
        const values = new Map<string, Value>();
        n.args.forEach((a, i) => values.set(def.params[i]!.name, run(a)));
        for (const k of n.kwargs) values.set(k.name, run(k.value));
        return at(n, `${n.fn}()`, () => {
          const bound: Record<string, unknown> = {};
          for (const p of def.params) {
            const v = values.has(p.name) ? values.get(p.name)! : (p.default as Value | undefined);
            if (v === undefined) throw new Error(`argument "${p.name}" is missing`);
            bound[p.name] = bind(p, v, n.fn);
          }
          const out = def.apply(bound);
          if (out instanceof tf.Tensor) checkSize(out.shape, `${n.fn}()`);
          return out;
        });
      }
    }
  };
  return run(ast);
}

/** The value as a float32 tensor (a number or boolean result becomes a scalar). */
export function asFloatTensor(v: Value, what: string): tf.Tensor {
  if (typeof v === 'number') return tf.scalar(v);
  if (typeof v === 'boolean') return tf.scalar(v ? 1 : 0);
  if (!(v instanceof tf.Tensor)) throw new ExpressionError(`${what} must give a tensor, but gives ${describeValue(v)}`, 0, 'a tensor');
  return v.dtype === 'float32' ? v : v.cast('float32');
}

export type { DType };
