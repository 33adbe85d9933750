// The daemon's side of the SSH keys' forced command: `labtest serve` answers the request protocol
// (stdio.ts) on a unix socket of its home, so that the forced command only relays (relay.ts) and
// no request pays for loading labtest. The socket is in a directory of mode 0700 owned by the
// laboratory user: only that user (whom sshd runs the forced command as) can connect. A connection
// starts with one preamble line, `{"key": NAME, "command": SSH_ORIGINAL_COMMAND, "client":
// SSH_CLIENT}`, then carries the session's bytes. Nothing in it is trusted beyond the key's name,
// which is looked up in ssh-keys.db for every session as the forced command does.

import { once } from "node:events";
import { lstatSync, mkdirSync } from "node:fs";
import { chmod, rm } from "node:fs/promises";
import { connect, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { UsageError } from "../errors.js";
import type { AuditSink, Identity } from "../laboratory/identity.js";
import type { Laboratory } from "../laboratory/laboratory.js";
import { wireError } from "../laboratory/wire.js";
import { REQUESTS_SOCKET } from "./relay.js";
import { REQUEST_COMMAND, serveStdio } from "./stdio.js";

/** The longest preamble a relay sends: a key name, a command and an address are far shorter. */
const PREAMBLE_LIMIT = 4096;

export interface RequestsSocketOptions {
  home: string;
  /** The daemon's environment; the session's SSH_ORIGINAL_COMMAND and SSH_CLIENT join it. */
  env: NodeJS.ProcessEnv;
  laboratory: Laboratory;
  /** Who a key is, from ssh-keys.db; throws an AuthenticationError for a key it no longer has. */
  identify: (keyName: string) => Identity;
  audit: AuditSink;
  /** Where one line per session goes. */
  log: (line: string) => void;
}

export interface RequestsSocket {
  path: string;
  /** Stops taking sessions and waits for those open, `graceMs` at most (then cuts them); removes the socket. */
  close(graceMs: number): Promise<void>;
}

/** `<home>/run/requests.sock`. */
export function requestsSocketPath(home: string): string {
  return join(home, ...REQUESTS_SOCKET);
}

/** Listens on the home's requests socket, serving each connection as one SSH session. */
export async function listenForRequests(options: RequestsSocketOptions): Promise<RequestsSocket> {
  const path = requestsSocketPath(options.home);
  await privateDirectory(join(path, ".."));
  await removeStale(path);
  const sessions = new Map<Socket, Promise<void>>();
  const stopping = new AbortController();
  // Half-open: the relay's end of input is a hang-up, and the answer must still be written after it.
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    const session = serveSession(socket, options, stopping.signal).finally(() => sessions.delete(socket));
    sessions.set(socket, session);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => {
      server.off("error", reject);
      resolve();
    });
  });
  let closing: Promise<void> | undefined;
  const close = async (graceMs: number) => {
    const closed = new Promise((resolve) => server.close(resolve));
    stopping.abort();
    let cut: NodeJS.Timeout | undefined;
    const graceOver = new Promise<void>((resolve) => {
      cut = setTimeout(resolve, graceMs);
    });
    await Promise.race([Promise.allSettled(sessions.values()), graceOver]);
    clearTimeout(cut);
    // Cut sessions abort their operation as a hang-up does.
    for (const socket of sessions.keys()) socket.destroy();
    await Promise.allSettled(sessions.values());
    await closed;
    await rm(path, { force: true });
  };
  // Closed once: a second close (serve's cleanup after its graceful stop) waits for the first.
  return { path, close: (graceMs) => (closing ??= close(graceMs)) };
}

/** Makes `dir` a directory of the laboratory user's that no one else may enter; refuses another's. */
async function privateDirectory(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const made = lstatSync(dir);
  if (!made.isDirectory() || made.uid !== process.getuid?.())
    throw new UsageError(`${dir} is not a directory of this user's`, [
      {
        where: dir,
        what: made.isDirectory() ? `owned by uid ${made.uid}` : "not a directory",
        fix: "remove it: labtest serve makes it again, for its requests' socket",
      },
    ]);
  await chmod(dir, 0o700);
}

