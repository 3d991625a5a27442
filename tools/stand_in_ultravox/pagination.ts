// Django REST Framework's CursorPagination over an in-memory list, as the Ultravox backend very
// probably pages /api/calls and /api/deleted_calls (docs/ULTRAVOX.md, "List calls"). It follows
// the algorithm of encode/django-rest-framework, rest_framework/pagination.py (CursorPagination:
// paginate_queryset, get_next_link, get_previous_link, decode_cursor, encode_cursor), rewritten
// for a sorted array:
//
// - The order is `created`, ties broken by an internal serial that grows as objects are added
//   (like `ordering = ("-created", "id")` with an auto-increment id): tied objects are listed in
//   the order they were added, newest-first walks and oldest-first walks are exact mirrors, and
//   clients never see the serial. A later addition at an existing instant goes after the others.
// - A cursor is base64 of `o=<offset>&r=1&p=<position>` (each left out when 0 / forward / none).
//   The position is a `created` as Python's str() writes it ("2025-03-22 15:40:02.118204+00:00");
//   the next page is the items strictly beyond it, less the first `offset` of them (the items of
//   the last page tied with the first item of the next one). A page entirely of tied items
//   carries the offset on instead.
// - The position is a value, not an item: deleting the item it came from changes nothing, but
//   deleting one of the `offset` skipped items makes the next page skip one more, and an item
//   added at the position's instant is never met by the walk. An item added at the instant of
//   the skipped ones sorts after them newest first (it is met), before them oldest first (one
//   of them is served twice and the new one never). Offsets are capped at 1,000 (DRF's
//   offset_cutoff), so a walk cannot get through a longer run of ties.

import { microsOfPosition, pythonStrOfMicros } from "./time.ts";

export interface Cursor {
  offset: number;
  reverse: boolean;
  /** Microseconds since the epoch, or null for a cursor that only counts from the start. */
  position: bigint | null;
}

export interface ListQuery {
  /** Inclusive bounds on `created`, in microseconds. */
  from: bigint | null;
  to: bigint | null;
  /** Newest first (`-created`, the default) or oldest first. */
  descending: boolean;
  pageSize: number;
  cursor: Cursor | null;
}

export interface ListPage<T> {
  results: T[];
  next: Cursor | null;
  previous: Cursor | null;
  /** Objects inside the date range, whatever the cursor. */
  total: number;
}

export interface Entry<T> {
  item: T;
  micros: bigint;
  serial: number;
}

/** DRF's offset_cutoff: larger offsets in a cursor are read as this. */
export const OFFSET_CUTOFF = 1000;

/** A sorted list that DRF-style cursors page through. */
export class Listing<T> {
  /** Newest first; ties by serial, ascending. */
  #desc: Entry<T>[] = [];
  #serial = 0;

  get size(): number {
    return this.#desc.length;
  }

  /** The items, newest first. */
  items(): T[] {
    return this.#desc.map((e) => e.item);
  }

  entries(): readonly Entry<T>[] {
    return this.#desc;
  }

