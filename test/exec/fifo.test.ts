import { closeSync, fstatSync, readdirSync, readSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { expect, it } from 'vitest';
import { openFifo } from '../../src/exec/fifo.js';

const leftovers = () => readdirSync(tmpdir()).filter((n) => n.startsWith('portcullis-pipe-'));

it('opens both ends of a pipe and leaves no name behind', () => {
  const before = leftovers();
  const fifo = openFifo();
  expect(fifo).toBeDefined();
  const { readFd, writeFd } = fifo!;
  try {
    expect(fstatSync(readFd).isFIFO()).toBe(true);
    // Many small writes are packed into the pipe's pages: far more than a socket pair holds.
    for (let i = 0; i < 4000; i++) writeSync(writeFd, 'x'.repeat(9));
    const buf = Buffer.alloc(64 * 1024);
    expect(readSync(readFd, buf)).toBe(36_000);
  } finally {
    closeSync(readFd);
    closeSync(writeFd);
  }
  expect(leftovers()).toEqual(before);
});

it('is undefined where mkfifo cannot run, and leaves nothing behind', () => {
  const before = leftovers();
  expect(openFifo('/nonexistent/mkfifo')).toBeUndefined();
  expect(leftovers()).toEqual(before);
});
