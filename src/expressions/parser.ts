/**
 * The expression language's parser: text -> AST, with limits on length, depth, node count
 * and numeric literals. It knows syntax only; which names and functions exist is decided
 * by the evaluator's whitelist. Nothing here (or anywhere) hands text to eval/Function/vm.
 *
 * Grammar (lowest precedence first; Python's order):
 *   expr       := additive (("<" | "<=" | ">" | ">=" | "==" | "!=") additive)?
 *   additive   := term (("+" | "-") term)*
 *   term       := unary (("*" | "/" | "@") unary)*
 *   unary      := ("-" | "+") unary | power
 *   power      := postfix ("**" unary)?
 *   postfix    := primary ("[" integer "]")?        (only on the name `inputs`)
 *   primary    := number | name | name "(" args? ")" | "(" expr ")" | "[" (expr ("," expr)*)? "]"
 *   args       := arg ("," arg)* ; arg := name "=" expr | expr   (keywords after positionals)
 */

import { SpecError } from '../errors.ts';

/** Limits on one expression; past them the parse fails with EXPRESSION_INVALID. */
export const EXPRESSION_LIMITS = {
  /** Characters. */
  maxLength: 2000,
  /** Nesting of parentheses, calls, lists and unary operators. */
  maxDepth: 32,
  /** AST nodes. */
  maxNodes: 400,
  /** Largest absolute value of a numeric literal. */
  maxLiteral: 1e15,
};

export type Node =
  | { kind: 'number'; value: number; pos: number }
  | { kind: 'name'; name: string; pos: number }
  | { kind: 'unary'; op: '-' | '+'; arg: Node; pos: number }
  | { kind: 'binary'; op: BinaryOp; left: Node; right: Node; pos: number }
  | { kind: 'call'; fn: string; args: Node[]; kwargs: Array<{ name: string; value: Node; pos: number }>; pos: number }
  | { kind: 'list'; items: Node[]; pos: number }
  | { kind: 'index'; name: string; index: number; pos: number };

export type BinaryOp = '+' | '-' | '*' | '/' | '@' | '**' | '<' | '<=' | '>' | '>=' | '==' | '!=';

/** A parse or evaluation problem at a character offset (0-based) of the expression. */
export class ExpressionError extends Error {
  readonly position: number;
  readonly expected?: string;
  /** The spec key the expression came from ("call", "activation"), where the thrower knows it. */
  field?: string;

  constructor(message: string, position: number, expected?: string) {
    super(message);
    this.name = 'ExpressionError';
    this.position = position;
    this.expected = expected;
  }
}

/** The SpecError (422 EXPRESSION_INVALID) an expression problem becomes at `path` of the request. */
export function expressionSpecError(err: ExpressionError, path: string, message = err.message): SpecError {
  return new SpecError(path, message, 'EXPRESSION_INVALID', { position: err.position, expected: err.expected });
}

type Token =
  | { type: 'number'; value: number; text: string; pos: number }
  | { type: 'name'; text: string; pos: number }
  | { type: 'op'; text: string; pos: number }
  | { type: 'end'; text: ''; pos: number };

const OPERATORS = ['**', '<=', '>=', '==', '!=', '+', '-', '*', '/', '@', '<', '>', '(', ')', '[', ']', ',', '='];
const NUMBER_RE = /(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/y;
const NAME_RE = /[A-Za-z_][A-Za-z0-9_]*/y;

function show(text: string): string {
  return text === '' ? 'the end' : JSON.stringify(text);
}

function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    NUMBER_RE.lastIndex = i;
    const num = NUMBER_RE.exec(src);
    if (num && /[0-9.]/.test(c)) {
      const value = Number(num[0]);
      if (!Number.isFinite(value) || Math.abs(value) > EXPRESSION_LIMITS.maxLiteral) {
        const shown = num[0].length > 24 ? `${num[0].slice(0, 21)}...` : num[0];
        throw new ExpressionError(`the number ${shown} at position ${i} is out of range (at most ${EXPRESSION_LIMITS.maxLiteral} in size)`, i, 'a smaller number');
      }
      tokens.push({ type: 'number', value, text: num[0], pos: i });
      i += num[0].length;
      // "2x" or "1.5.3": a number runs straight into something else.
      if (i < src.length && /[A-Za-z0-9_.]/.test(src[i]!)) {
        throw new ExpressionError(`unexpected ${show(src[i]!)} right after the number ${num[0]} at position ${i}`, i, 'an operator, "," or ")"');
      }
      continue;
    }
    NAME_RE.lastIndex = i;
    const name = NAME_RE.exec(src);
    if (name) {
      tokens.push({ type: 'name', text: name[0], pos: i });
      i += name[0].length;
      continue;
    }
    const op = OPERATORS.find((o) => src.startsWith(o, i));
    if (!op) {
      const what = c === '"' || c === "'" || c === '`' ? 'strings are not part of the language' : `${show(c)} is not part of the language`;
      throw new ExpressionError(`unexpected character ${show(c)} at position ${i}: ${what}`, i, 'a number, a name, an operator (+ - * / ** @ < > == !=), "(", ")", "[", "]" or ","');
    }
    tokens.push({ type: 'op', text: op, pos: i });
    i += op.length;
  }
  tokens.push({ type: 'end', text: '', pos: src.length });
  return tokens;
}

