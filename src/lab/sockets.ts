import { readdir, readFile, readlink } from "node:fs/promises";

/** /proc/net/tcp's state column for a listening socket. */
const LISTEN = "0A";

/**
 * The TCP ports listened on in the network namespace of `netnsPid`; with `owners`, only by
 * sockets those processes hold (an app among all of the host's listeners).
 */
export async function listeningPorts(netnsPid: number, owners?: readonly number[]): Promise<number[]> {
  const listeners = new Map<string, number>();
  for (const table of ["tcp", "tcp6"]) {
    const text = await readFile(`/proc/${netnsPid}/net/${table}`, "utf8").catch(() => "");
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      const [, local, , state, , , , , , inode] = fields;
      if (state !== LISTEN || !local || !inode) continue;
      listeners.set(inode, Number.parseInt(local.split(":").pop() ?? "", 16));
    }
  }
  const held = owners ? await socketInodes(owners) : undefined;
  const ports = [...listeners].filter(([inode]) => !held || held.has(inode)).map(([, port]) => port);
  return [...new Set(ports)].sort((a, b) => a - b);
}

/** The inodes of the sockets the processes hold open. */
async function socketInodes(pids: readonly number[]): Promise<Set<string>> {
  const inodes = new Set<string>();
  for (const pid of pids)
    for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode) inodes.add(inode);
    }
  return inodes;
}
