import { mkdir, readFile, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import writeFileAtomic from "write-file-atomic";
import { maskSecrets } from "../secrets/index.js";

/**
 * The output of an experiment's last failed create, kept after the experiment is removed so that
 * `labtest logs NAME` still shows what went wrong. Secrets this process revealed are masked
 * before it is written: nothing reveals them again when it is read.
 */
export class FailedOutputs {
  constructor(private readonly home: string) {}

  /** Keeps `output` of the create of `app`/`name` that failed with `error`. */
  async keep(app: string, name: string, error: unknown, output: string): Promise<void> {
    const file = this.file(app, name);
    const message = String((error as Error)?.message ?? error);
    const header = `# labtest: the create of ${app}/${name} failed at ${new Date().toISOString()}: ${message.split("\n")[0]}\n`;
    // A container is removed with its output; the error then holds what it printed.
    const body = output.trim() ? output : `${message}\n`;
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    await writeFileAtomic(file, maskSecrets(`${header}${body}`), { mode: 0o600 });
  }

  /** The kept output, if the last create of `app`/`name` failed. */
  read(app: string, name: string): Promise<string | undefined> {
    return readFile(this.file(app, name), "utf8").catch(() => undefined);
  }

  forget(app: string, name: string): Promise<void> {
    return rm(this.file(app, name), { force: true });
  }

  private file(app: string, name: string): string {
    return join(this.home, "failed", app, `${name}.log`);
  }
}