class Parser {
  private i = 0;
  private depth = 0;
  private nodes = 0;

  constructor(private readonly tokens: Token[]) {}

  private peek(): Token {
    return this.tokens[this.i]!;
  }

  private next(): Token {
    return this.tokens[this.i++]!;
  }

  private isOp(text: string): boolean {
    const t = this.peek();
    return t.type === 'op' && t.text === text;
  }

  private expect(text: string, what: string): Token {
    const t = this.peek();
    if (t.type !== 'op' || t.text !== text) {
      throw new ExpressionError(`expected ${what} at position ${t.pos}, found ${show(t.text)}`, t.pos, what);
    }
    return this.next();
  }

  private node<T extends Node>(n: T): T {
    if (++this.nodes > EXPRESSION_LIMITS.maxNodes) {
      throw new ExpressionError(`the expression has more than ${EXPRESSION_LIMITS.maxNodes} terms (the limit)`, n.pos, 'a shorter expression');
    }
    return n;
  }

  /** Counts nesting before recursing, so deep input fails cleanly instead of overflowing the stack. */
  private nested<T>(pos: number, fn: () => T): T {
    if (++this.depth > EXPRESSION_LIMITS.maxDepth) {
      throw new ExpressionError(`the expression nests deeper than ${EXPRESSION_LIMITS.maxDepth} levels (the limit) at position ${pos}`, pos, 'less nesting');
    }
    try {
      return fn();
    } finally {
      this.depth--;
    }
  }

  parseAll(): Node {
    const tree = this.expr();
    const t = this.peek();
    if (t.type !== 'end') {
      const hint = t.type === 'op' && t.text === '=' ? ' (assignment is not part of the language; compare with "==")' : '';
      throw new ExpressionError(`unexpected ${show(t.text)} at position ${t.pos}${hint}`, t.pos, 'an operator or the end of the expression');
    }
    return tree;
  }

  private expr(): Node {
    const left = this.additive();
    const t = this.peek();
    if (t.type === 'op' && ['<', '<=', '>', '>=', '==', '!='].includes(t.text)) {
      this.next();
      const right = this.additive();
      const after = this.peek();
      if (after.type === 'op' && ['<', '<=', '>', '>=', '==', '!='].includes(after.text)) {
        throw new ExpressionError(`chained comparisons are not supported (position ${after.pos}); combine two comparisons with where()`, after.pos, 'one comparison');
      }
      return this.node({ kind: 'binary', op: t.text as BinaryOp, left, right, pos: t.pos });
    }
    return left;
  }

  private additive(): Node {
    let left = this.term();
    for (let t = this.peek(); t.type === 'op' && (t.text === '+' || t.text === '-'); t = this.peek()) {
      this.next();
      left = this.node({ kind: 'binary', op: t.text as BinaryOp, left, right: this.term(), pos: t.pos });
    }
    return left;
  }

  private term(): Node {
    let left = this.unary();
    for (let t = this.peek(); t.type === 'op' && (t.text === '*' || t.text === '/' || t.text === '@'); t = this.peek()) {
      this.next();
      left = this.node({ kind: 'binary', op: t.text as BinaryOp, left, right: this.unary(), pos: t.pos });
    }
    return left;
  }

