/**
 * One ServiceObserver that tells several (metrics, the audit log, persistence): the
 * service takes one observer; each listener gets every hook it has, and one that
 * throws cannot keep the others from hearing it.
 */
import type { ServiceObserver } from '../service/observer.js';

function safe(run: () => void): void {
  try {
    run();
  } catch {
    // An observer can never fail a change, nor silence another observer.
  }
}

export function fanOut(...observers: readonly (ServiceObserver | undefined)[]): ServiceObserver {
  const list = observers.filter((o): o is ServiceObserver => o !== undefined);
  return {
    kernel: (e) => {
      for (const o of list) safe(() => o.kernel?.(e));
    },
    batch: (e) => {
      for (const o of list) safe(() => o.batch?.(e));
    },
    job: (e) => {
      for (const o of list) safe(() => o.job?.(e));
    },
    committed: (records) => {
      for (const o of list) safe(() => o.committed?.(records));
    },
    reread: (e) => {
      for (const o of list) safe(() => o.reread?.(e));
    },
    unreadable: (e) => {
      for (const o of list) safe(() => o.unreadable?.(e));
    },
  };
}
