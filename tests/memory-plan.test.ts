/** The planned peak memory counts every copy a run holds, the restart snapshot of a default learning rate included. */
import { describe, expect, it } from 'vitest';
import { planMemory } from '../src/training/memory-plan.js';

describe('planMemory', () => {
  const base = { floatsPerImage: 1000, parameterBytes: 40e6, stateFactor: 1, batch: 64, dataBytes: 1e6, frozenModels: 0 };

  it('a run that may restart a diverging phase plans one more copy of the weights and the method state', () => {
    const plain = planMemory(base);
    const withSnapshot = planMemory({ ...base, restartSnapshot: true });
    expect(withSnapshot.total - plain.total).toBe(40e6 * 2);
    expect(withSnapshot.parts.map((p) => p.what)).toContain('the copy of the weights and state a diverging phase restarts from');
    // Adam's two moments: three copies.
    expect(planMemory({ ...base, stateFactor: 2, restartSnapshot: true }).total - planMemory({ ...base, stateFactor: 2 }).total).toBe(40e6 * 3);
  });
});
