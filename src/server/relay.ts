// The forced command's fast path: when `labtest serve` runs on the laboratory, a request of an SSH
// key is relayed to it over its home's unix socket (requests-socket.ts) instead of loading all of
// labtest for one request. bin/labtest.js runs this before it imports anything else, so it imports
// `node:` modules alone. Without a daemon (nothing answers on the socket) the forced command runs
// in its own process, as it always did.
import { connect, type Socket } from "node:net";
import { join } from "node:path";

/** Where in the laboratory's home the daemon listens for relayed sessions. */
export const REQUESTS_SOCKET = ["run", "requests.sock"] as const;

/** Of stdio.ts, which this module may not import: SSH_ORIGINAL_COMMAND of the request protocol. */
const REQUEST_COMMAND = "labtest request";

/**
 * Relays the SSH session to the home's `labtest serve` when `argv` is a key's forced command
 * (`serve --stdio --home H --identity NAME`, in any order) asked for a request and the daemon
 * answers; resolves to the session's exit code, or undefined when the command must run here.
 */
export async function relayedSession(argv: string[], env: NodeJS.ProcessEnv): Promise<number | undefined> {
  const forced = forcedCommand(argv);
  if (!forced || (env.SSH_ORIGINAL_COMMAND ?? "").trim() !== REQUEST_COMMAND) return undefined;
  const socket = await connected(join(forced.home, ...REQUESTS_SOCKET));
  if (!socket) return undefined;
  socket.write(
    `${JSON.stringify({ key: forced.identity, command: REQUEST_COMMAND, client: env.SSH_CLIENT ?? "" })}\n`,
  );
  return relay(socket);
}

/** The home and key of the forced command's argv; undefined for any other command line. */
function forcedCommand(argv: string[]): { home: string; identity: string } | undefined {
  if (argv[0] !== "serve") return undefined;
  const given = new Map<string, string>();
  for (let index = 1; index < argv.length; index++) {
    const option = argv[index] as string;
    if (given.has(option)) return undefined;
    if (option === "--stdio") given.set(option, "");
    else if (option === "--home" || option === "--identity") given.set(option, argv[++index] ?? "");
    else return undefined;
  }
  const home = given.get("--home");
  const identity = given.get("--identity");
  return given.has("--stdio") && home && identity ? { home, identity } : undefined;
}

/** A connection to the daemon's socket; undefined when no daemon answers there. */
function connected(path: string): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    // Half-open: after stdin's end (a hang-up) the answer still comes.
    const socket = connect({ path, allowHalfOpen: true });
    socket.once("connect", () => {
      socket.off("error", refused);
      resolve(socket);
    });
    const refused = () => resolve(undefined);
    socket.once("error", refused);
  });
}

/**
 * stdin to the daemon (its end, a hang-up, half-closes the socket), the daemon's answer to stdout;
 * resolves to the exit code the answer's last line gives, as the in-process session would exit.
 */
function relay(socket: Socket): Promise<number> {
  return new Promise((resolve) => {
    let lastLine = "";
    let pending = "";
    process.stdin.pipe(socket);
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      process.stdout.write(chunk);
      const lines = (pending + chunk).split("\n");
      pending = lines.pop() ?? "";
      lastLine = lines.at(-1) ?? lastLine;
    });
    let done = false;
    // An answer that ended on its last line is whole, even when the connection then breaks.
    const ended = (why: string) => {
      if (done) return;
      done = true;
      process.stdin.unpipe(socket);
      process.stdin.destroy();
      socket.destroy();
      resolve((pending === "" ? answeredExitCode(lastLine) : undefined) ?? daemonGone(why));
    };
    socket.on("end", () => ended("its answer ended before its last line"));
    socket.on("error", (error) => ended(error.message));
  });
}

/** 0 after a `{"result": …}` line, the error's exitCode after an `{"error": …}` line. */
function answeredExitCode(line: string): number | undefined {
  try {
    const last = JSON.parse(line) as { result?: unknown; error?: { exitCode?: unknown } };
    if ("result" in last) return 0;
    if (typeof last.error?.exitCode === "number") return last.error.exitCode;
  } catch {
    // Not a line of the protocol: the daemon was cut mid-answer.
  }
  return undefined;
}

function daemonGone(why: string): number {
  process.stderr.write(`labtest: the laboratory's labtest serve went away during the request (${why})\n`);
  return 1;
}
