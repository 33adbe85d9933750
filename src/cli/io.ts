import { openSync } from "node:fs";
import { createInterface } from "node:readline/promises";
import { Writable } from "node:stream";
import { text } from "node:stream/consumers";
import { StringDecoder } from "node:string_decoder";
import { ReadStream, WriteStream } from "node:tty";
import { Option } from "commander";
import { maskingStream, maskSecrets } from "../secrets/mask.js";

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
  /** All of standard input, for values that must stay out of the command line (`-`). */
  readStdin: () => Promise<string>;
  /**
   * Asks the user at the terminal and returns the answer (the terminal, not standard input,
   * which may carry a token); undefined when there is no terminal to ask at.
   */
  askTerminal?: (question: string) => Promise<string | undefined>;
}

export function processIo(): CliIo {
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    cwd: process.cwd(),
    env: process.env,
    isTTY: Boolean(process.stdout.isTTY),
    readStdin: () => text(process.stdin),
    askTerminal,
  };
}

/** Asks at the controlling terminal (/dev/tty), as ssh asks whether to trust a host. */
async function askTerminal(question: string): Promise<string | undefined> {
  let input: ReadStream;
  let output: WriteStream;
  try {
    input = new ReadStream(openSync("/dev/tty", "r"));
    output = new WriteStream(openSync("/dev/tty", "w"));
  } catch {
    return undefined;
  }
  const terminal = createInterface({ input, output });
  try {
    return await terminal.question(question);
  } finally {
    // The streams own their descriptors and close them as they go.
    terminal.close();
    input.destroy();
    output.destroy();
  }
}

/**
 * Where a command writes, with every secret this process revealed masked: a secret may come
 * back in a failing command's output or an error message. `exitCode` is shared with `io`.
 */
export function maskedIo(io: CliIo): CliIo {
  return Object.create(io, {
    stdout: { value: (text: string) => io.stdout(maskSecrets(text)) },
    stderr: { value: (text: string) => io.stderr(maskSecrets(text)) },
    exitCode: {
      get: () => io.exitCode,
      set: (code: number | undefined) => {
        io.exitCode = code;
      },
    },
  }) as CliIo;
}

/** Writers for what comes in pieces: a child's output, a log followed as it grows. */
export interface StreamedOutput {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/**
 * Runs `use` with writers to `io` that mask a secret even when it comes cut across writes; what
 * they hold back, because it may begin a secret, is written when `use` ends.
 */
export async function withStreamedOutput<T>(
  io: CliIo,
  use: (output: StreamedOutput) => Promise<T>,
): Promise<T> {
  const stdout = maskingStream(io.stdout);
  const stderr = maskingStream(io.stderr);
  try {
    return await use({ stdout: stdout.write, stderr: stderr.write });
  } finally {
    stdout.end();
    stderr.end();
  }
}

/** A stream that writes through `write` (a child's output, for instance, masked like the rest). */
export function writerStream(write: (text: string) => void): Writable {
  // A character may be cut between chunks: decoding each alone would mangle it.
  const decoder = new StringDecoder("utf8");
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      write(decoder.write(chunk));
      done();
    },
    final(done) {
      write(decoder.end());
      done();
    },
  });
}

/** Options every command accepts. */
export interface GlobalOptions {
  config?: string;
  json?: boolean;
  lab?: string;
}

/**
 * `--lab`: the laboratory to talk to, over LABTEST_HOST and the configuration's `host`. Not
 * `--host`: global options are read anywhere on the command line, and `services env --host`
 * has long meant host-reachable addresses.
 */
export function labOption(): Option {
  return new Option(
    "-L, --lab <address>",
    "the laboratory to talk to: https://lab.example.com[:port] (after labtest login) or local; default: LABTEST_HOST, else the configuration's host, else this machine",
  );
}

/** Writes a value as the machine-readable output of a `--json` command. */
export function writeJson(io: CliIo, value: unknown): void {
  io.stdout(`${JSON.stringify(value, null, 2)}\n`);
}
