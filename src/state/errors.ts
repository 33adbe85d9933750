import { LabtestError } from "../errors.js";

/** State that cannot be configured, reached or read: names the file, key or store and a fix. */
export class StateError extends LabtestError {
  constructor(what: string, fix?: string, options: { cause?: unknown; where?: string } = {}) {
    const { where = "state", cause } = options;
    super(what, [{ where, what, ...(fix ? { fix } : {}) }], { cause });
    // `what` names the file, key or store already: the message reads best as it and its fix.
    this.message = fix ? `${what}\n  fix: ${fix}` : what;
  }
}
