import { LabtestError } from "../errors.js";

/** State that cannot be configured, reached or read: names the file, key or store and a fix. */
export class StateError extends LabtestError {
  constructor(what: string, fix?: string, options: { cause?: unknown } = {}) {
    super(fix ? `${what}\n  fix: ${fix}` : what, [], options);
  }
}
