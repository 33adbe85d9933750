// The forced command of the laboratory's SSH keys, `labtest serve --stdio --identity NAME` (keys.ts
// writes it into the laboratory user's authorized_keys): all that an SSH connection with such a key
// can do. SSH_ORIGINAL_COMMAND, what the client asked to run, decides:
//
// - `labtest request`: the HTTPS API's request protocol over the session's stdin and stdout.
//   The client writes ONE line, `{"kind": K, "request": {...}}\n`: K a kind of wire.ts's ROUTES,
//   the request as requestSchemas[K] describes it (`v` included, as an HTTPS body). It keeps its
//   stdin open while it waits: closing it (a hang-up, Ctrl-C) aborts the operation's signal, which
//   ends what only watches (logs --follow, exec) as a closed HTTPS connection does; an operation
//   that changes the laboratory runs to its end. The answer, for every kind, streamed over HTTPS or
//   not, is NDJSON StreamLines on stdout: `{"event": …}` as they come, then exactly one
//   `{"result": …}` (a void answer is {}) or `{"error": WireError}` — refusals (unknown key, scope,
//   app, a malformed line) included. Then the command exits: 0 after a result, the error's exitCode
//   after an error. Nothing else is ever written to stdout; stderr stays empty.
// - `git-upload-pack '<app>.git'` / `git-receive-pack '<app>.git'`: git-access.ts's serveGitCommand.
// - nothing (an interactive `ssh lab`) or anything else: refused with a message on stderr, exit 1.
//   There is no shell, and `restrict` in the key's line refuses forwardings and a pty.
import type { Readable, Writable } from "node:stream";
import { LabtestError, UsageError } from "../errors.js";
import type { AuditSink, Identity } from "../laboratory/identity.js";
import type { Laboratory } from "../laboratory/laboratory.js";
import {
  BODY_LIMIT,
  type RequestKind,
  ROUTES,
  type Route,
  type StreamLine,
  type WireError,
} from "../laboratory/wire.js";
import { answerError, answerLines } from "./answers.js";
import { auditedLaboratory } from "./audit.js";
import { sshOrigin } from "./hook-contract.js";

/** SSH_ORIGINAL_COMMAND of the request protocol. */
export const REQUEST_COMMAND = "labtest request";

export interface StdioOptions {
  /** SSH_ORIGINAL_COMMAND, SSH_CLIENT and the rest of the session's environment. */
  env: NodeJS.ProcessEnv;
  /** The laboratory's home (its code repositories, for git). */
  home: string;
  /** The key's name, from the forced command's --identity. */
  keyName: string;
  /** Who the key is; throws an AuthenticationError for a key the laboratory no longer has. */
  identify: (keyName: string) => Identity;
  /**
   * The laboratory the requests run on, made (and its modules loaded) only for a request; whoever
   * gives it closes it (the forced command its own, the daemon its long-lived one).
   */
  laboratory: () => Laboratory | Promise<Laboratory>;
  audit: AuditSink;
  input: Readable;
  output: Writable;
  /** Where refusals of anything but a request are said (the session's stderr). */
  stderr: (text: string) => void;
  /** The server stopping: a request that only reads ends at once, as over HTTPS; others run to their end. */
  stopping?: AbortSignal;
}

/** Serves one SSH session of a key; resolves to the exit code the session should end with. */
export async function serveStdio(options: StdioOptions): Promise<number> {
  const command = (options.env.SSH_ORIGINAL_COMMAND ?? "").trim();
  if (command === REQUEST_COMMAND) return serveRequest(options);
  if (/^git-(upload|receive)-pack\s/.test(command)) return serveGit(command, options);
  options.stderr(
    command === ""
      ? `labtest: this key may only speak labtest's protocol: use labtest with --lab ssh://… or git push, not an interactive ssh session\n`
      : `labtest: this key may only speak labtest's protocol (${REQUEST_COMMAND}) or git fetch and push of an app's repository, not: ${command.slice(0, 200)}\n`,
  );
  return 1;
}

