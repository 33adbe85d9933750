import { appendFile, mkdir, readdir, readFile, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import writeFileAtomic from "write-file-atomic";
import { maskSecrets } from "../secrets/index.js";
import { ExperimentError } from "./errors.js";

// What `labtest logs` shows besides what the app prints now, kept where labtest would otherwise
// lose it. Secrets this process revealed are masked before it is written: nothing reveals them
// again when it is read.

/**
 * The output of an experiment's last failed create, kept after the experiment is removed so that
 * `labtest logs NAME` still shows what went wrong.
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

/**
 * The output of an experiment's releases that their app's own output does not hold: what
 * before_start_command (and app_build_command) printed, and the last output of an app whose
 * container labtest replaced. A file per release (named as its checkout, so in the order they
 * were made), a section per step, headed with the release.
 */
export class ReleaseOutputs {
  /** `directory`: the experiment's folder for them. */
  constructor(private readonly directory: string) {}

  /** Appends `output` to what is kept of the release checked out at `checkout`, under `section`. */
  async append(checkout: string, release: string, section: string, output: string): Promise<void> {
    await mkdir(this.directory, { recursive: true, mode: 0o700 });
    const heading = `# labtest: release ${release.slice(0, 12)}: ${section}, at ${new Date().toISOString()}\n`;
    const body = output && !output.endsWith("\n") ? `${output}\n` : output;
    await appendFile(this.file(checkout), maskSecrets(`${heading}${body}`), { mode: 0o600 });
  }

  /** What is kept of the release checked out at `current` and the one before it, oldest first. */
  async read(current: string): Promise<string> {
    const kept = await this.kept(current);
    return (await Promise.all(kept.map((file) => readFile(file, "utf8").catch(() => "")))).join("");
  }

  /** Forgets every release but the one checked out at `current` and the one before it (newer ones never ran). */
  async prune(current: string): Promise<void> {
    const kept = new Set(await this.kept(current));
    for (const file of await this.files()) if (!kept.has(file)) await rm(file, { force: true });
  }

  private async kept(current: string): Promise<string[]> {
    return (await this.files()).filter((file) => file <= this.file(current)).slice(-2);
  }

  private async files(): Promise<string[]> {
    const names = await readdir(this.directory).catch(() => [] as string[]);
    return names.sort().map((name) => join(this.directory, name));
  }

  private file(checkout: string): string {
    return join(this.directory, `${basename(checkout)}.log`);
  }
}

/** The running app's own output is gone (`gone` says why); `kept` is what labtest kept of it. */
export class OutputGoneError extends ExperimentError {
  constructor(
    readonly kept: string,
    gone: ExperimentError,
  ) {
    super(gone.message.split("\n")[0] ?? "", gone.problems, { cause: gone });
  }
}
