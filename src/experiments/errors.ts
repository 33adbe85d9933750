import { LabtestError, type Problem } from "../errors.js";

/** An experiment that cannot be created, changed or found as asked. */
export class ExperimentError extends LabtestError {
  constructor(
    summary: string,
    problems: Problem[] = [],
    options: { cause?: unknown; exitCode?: number } = {},
  ) {
    super(summary, problems, options);
  }
}

/**
 * `error` with what undoing its operation could not undo, as one more problem: the failure stays
 * the message's first line (and the error its class and exit code); the leftovers follow it.
 */
export function withUndoFailure(error: unknown, leftover: Problem): unknown {
  if (!(error instanceof Error)) return error;
  if (error instanceof LabtestError) error.problems.push(leftover);
  // Formatted as every problem is: a summary-less error's message is its problems' lines.
  error.message += new LabtestError("", [leftover]).message;
  return error;
}
