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
