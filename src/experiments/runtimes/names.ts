/**
 * The names of the app runtimes, as configurations give them. Apart from their modules (see
 * index.ts, which must name the same) so that the configuration's schema reads them without
 * loading Docker's client or the process supervisor.
 */
export const RUNTIMES = ["local", "docker"] as const;

export type Runtime = (typeof RUNTIMES)[number];
