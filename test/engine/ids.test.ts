/** The message ID pool, against a plain array model of "free oldest first, quarantine by time". */
import { describe, expect, it } from 'vitest';
import { ID_SPACE, IdPool, NO_ID } from '../../src/engine/ids.js';
import { mulberry32 } from '../../src/stats/index.js';

describe('IdPool', () => {
  it('hands out every ID once, then none; a given-back ID comes last', () => {
    const pool = new IdPool(1000, 7);
    const taken = new Set<number>();
    for (let k = 0; k < ID_SPACE; k++) taken.add(pool.take());
    expect(taken.size).toBe(ID_SPACE);
    expect(pool.take()).toBe(NO_ID);
    pool.give(42);
    pool.give(9);
    expect([pool.take(), pool.take(), pool.take()]).toEqual([42, 9, NO_ID]);
  });

  it('follows the model through random takes, answers, timeouts and time', () => {
    const rand = mulberry32(3);
    const pool = new IdPool(50, 0);
    // The model: a plain array of free IDs, oldest first, and a list of [id, until] in the order they went in.
    const free = Array.from({ length: ID_SPACE }, (_, k) => k);
    const waiting: Array<[number, number]> = [];
    const inFlight: number[] = [];
    let now = 0;
    for (let step = 0; step < 200_000; step++) {
      const r = rand();
      if (r < 0.5) {
        const want = free.length > 0 ? free.shift()! : NO_ID;
        const got = pool.take();
        expect(got).toBe(want);
        if (got !== NO_ID) inFlight.push(got);
      } else if (r < 0.8 && inFlight.length > 0) {
        const id = inFlight.splice(Math.floor(rand() * inFlight.length), 1)[0]!;
        pool.give(id);
        free.push(id);
      } else if (r < 0.9 && inFlight.length > 0) {
        const id = inFlight.splice(Math.floor(rand() * inFlight.length), 1)[0]!;
        pool.quarantine(id, now);
        waiting.push([id, now + 50]);
        expect(pool.quarantined(id, now)).toBe(true);
      } else {
        now += rand() * 20;
        pool.release(now);
        while (waiting.length > 0 && waiting[0]![1] <= now) free.push(waiting.shift()![0]);
      }
      expect(pool.free).toBe(free.length);
    }
  });
});
