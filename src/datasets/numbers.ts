/** Parsing decimal numbers straight from bytes (the CSV fast path), exact like Number(). */

const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

/**
 * The number in `buf[s..e)`, or NaN when it is not a number. Plain decimals with up to 15
 * significant digits and a small exponent take Clinger's fast path (one correctly rounded
 * operation, so the result equals Number(text)); everything else goes through Number().
 */
export function parseNumber(buf: Uint8Array, s: number, e: number): number {
  while (s < e && (buf[s] === 32 || buf[s] === 9)) s++;
  while (e > s && (buf[e - 1] === 32 || buf[e - 1] === 9)) e--;
  if (s === e) return NaN;
  let i = s;
  let neg = false;
  const c0 = buf[i]!;
  if (c0 === 45 /* - */) {
    neg = true;
    i++;
  } else if (c0 === 43 /* + */) i++;
  let mant = 0;
  let digits = 0;
  let scale = 0;
  let any = false;
  while (i < e) {
    const d = buf[i]! - 48;
    if (d < 0 || d > 9) break;
    if (digits > 0 || d !== 0) digits++;
    mant = mant * 10 + d;
    any = true;
    i++;
  }
  if (i < e && buf[i] === 46 /* . */) {
    i++;
    while (i < e) {
      const d = buf[i]! - 48;
      if (d < 0 || d > 9) break;
      if (digits > 0 || d !== 0) digits++;
      mant = mant * 10 + d;
      scale--;
      any = true;
      i++;
    }
  }
  if (!any) return slow(buf, s, e);
  if (i < e && (buf[i] === 101 || buf[i] === 69) /* e E */) {
    i++;
    let eneg = false;
    if (i < e && (buf[i] === 45 || buf[i] === 43)) {
      eneg = buf[i] === 45;
      i++;
    }
    let exp = 0;
    let expDigits = 0;
    while (i < e) {
      const d = buf[i]! - 48;
      if (d < 0 || d > 9) break;
      exp = exp * 10 + d;
      expDigits++;
      i++;
      if (exp > 100000) return slow(buf, s, e);
    }
    if (expDigits === 0) return NaN;
    scale += eneg ? -exp : exp;
  }
  if (i !== e) return slow(buf, s, e);
  if (digits > 15) return slow(buf, s, e);
  let v: number;
  if (mant === 0) v = 0;
  else if (scale === 0) v = mant;
  else if (scale > 0 && scale <= 22) v = mant * POW10[scale]!;
  else if (scale < 0 && scale >= -22) v = mant / POW10[-scale]!;
  else return slow(buf, s, e);
  return neg ? -v : v;
}

function slow(buf: Uint8Array, s: number, e: number): number {
  const text = Buffer.from(buf.buffer, buf.byteOffset + s, e - s).toString('latin1').trim();
  // Number() accepts "", "0x1f", "Infinity"; a CSV number is a decimal.
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return NaN;
  return Number(text);
}

/** A string field as a number (quoted fields), NaN when it is not one. */
export function parseNumberText(text: string): number {
  const b = Buffer.from(text, 'latin1');
  return parseNumber(b, 0, b.length);
}
