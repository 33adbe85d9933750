import { LabtestError, type Problem } from "../errors.js";

/** A service that cannot be provisioned, reached or removed as asked. */
export class ProvisionError extends LabtestError {
  constructor(summary: string, problems: Problem[] = [], options: { cause?: unknown } = {}) {
    super(summary, problems, options);
  }
}