async function serveGit(command: string, options: StdioOptions): Promise<number> {
  // git-access (execa, the code store) loads for a git command alone, not for every request.
  const { serveGitCommand } = await import("./git-access.js");
  try {
    return await serveGitCommand([command], options.identify(options.keyName), {
      home: options.home,
      env: options.env,
      audit: options.audit,
    });
  } catch (error) {
    if (!(error instanceof LabtestError)) throw error;
    options.stderr(`labtest: ${error.message}\n`);
    return error.exitCode;
  }
}

/** Reads the request line, runs it as the key's identity, writes the answer's lines. */
async function serveRequest(options: StdioOptions): Promise<number> {
  const { input, output } = options;
  const hungUp = new AbortController();
  const hangUp = () => hungUp.abort();
  let final: WireError | undefined;
  // A client gone before the answer ends makes writes fail (EPIPE): the operation still ends properly.
  output.on("error", hangUp);
  const write = (line: StreamLine) => {
    if ("error" in line) final = line.error;
    output.write(`${JSON.stringify(line)}\n`);
  };
  try {
    const { kind, request } = parseLine(await requestLine(input));
    if (input.readableEnded) hungUp.abort();
    input.on("end", hangUp);
    input.on("close", hangUp);
    input.resume();
    if (ROUTES[kind].scope === "read") {
      if (options.stopping?.aborted) hangUp();
      options.stopping?.addEventListener("abort", hangUp);
    }
    const identity = options.identify(options.keyName);
    const lab = await options.laboratory();
    const audited = auditedLaboratory(lab, identity, options.audit, sshOrigin(options.env));
    // The audited laboratory checks the request against its kind's schema before anything reads it.
    const run = ROUTES[kind].run as Route<RequestKind>["run"];
    await answerLines((events) => run(audited, request as never, events, hungUp.signal), write);
  } catch (error) {
    write({ error: answerError(error) });
  } finally {
    options.stopping?.removeEventListener("abort", hangUp);
    // The answer is flushed before the input goes: input and output may be one socket (the daemon's).
    await new Promise<void>((resolve) => output.end(resolve));
    input.destroy();
  }
  return final?.exitCode ?? 0;
}

/** The request the line holds; a UsageError for a line that is not `{"kind", "request"}` of a known kind. */
function parseLine(line: string): { kind: RequestKind; request: unknown } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (error) {
    throw malformed(`it is not JSON (${(error as Error).message})`);
  }
  const { kind, request } = (parsed ?? {}) as { kind?: unknown; request?: unknown };
  if (typeof kind !== "string" || !Object.hasOwn(ROUTES, kind))
    throw malformed(`${JSON.stringify(kind) ?? "no kind"} is not a request kind of this laboratory`);
  const limit = ROUTES[kind as RequestKind].bodyLimit ?? BODY_LIMIT;
  if (Buffer.byteLength(line) > limit) throw malformed(`a ${kind} request is ${limit} bytes at most`);
  return { kind: kind as RequestKind, request };
}

function malformed(what: string): UsageError {
  return new UsageError("the laboratory cannot take this request", [
    {
      where: "the request line",
      what,
      fix: `send one line {"kind": K, "request": {...}} with a labtest of the laboratory's version`,
    },
  ]);
}

/** The largest line any kind may send: a code bundle's, else the server's body limit. */
const LINE_LIMIT = Math.max(BODY_LIMIT, ...Object.values(ROUTES).map((route) => route.bodyLimit ?? 0));

/** The first line of `input`, without its newline (or all of it, when it ends first). */
function requestLine(input: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const done = (settle: () => void) => {
      input.off("data", onData);
      input.off("end", onEnd);
      input.off("error", reject);
      input.pause();
      settle();
    };
    const onData = (chunk: Buffer) => {
      const newline = chunk.indexOf(10);
      chunks.push(newline === -1 ? chunk : chunk.subarray(0, newline));
      length += chunk.length;
      if (newline !== -1) done(() => resolve(Buffer.concat(chunks).toString("utf8")));
      else if (length > LINE_LIMIT)
        done(() => reject(malformed(`it is longer than ${LINE_LIMIT} bytes, the most any request may be`)));
    };
    const onEnd = () =>
      done(() =>
        length === 0
          ? reject(malformed("stdin closed before a request came"))
          : resolve(Buffer.concat(chunks).toString("utf8")),
      );
    input.on("data", onData);
    input.on("end", onEnd);
    input.on("error", reject);
  });
}
