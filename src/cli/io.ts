/** Where a command writes, and what it runs in: the process by default, buffers in tests. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Whether stdout is a terminal: progress and colour only then. */
  isTTY: boolean;
  /** Set by a command that completed but reports a negative answer (e.g. a value not found). */
  exitCode?: number;
}

export function processIo(): CliIo {
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    cwd: process.cwd(),
    env: process.env,
    isTTY: Boolean(process.stdout.isTTY),
  };
}

/** Options every command accepts. */
export interface GlobalOptions {
  config?: string;
  json?: boolean;
}

/** Writes a value as the machine-readable output of a `--json` command. */
export function writeJson(io: CliIo, value: unknown): void {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}