  add(items: { item: T; micros: bigint }[]): Entry<T>[] {
    const added = items.map(({ item, micros }) => ({ item, micros, serial: this.#serial++ }));
    this.#desc.push(...added);
    this.#desc.sort(byListOrder);
    return added;
  }

  remove(entry: Entry<T>): void {
    const i = firstIndex(this.#view(true), (e) => byListOrder(e, entry) >= 0);
    if (this.#desc[i] !== entry) throw new Error("not in this listing");
    this.#desc.splice(i, 1);
  }

  /** One page, as paginate_queryset and the two link builders make it. */
  page(q: ListQuery): ListPage<T> {
    const cursor = q.cursor ?? { offset: 0, reverse: false, position: null };
    // A reverse cursor walks the other way and turns its page round.
    const newestFirst = q.descending !== cursor.reverse;
    const view = this.#view(newestFirst);
    const [lo, hi] = range(view, newestFirst, q.from, q.to);
    let start = lo;
    const p = cursor.position;
    if (p !== null) {
      const beyond = firstIndex(view, (e) => newestFirst ? e.micros < p : e.micros > p);
      start = Math.min(hi, Math.max(lo, beyond));
    }
    start = Math.min(hi, start + cursor.offset);
    // One more than the page, to know whether a page follows and where it starts.
    const fetched: Entry<T>[] = [];
    for (let i = start; i < Math.min(hi, start + q.pageSize + 1); i++) fetched.push(view.at(i));
    const page = fetched.slice(0, q.pageSize);
    const hasFollowing = fetched.length > page.length;
    const following = hasFollowing ? fetched[page.length].micros : null;
    if (cursor.reverse) page.reverse();

    const cameBy = p !== null || cursor.offset > 0;
    const hasNext = cursor.reverse ? cameBy : hasFollowing;
    const hasPrevious = cursor.reverse ? hasFollowing : cameBy;
    const nextPosition = cursor.reverse ? p : following;
    const previousPosition = cursor.reverse ? following : p;
    const positions = page.map((e) => e.micros);
    const given = q.cursor;

    const next = (): Cursor | null => {
      if (!hasNext) return null;
      // Seek back from the page's end for the last item not tied with the one after it.
      let compare = positions.length > 0 && given?.reverse && given.offset !== 0
        ? positions[positions.length - 1] // turning round after an offset cursor
        : nextPosition;
      let offset = 0;
      let position: bigint | null = null;
      let unique = false;
      for (let i = positions.length - 1; i >= 0; i--) {
        if (positions[i] !== compare) {
          [unique, position] = [true, positions[i]];
          break;
        }
        compare = positions[i];
        offset++;
      }
      if (positions.length > 0 && !unique) {
        // The whole page is one tie group.
        if (!hasPrevious) [offset, position] = [q.pageSize, null];
        else if (given!.reverse) [offset, position] = [0, previousPosition];
        else [offset, position] = [given!.offset + q.pageSize, previousPosition];
      }
      if (positions.length === 0) position = nextPosition;
      return { offset, reverse: false, position };
    };

    const previous = (): Cursor | null => {
      if (!hasPrevious) return null;
      let compare = positions.length > 0 && given !== null && !given.reverse && given.offset !== 0
        ? positions[0]
        : previousPosition;
      let offset = 0;
      let position: bigint | null = null;
      let unique = false;
      for (let i = 0; i < positions.length; i++) {
        if (positions[i] !== compare) {
          [unique, position] = [true, positions[i]];
          break;
        }
        compare = positions[i];
        offset++;
      }
      if (positions.length > 0 && !unique) {
        if (!hasNext) [offset, position] = [q.pageSize, null];
        else if (given!.reverse) [offset, position] = [given!.offset + q.pageSize, nextPosition];
        else [offset, position] = [0, nextPosition];
      }
      if (positions.length === 0) position = previousPosition;
      return { offset, reverse: true, position };
    };

    return {
      results: page.map((e) => e.item),
      next: next(),
      previous: previous(),
      total: hi - lo,
    };
  }

  #view(newestFirst: boolean): View<Entry<T>> {
    const xs = this.#desc;
    return newestFirst
      ? { length: xs.length, at: (i) => xs[i] }
      : { length: xs.length, at: (i) => xs[xs.length - 1 - i] };
  }
}

interface View<E> {
  length: number;
  at(i: number): E;
}

function byListOrder<T>(a: Entry<T>, b: Entry<T>): number {
  if (a.micros !== b.micros) return a.micros > b.micros ? -1 : 1;
  return a.serial - b.serial;
}

/** [lo, hi) of the items inside inclusive bounds, along a walk. */
function range<E extends { micros: bigint }>(
  view: View<E>,
  newestFirst: boolean,
  from: bigint | null,
  to: bigint | null,
): [number, number] {
  const lo = newestFirst
    ? (to === null ? 0 : firstIndex(view, (e) => e.micros <= to))
    : (from === null ? 0 : firstIndex(view, (e) => e.micros >= from));
  const hi = newestFirst
    ? (from === null ? view.length : firstIndex(view, (e) => e.micros < from))
    : (to === null ? view.length : firstIndex(view, (e) => e.micros > to));
  return [lo, Math.max(lo, hi)];
}

/** The first index where `test` holds, for a test that is false and then true along `xs`. */
function firstIndex<E>(xs: View<E>, test: (x: E) => boolean): number {
  let [lo, hi] = [0, xs.length];
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (test(xs.at(mid))) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

// ---- the cursor's text ----------------------------------------------------------------------

export function encodeCursor(c: Cursor): string {
  const tokens = new URLSearchParams();
  if (c.offset !== 0) tokens.set("o", String(c.offset));
  if (c.reverse) tokens.set("r", "1");
  if (c.position !== null) tokens.set("p", pythonStrOfMicros(c.position));
  return btoa(tokens.toString());
}

/**
 * The cursor in a `cursor` parameter, or null where DRF answers 404 "Invalid cursor": not
 * base64 (Python's lenient decoder: characters outside the alphabet are skipped, but the
 * padding must be right), not ASCII, an offset or direction that is not an integer. A position
 * that is not a date-time is refused the same way (DRF itself would let Django's ValidationError
 * through as a 500).
 */
export function decodeCursor(text: string): Cursor | null {
  const bytes = pythonB64decode(text);
  if (bytes === null || bytes.some((b) => b > 127)) return null;
  const tokens = new URLSearchParams(new TextDecoder().decode(new Uint8Array(bytes)));
  const offset = pythonInt(tokens.get("o") ?? "0");
  const reverse = pythonInt(tokens.get("r") ?? "0");
  if (offset === null || offset < 0 || reverse === null) return null;
  const p = tokens.get("p");
  const position = p === null ? null : microsOfPosition(p);
  if (p !== null && position === null) return null;
  return { offset: Math.min(offset, OFFSET_CUTOFF), reverse: reverse !== 0, position };
}

/**
 * `pageSize` as DRF's get_page_size reads it: a positive integer, capped at `max`; anything
 * else (0, negative, not a number) quietly means the default.
 */
export function readPageSize(text: string | null, fallback: number, max: number): number {
  const n = text === null ? null : pythonInt(text);
  return n === null || n < 1 ? fallback : Math.min(n, max);
}

/** Python's int() of a string: blanks around, a sign, digits with single underscores. */
function pythonInt(text: string): number | null {
  if (!/^\s*[+-]?\d+(?:_\d+)*\s*$/.test(text)) return null;
  return Number(text.replace(/[\s_]/g, ""));
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** base64.b64decode (binascii.a2b_base64, not strict): null where it raises. */
function pythonB64decode(text: string): number[] | null {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 127) return null; // str.encode("ascii") fails
  }
  const out: number[] = [];
  let quad = 0;
  let left = 0;
  let pads = 0;
  for (const ch of text) {
    if (ch === "=") {
      // Enough padding ends the data; anything after it is ignored.
      if (quad >= 2 && quad + ++pads >= 4) return out;
      continue;
    }
    const v = B64.indexOf(ch);
    if (v < 0) continue;
    pads = 0;
    // Four characters carry three bytes: 6 + 2, 4 + 4, 2 + 6 bits.
    if (quad === 1) out.push((left << 2) | (v >> 4));
    if (quad === 2) out.push(((left & 0x0f) << 4) | (v >> 2));
    if (quad === 3) out.push(((left & 0x03) << 6) | v);
    left = v;
    quad = (quad + 1) % 4;
  }
  return quad === 0 ? out : null; // "Incorrect padding", or one character too many
}
