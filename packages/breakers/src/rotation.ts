import { EventEmitter } from 'node:events';

/**
 * One bucket-rotation emitter per bucket interval, shared by every breaker in
 * the process (opossum's `rotateBucketController`): one interval timer, however
 * many peers. Reference counted; the timer stops with the last breaker.
 */
interface Rotator {
  emitter: EventEmitter;
  timer: NodeJS.Timeout;
  refs: number;
}

const rotators = new Map<number, Rotator>();

export function acquireRotator(intervalMs: number): EventEmitter {
  let rotator = rotators.get(intervalMs);
  if (rotator === undefined) {
    const emitter = new EventEmitter();
    emitter.setMaxListeners(0); // one listener per breaker, by design
    const timer = setInterval(() => emitter.emit('rotate'), intervalMs);
    timer.unref();
    rotator = { emitter, timer, refs: 0 };
    rotators.set(intervalMs, rotator);
  }
  rotator.refs++;
  return rotator.emitter;
}

export function releaseRotator(intervalMs: number): void {
  const rotator = rotators.get(intervalMs);
  if (rotator === undefined) return;
  if (--rotator.refs > 0) return;
  clearInterval(rotator.timer);
  rotators.delete(intervalMs);
}

/** Rotation timers running now (for tests and the memory bench). */
export function rotationTimers(): number {
  return rotators.size;
}
