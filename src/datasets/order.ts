/**
 * The sample order of one training epoch, a function of (seed, epoch) and the dataset's
 * size only, so that a run resumed at any batch, in any process, sees the same order, and a
 * dataset read from disk trains exactly like the same dataset loaded whole.
 *
 * Datasets whose rows fit in one shuffle window are shuffled whole (Fisher-Yates, as Keras
 * does). Larger ones are cut into blocks of rows; each epoch permutes the blocks, groups
 * them into windows of `blocksPerWindow` blocks, and shuffles the rows within each window.
 * A reader then needs one window (a few large sequential reads) at a time.
 */
import { mulberry32 } from '../engine/seeded-random.ts';

/** Blocks per shuffle window: rows of a window come from this many places in the dataset. */
export const BLOCKS_PER_WINDOW = 32;

export interface ShuffleLayout {
  /** Rows being ordered. */
  n: number;
  /** False: one window holding every row (a full shuffle). */
  windowed: boolean;
  blockRows: number;
  blocksPerWindow: number;
}

/**
 * The layout for `n` rows of `rowBytes` bytes each (as float32, x and y together) under a
 * shuffle window of `windowBytes`.
 */
export function shuffleLayout(n: number, rowBytes: number, windowBytes: number): ShuffleLayout {
  const windowRows = Math.max(1, Math.floor(windowBytes / Math.max(1, rowBytes)));
  if (n <= windowRows) return { n, windowed: false, blockRows: Math.max(1, n), blocksPerWindow: 1 };
  const blockRows = Math.max(1, Math.floor(windowRows / BLOCKS_PER_WINDOW));
  return { n, windowed: true, blockRows, blocksPerWindow: Math.max(1, Math.floor(windowRows / blockRows)) };
}

/** One window per `blocksPerWindow` consecutive blocks, rows in natural order (evaluation, validation). */
export function sequentialLayout(n: number, rowBytes: number, windowBytes: number): ShuffleLayout {
  const windowRows = Math.max(1, Math.floor(windowBytes / Math.max(1, rowBytes)));
  const blockRows = Math.max(1, Math.min(n, Math.floor(windowRows / 4)));
  return { n, windowed: true, blockRows, blocksPerWindow: 4 };
}

/** An epoch's order with the window structure a reader needs. */
export interface EpochPlan {
  layout: ShuffleLayout;
  /** Row at each position; null for the identity (rows in their stored order). */
  order: Int32Array | null;
  /** Blocks in reading order: window w holds blockOrder[w*k .. (w+1)*k). */
  blockOrder: Int32Array | null;
  /** First position of each window, and n at the end. */
  windowStarts: Int32Array;
}

/** The seed of an epoch's generator (kept from the first version of the training loop). */
export function epochSeed(seed: number, epoch: number): number {
  return (Math.imul(seed, 0x9e3779b1) ^ Math.imul(epoch + 1, 0x85ebca6b)) >>> 0;
}

export function shuffleInPlace(a: Int32Array, random: () => number, start = 0, end = a.length): void {
  for (let i = end - 1; i > start; i--) {
    const j = start + Math.floor(random() * (i - start + 1));
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
}

function blockCount(l: ShuffleLayout): number {
  return Math.ceil(l.n / l.blockRows);
}

/** Window starts for blocks read in `blockOrder` (null: natural order). */
function windowStarts(l: ShuffleLayout, blockOrder: Int32Array | null): Int32Array {
  const nb = blockCount(l);
  const windows = Math.ceil(nb / l.blocksPerWindow);
  const starts = new Int32Array(windows + 1);
  let pos = 0;
  for (let w = 0; w < windows; w++) {
    starts[w] = pos;
    const end = Math.min(nb, (w + 1) * l.blocksPerWindow);
    for (let i = w * l.blocksPerWindow; i < end; i++) {
      const b = blockOrder ? blockOrder[i]! : i;
      pos += Math.min(l.n, (b + 1) * l.blockRows) - b * l.blockRows;
    }
  }
  starts[windows] = pos;
  return starts;
}

/**
 * The order of an epoch under `random` (a generator seeded with epochSeed(seed, epoch), or
 * Math.random). Not windowed: Fisher-Yates over every row. Windowed: blocks permuted, rows
 * shuffled within each window.
 */
export function epochPlan(layout: ShuffleLayout, random: () => number): EpochPlan {
  const { n } = layout;
  const order = new Int32Array(n);
  if (!layout.windowed) {
    for (let i = 0; i < n; i++) order[i] = i;
    shuffleInPlace(order, random);
    return { layout, order, blockOrder: null, windowStarts: Int32Array.from([0, n]) };
  }
  const nb = blockCount(layout);
  const blockOrder = new Int32Array(nb);
  for (let i = 0; i < nb; i++) blockOrder[i] = i;
  shuffleInPlace(blockOrder, random);
  const starts = windowStarts(layout, blockOrder);
  let pos = 0;
  for (let w = 0; w + 1 < starts.length; w++) {
    const end = Math.min(nb, (w + 1) * layout.blocksPerWindow);
    for (let i = w * layout.blocksPerWindow; i < end; i++) {
      const b = blockOrder[i]!;
      const last = Math.min(n, (b + 1) * layout.blockRows);
      for (let r = b * layout.blockRows; r < last; r++) order[pos++] = r;
    }
    shuffleInPlace(order, random, starts[w]!, starts[w + 1]!);
  }
  return { layout, order, blockOrder, windowStarts: starts };
}

/** Rows in stored order, read window by window. */
export function sequentialPlan(layout: ShuffleLayout): EpochPlan {
  return { layout, order: null, blockOrder: null, windowStarts: windowStarts(layout, null) };
}

/** The order of epoch `epoch` under `seed` (deterministic). */
export function seededEpochPlan(layout: ShuffleLayout, seed: number, epoch: number): EpochPlan {
  return epochPlan(layout, mulberry32(epochSeed(seed, epoch)));
}
