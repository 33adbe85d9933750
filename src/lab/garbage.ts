/** Something gc removed, or in a dry run would remove, and why nothing accounts for it. */
export interface Removal {
  what: string;
  why: string;
}

/**
 * One pass of gc. Collectors (experiments, runtimes, services, providers, accounts, locks) find
 * what nothing accounts for and hand each removal to `remove`; a dry run records it without
 * doing it, so every collector runs the same code either way.
 */
export class Sweep {
  readonly removals: Removal[] = [];

  constructor(
    /** What is younger than this is left to the command that may still be making it. */
    readonly graceMs: number,
    readonly dryRun = false,
  ) {}

  /** Whether something made (or last touched) at `time`, in ms since the epoch, is past the grace period. */
  old(time: number): boolean {
    return Date.now() - time > this.graceMs;
  }

  /**
   * Removes `what` (unless this is a dry run) and records it with `why`. A removal that finds,
   * once it holds the right lock, that the thing is accounted for after all returns false.
   */
  async remove(what: string, why: string, removal: () => Promise<unknown>): Promise<void> {
    if (!this.dryRun && (await removal()) === false) return;
    this.removals.push({ what, why });
  }
}