  private unary(): Node {
    const t = this.peek();
    if (t.type === 'op' && (t.text === '-' || t.text === '+')) {
      this.next();
      return this.nested(t.pos, () => this.node({ kind: 'unary', op: t.text as '-' | '+', arg: this.unary(), pos: t.pos }));
    }
    return this.power();
  }

  private power(): Node {
    const base = this.postfix();
    const t = this.peek();
    if (t.type === 'op' && t.text === '**') {
      this.next();
      return this.nested(t.pos, () => this.node({ kind: 'binary', op: '**', left: base, right: this.unary(), pos: t.pos }));
    }
    return base;
  }

  private postfix(): Node {
    const start = this.peek();
    const base = this.primary();
    if (!this.isOp('[')) return base;
    const open = this.next();
    if (base.kind !== 'name' || base.name !== 'inputs') {
      throw new ExpressionError(`indexing at position ${open.pos} is only for a layer's several inputs (inputs[0], inputs[1], ...); use slice() or gather() for tensors`, open.pos, 'an operator');
    }
    const idx = this.next();
    if (idx.type !== 'number' || !Number.isInteger(idx.value) || idx.value < 0) {
      throw new ExpressionError(`inputs[...] at position ${idx.pos} takes a whole number (inputs[0], inputs[1], ...)`, idx.pos, 'a whole number');
    }
    this.expect(']', '"]"');
    return this.node({ kind: 'index', name: 'inputs', index: idx.value, pos: start.pos });
  }

  private primary(): Node {
    const t = this.next();
    if (t.type === 'number') return this.node({ kind: 'number', value: t.value, pos: t.pos });
    if (t.type === 'name') {
      if (this.isOp('(')) return this.nested(t.pos, () => this.call(t.text, t.pos));
      return this.node({ kind: 'name', name: t.text, pos: t.pos });
    }
    if (t.type === 'op' && t.text === '(') {
      return this.nested(t.pos, () => {
        const inner = this.expr();
        this.expect(')', '")"');
        return inner;
      });
    }
    if (t.type === 'op' && t.text === '[') {
      return this.nested(t.pos, () => {
        const items: Node[] = [];
        if (!this.isOp(']')) {
          do items.push(this.expr());
          while (this.isOp(',') && this.next());
        }
        this.expect(']', '"," or "]"');
        return this.node({ kind: 'list', items, pos: t.pos });
      });
    }
    throw new ExpressionError(`expected a number, a name, "(" or "[" at position ${t.pos}, found ${show(t.text)}`, t.pos, 'a number, a name, "(" or "["');
  }

  private call(fn: string, pos: number): Node {
    this.expect('(', '"("');
    const args: Node[] = [];
    const kwargs: Array<{ name: string; value: Node; pos: number }> = [];
    if (!this.isOp(')')) {
      do {
        const t = this.peek();
        const following = this.tokens[this.i + 1]!;
        if (t.type === 'name' && following.type === 'op' && following.text === '=') {
          this.i += 2;
          if (kwargs.some((k) => k.name === t.text)) {
            throw new ExpressionError(`keyword argument "${t.text}" is given twice at position ${t.pos}`, t.pos, 'each keyword once');
          }
          kwargs.push({ name: t.text, value: this.expr(), pos: t.pos });
        } else {
          if (kwargs.length) throw new ExpressionError(`a positional argument follows a keyword argument at position ${t.pos}`, t.pos, 'keyword arguments last');
          args.push(this.expr());
        }
      } while (this.isOp(',') && this.next());
    }
    this.expect(')', '"," or ")"');
    return this.node({ kind: 'call', fn, args, kwargs, pos });
  }
}

/** Parses an expression; throws ExpressionError with the position and what was expected. */
export function parseExpression(text: unknown): Node {
  if (typeof text !== 'string') throw new ExpressionError(`an expression must be a string, got ${JSON.stringify(text) ?? String(text)}`, 0, 'a string');
  if (text.length > EXPRESSION_LIMITS.maxLength) {
    throw new ExpressionError(`the expression is ${text.length} characters long, over the limit of ${EXPRESSION_LIMITS.maxLength}`, EXPRESSION_LIMITS.maxLength, 'a shorter expression');
  }
  if (text.trim() === '') throw new ExpressionError('the expression is empty', 0, 'an expression such as "mean(square(y_true - y_pred))"');
  return new Parser(tokenize(text)).parseAll();
}
