/** The engine's slots, against a plain model: a set of free slots and a slot held while its send is queued. */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { FREE, IDLE, Slots, TCP, UDP } from '../../src/engine/slots.js';
import { mulberry32 } from '../../src/stats/index.js';

describe('Slots', () => {
  it('hands out each slot once; an ended slot with a queued send stays out until the send completes', () => {
    const slots = new Slots(3);
    const taken = [slots.take(), slots.take(), slots.take()];
    expect(new Set(taken)).toEqual(new Set([0, 1, 2]));
    expect(slots.free).toBe(0);
    const [a, b] = taken as [number, number, number];
    slots.state[a] = UDP;
    slots.sendPending[a] = 1;
    slots.clear(a);
    expect(slots.state[a]).toBe(IDLE);
    expect(slots.id[a]).toBe(FREE);
    expect(slots.free).toBe(0); // its buffer may still be read by the kernel
    slots.sendPending[a] = 0;
    slots.give(a);
    slots.clear(b);
    expect(slots.free).toBe(2);
    expect(new Set([slots.take(), slots.take()])).toEqual(new Set([a, b]));
  });

  it('finds the oldest UDP query on a socket, as a scan of a plain list does', () => {
    const rand = mulberry32(11);
    const slots = new Slots(64);
    const model: Array<{ slot: number; sock: number; sent: number; state: number }> = [];
    for (let i = 0; i < 64; i++) {
      const slot = slots.take();
      const sock = Math.floor(rand() * 4);
      const sent = Math.floor(rand() * 1000);
      const state = rand() < 0.2 ? TCP : rand() < 0.1 ? IDLE : UDP;
      slots.sock[slot] = sock;
      slots.sent[slot] = sent;
      slots.state[slot] = state;
      model.push({ slot, sock, sent, state });
    }
    for (let sock = 0; sock < 5; sock++) {
      const mine = model.filter((m) => m.sock === sock && m.state === UDP);
      const oldest = mine.length === 0 ? FREE : Math.min(...mine.map((m) => m.sent));
      const got = slots.oldestOn(sock);
      expect(got === FREE ? FREE : slots.sent[got]).toBe(oldest);
      if (got !== FREE) expect(slots.sock[got]).toBe(sock);
    }
  });

  it('closes a TCP retry when its slot ends, and bumps the generation so late callbacks are ignored', () => {
    const slots = new Slots(1);
    const slot = slots.take();
    const conn = new net.Socket();
    slots.conn[slot] = conn;
    slots.state[slot] = TCP;
    const gen = slots.gen[slot];
    slots.clear(slot);
    expect(conn.destroyed).toBe(true);
    expect(slots.conn[slot]).toBeUndefined();
    expect(slots.gen[slot]).not.toBe(gen);
  });
});