/** Removes a socket left by a serve that did not stop cleanly; refuses when a serve answers on it. */
async function removeStale(path: string): Promise<void> {
  const answered = await new Promise<boolean>((resolve) => {
    const probe = connect(path, () => {
      probe.destroy();
      resolve(true);
    });
    probe.on("error", () => resolve(false));
  });
  if (answered)
    throw new UsageError("another labtest serve is running on this laboratory", [
      { where: path, what: "answers", fix: "stop it first: one serve per laboratory home" },
    ]);
  await rm(path, { force: true });
}

/** One connection: its preamble, then the request protocol on the rest of its bytes. */
async function serveSession(socket: Socket, options: RequestsSocketOptions, stopping: AbortSignal) {
  const started = Date.now();
  socket.on("error", () => undefined);
  let preamble: Preamble;
  try {
    preamble = parsePreamble(await preambleLine(socket));
  } catch (error) {
    // Read to its end, so that the socket closes once the relay ends its side too.
    socket.resume();
    socket.end(`${JSON.stringify({ error: wireError(error) })}\n`);
    await once(socket, "close");
    return;
  }
  const exitCode = await serveStdio({
    env: { ...options.env, SSH_ORIGINAL_COMMAND: preamble.command, SSH_CLIENT: preamble.client },
    home: options.home,
    keyName: preamble.key,
    identify: options.identify,
    laboratory: () => options.laboratory,
    audit: options.audit,
    input: socket,
    output: socket,
    stderr: () => undefined,
    stopping,
  });
  const address = preamble.client.split(" ")[0] || "-";
  options.log(
    `ssh ${address} ${preamble.key} ${REQUEST_COMMAND}: exit ${exitCode} ${Date.now() - started}ms`,
  );
}

interface Preamble {
  key: string;
  command: string;
  client: string;
}

/** The preamble a relay sends; a UsageError for anything else, or for another command than a request. */
function parsePreamble(line: string): Preamble {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    parsed = undefined;
  }
  const { key, command, client } = (parsed ?? {}) as Record<string, unknown>;
  if (typeof key !== "string" || typeof command !== "string" || typeof client !== "string")
    throw refused('it is not {"key", "command", "client"}, three strings');
  if (command.trim() !== REQUEST_COMMAND)
    throw refused(`the socket serves ${REQUEST_COMMAND} alone, not ${command.slice(0, 200)}`);
  return { key, command, client };
}

function refused(what: string): UsageError {
  return new UsageError("labtest serve cannot take this session", [
    { where: "the relay's preamble", what, fix: "let the forced command of a key relay (bin/labtest.js)" },
  ]);
}

/** The first line of `socket`, leaving what follows it unread on the socket. */
function preambleLine(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let pending = Buffer.alloc(0);
    const done = (settle: () => void) => {
      socket.off("readable", onReadable);
      socket.off("end", onEnd);
      settle();
    };
    const onReadable = () => {
      for (let chunk: Buffer | null = socket.read(); chunk !== null; chunk = socket.read()) {
        pending = Buffer.concat([pending, chunk]);
        const newline = pending.indexOf(10);
        if (newline !== -1) {
          const rest = pending.subarray(newline + 1);
          if (rest.length > 0) socket.unshift(rest);
          done(() => resolve(pending.subarray(0, newline).toString("utf8")));
          return;
        }
        if (pending.length > PREAMBLE_LIMIT)
          return done(() => reject(refused(`it is longer than ${PREAMBLE_LIMIT} bytes`)));
      }
    };
    const onEnd = () => done(() => reject(refused("the connection ended before a preamble came")));
    socket.on("readable", onReadable);
    socket.on("end", onEnd);
  });
}
