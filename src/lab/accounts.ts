import { createHash } from "node:crypto";
import { chmod, chown, mkdir, readFile } from "node:fs/promises";
import { execa } from "execa";
import pRetry, { AbortError } from "p-retry";
import type { Sweep } from "./garbage.js";
import { processesOf, stopProcess } from "./processes.js";

/**
 * A system account of its own that an experiment's app (its build, migrations and `exec` too)
 * runs as, so that a branch's code can read its checkout and nothing else of the laboratory:
 * not the secrets' identity, not the records holding other experiments' credentials.
 */
export interface AppAccount {
  name: string;
  uid: number;
  gid: number;
  /** Its home directory (HOME), owned by it and no one else. */
  home: string;
}

/** Exit codes of useradd/userdel when another command holds /etc/passwd or /etc/group: try again. */
const LOCKED = [1, 10];

/** Comments of the accounts labtest makes start so: `labtest <laboratory> <app>/<experiment>`. */
const COMMENT_PREFIX = "labtest ";

/** Whether this laboratory can give apps accounts of their own: only root can switch users. */
export function separatesAccounts(): boolean {
  return process.getuid?.() === 0;
}

/**
 * The account of an experiment's app on the laboratory `laboratory` (a stable id, such as its
 * home's path), created with `home` as its home directory when missing. Its name is a hash: app
 * and experiment names may be longer than the 32 characters a user name may have.
 */
export async function ensureAppAccount(
  laboratory: string,
  experiment: { app: string; name: string },
  home: string,
): Promise<AppAccount> {
  const name = accountName(laboratory, experiment);
  let account = await findAccount(name);
  if (!account) {
    // A group left by an account removed half-way is taken over rather than refused.
    const group = (await entries("/etc/group")).some(([entry]) => entry === name)
      ? ["--gid", name]
      : ["--user-group"];
    await pRetry(
      async () => {
        const result = await execa(
          "useradd",
          [
            ...group,
            "--no-create-home",
            "--no-log-init",
            "--home-dir",
            home,
            "--shell",
            "/usr/sbin/nologin",
            "--comment",
            `${COMMENT_PREFIX}${laboratory} ${experiment.app}/${experiment.name}`,
            "--",
            name,
          ],
          { reject: false },
        );
        if (result.exitCode === 0 || (await findAccount(name))) return;
        const failure = new Error(`useradd ${name} failed: ${result.stderr.trim()}`);
        throw LOCKED.includes(result.exitCode ?? 0) ? failure : new AbortError(failure);
      },
      { retries: 20, minTimeout: 50, maxTimeout: 500 },
    );
    account = await findAccount(name);
    if (!account) throw new Error(`useradd made no account ${name}`);
  }
  await mkdir(home, { recursive: true, mode: 0o700 });
  await chown(home, account.uid, account.gid);
  await chmod(home, 0o700);
  return account;
}

/** Stops every process of the account (an app its supervisor lost included) and removes it. */
export async function removeAppAccount(laboratory: string, experiment: { app: string; name: string }) {
  const account = await findAccount(accountName(laboratory, experiment));
  if (account) await removeAccount(account);
}

/** Removes, through `sweep`, the accounts of `laboratory` whose experiment is not in `keep` (`app/experiment`). */
export async function sweepAppAccounts(
  laboratory: string,
  keep: ReadonlySet<string>,
  sweep: Sweep,
): Promise<void> {
  for (const [name, , uid, gid, comment, home] of await entries("/etc/passwd")) {
    const prefix = `${COMMENT_PREFIX}${laboratory} `;
    if (!name || !comment?.startsWith(prefix)) continue;
    const experiment = comment.slice(prefix.length);
    if (keep.has(experiment)) continue;
    await sweep.remove(`account ${name}`, `its experiment ${experiment} is gone`, () =>
      removeAccount({ name, uid: Number(uid), gid: Number(gid), home: home ?? "" }),
    );
  }
}

/** Chowns a directory tree (a checkout) to the account, without following its symbolic links. */
export async function handOver(directory: string, account: AppAccount): Promise<void> {
  await execa("chown", ["-R", "--no-dereference", `${account.uid}:${account.gid}`, "--", directory]);
}

function accountName(laboratory: string, experiment: { app: string; name: string }): string {
  const hash = createHash("sha256").update(`${laboratory}\0${experiment.app}\0${experiment.name}`);
  return `lt-${hash.digest("hex").slice(0, 12)}`;
}

/** The lines of a colon-separated account database (/etc/passwd, /etc/group), split into fields. */
async function entries(file: string): Promise<string[][]> {
  const text = await readFile(file, "utf8").catch(() => "");
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => line.split(":"));
}

async function findAccount(name: string): Promise<AppAccount | undefined> {
  const found = (await entries("/etc/passwd")).find(([entry]) => entry === name);
  if (!found) return undefined;
  const [, , uid, gid, , home] = found;
  return { name, uid: Number(uid), gid: Number(gid), home: home ?? "" };
}

async function removeAccount(account: AppAccount): Promise<void> {
  // userdel refuses an account that still runs something.
  for (let round = 0; round < 3; round++) {
    const pids = await processesOf(account.uid);
    if (pids.length === 0) break;
    await Promise.all(pids.map((pid) => stopProcess(pid, 5_000)));
  }
  await pRetry(
    async () => {
      const result = await execa("userdel", ["--", account.name], { reject: false });
      // 6: no such user (another command removed it meanwhile).
      if (result.exitCode === 0 || result.exitCode === 6) return;
      const failure = new Error(`userdel ${account.name} failed: ${result.stderr.trim()}`);
      throw [...LOCKED, 8].includes(result.exitCode ?? 0) ? failure : new AbortError(failure);
    },
    { retries: 20, minTimeout: 50, maxTimeout: 500 },
  );
}
