// What the benchmarks share: timing, medians, and an alternating race between contenders.

export const median = (s: number[]) => [...s].sort((a, b) => a - b)[Math.floor(s.length / 2)] ?? Number.NaN;

/** The lowest and the highest of `s`. */
export const range = (s: number[]) => ({ min: Math.min(...s), max: Math.max(...s) });

export const ms = (t: number) => `${t.toFixed(1)} ms`;
export const seconds = (t: number) => `${(t / 1000).toFixed(2)} s`;

/** A median and the range of the runs, each written by `unit`. */
export function spread(samples: number[], unit: (t: number) => string): string {
  const { min, max } = range(samples);
  return `${unit(median(samples))} (${unit(min)}–${unit(max)})`;
}

/** Milliseconds `run` takes. */
export async function timed(run: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export interface Contender {
  name: string;
  /** Makes one and resolves once it is ready; the returned function removes it (not timed). */
  start(round: number): Promise<() => Promise<unknown>>;
}

/**
 * Runs each of `contenders` `rounds` times, alternating (the order swapped every round) after one
 * untimed run each; resolves to their medians in milliseconds, in the contenders' order.
 */
export async function race(rounds: number, contenders: Contender[]): Promise<number[]> {
  return (await raceSamples(rounds, contenders)).map(median);
}

/** As `race`, resolving to every timed run of each contender (milliseconds), in the contenders' order. */
export async function raceSamples(rounds: number, contenders: Contender[]): Promise<number[][]> {
  const samples = contenders.map((): number[] => []);
  for (let round = -1; round < rounds; round++) {
    const order = contenders.map((_, i) => i);
    if (round % 2 === 1) order.reverse();
    for (const i of order) {
      let remove: (() => Promise<unknown>) | undefined;
      const took = await timed(async () => {
        remove = await (contenders[i] as Contender).start(round + 1);
      });
      if (round >= 0) samples[i]?.push(took);
      await remove?.();
    }
  }
  return samples;
}
