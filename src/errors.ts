/** One thing wrong with user input: where it is, what is wrong, and how to fix it. */
export interface Problem {
  /** Where: a file (with line when known), a key path, an experiment or service. */
  where: string;
  what: string;
  fix?: string;
}

/** Exit code of an unexpected error: a bug in labtest, not a user mistake (sysexits EX_SOFTWARE). */
export const EXIT_BUG = 70;

/**
 * An error the user can act on. The CLI prints its message and exits non-zero without a stack;
 * anything that is not a LabtestError is a bug and is reported as one.
 */
export class LabtestError extends Error {
  /** The message's first part, before the problems are listed. */
  readonly summary: string;
  readonly problems: Problem[];
  readonly exitCode: number;

  constructor(
    summary: string,
    problems: Problem[] = [],
    options: { cause?: unknown; exitCode?: number } = {},
  ) {
    super(formatMessage(summary, problems), { cause: options.cause });
    this.name = new.target.name;
    this.summary = summary;
    this.problems = problems;
    this.exitCode = options.exitCode ?? 1;
  }
}

/** Configuration that cannot be found, read or validated. Exit code 2, as for bad usage. */
export class ConfigError extends LabtestError {
  constructor(summary: string, problems: Problem[] = [], options: { cause?: unknown } = {}) {
    super(summary, problems, { ...options, exitCode: 2 });
  }
}

/** A command line that cannot be carried out as written. */
export class UsageError extends LabtestError {
  constructor(summary: string, problems: Problem[] = []) {
    super(summary, problems, { exitCode: 2 });
  }
}

function formatMessage(summary: string, problems: Problem[]): string {
  if (problems.length === 0) return summary;
  const lines = problems.map((p) => `  - ${p.where}: ${p.what}${p.fix ? `\n      fix: ${p.fix}` : ""}`);
  return `${summary}\n${lines.join("\n")}`;
}
