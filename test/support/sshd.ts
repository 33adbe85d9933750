import { randomBytes } from "node:crypto";
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { execa, type Options, type ResultPromise } from "execa";
import { onTestFinished } from "vitest";

/** `labtest` as the laboratory user's forced command runs it: the built CLI (run `npm run build` first). */
export const LABTEST_JS = resolve("bin/labtest.js");

/** A client of the test sshd: a key pair of its own and an ssh configuration that uses only it. */
export interface SshClient {
  /** The private key's file; `${key}.pub` is its public half. */
  key: string;
  publicKey: string;
  /** The `ssh -F` file: Host `lab` (see TestSshd.alias) reaches the test sshd with this key. */
  config: string;
  /**
   * Environment for a client of the laboratory: LABTEST_SSH_CONFIG (the labtest client's `-F`)
   * and GIT_SSH_COMMAND (git's), over the caller's environment.
   */
  env: NodeJS.ProcessEnv;
}

/** Takes what to undo when the user of the sshd is done: vitest's onTestFinished in a test, a bench's own list outside one. */
export type CleanupRegistrar = (cleanup: () => Promise<void>) => void;

/** Who runs a client, when not root: ssh reads only a private key of the user running it. */
export interface ClientOwner {
  uid: number;
  gid: number;
}

/** The laboratory user: in the docker group, a home of its own under /home. */
export interface LabUser extends ClientOwner {
  name: string;
  home: string;
}

export interface TestSshd {
  port: number;
  /** The host alias the clients' configurations define: `ssh -F client.config lab …`. */
  alias: string;
  /** The laboratory user sshd logs the clients in as. */
  user: LabUser;
  /** Its `authorized_keys`, the file sshd reads (AuthorizedKeysFile). */
  authorizedKeys: string;
  /** The laboratory user's labtest home (its default: ~/.local/share/labtest). */
  labtestHome: string;
  /** What sshd logged (-e): a refused key, a refused forwarding. */
  log(): string;
  /** A new client key pair (ed25519, no passphrase) with its own ssh configuration; run by root unless `owner` says. */
  client(name: string, owner?: ClientOwner): Promise<SshClient>;
  /** `ssh -F client.config <args>` (BatchMode: never a prompt); never rejects, the result says. */
  ssh<O extends Options = Options>(client: SshClient, args: string[], options?: O): ResultPromise<O>;
  /** `node bin/labtest.js <argv>` as the laboratory user, in a login-like environment of its own. */
  labtestAsLabUser(argv: string[], options?: Options): ResultPromise;
}

const SSHD = "/usr/sbin/sshd";
/** The privilege separation directory Debian's sshd insists on (a package start would make it). */
const PRIVSEP_DIR = "/run/sshd";

/**
 * A real sshd (Debian's openssh-server) on 127.0.0.1 at a free port, with its own host key and
 * configuration (public keys only, no PAM, StrictModes on), logging in a dedicated laboratory user
 * made for this test; and a way to make clients that trust exactly that host key. Needs root.
 * Everything it starts is stopped by pid, and the user (with its home and every process it still
 * runs) removed, through `onCleanup` (by default when the test ends, pass or fail).
 */
export async function startTestSshd(onCleanup: CleanupRegistrar = onTestFinished): Promise<TestSshd> {
  if (process.getuid?.() !== 0) throw new Error("the test sshd needs root (it makes a user and runs sshd)");
  const scratch = await mkdtemp(join(tmpdir(), "labtest-sshd-"));
  onCleanup(() => rm(scratch, { recursive: true, force: true }));
  const user = await labUser(onCleanup);
  const hostKey = join(scratch, "ssh_host_ed25519_key");
  await keygen(hostKey, "labtest test sshd");
  const port = await freePort();
  const config = join(scratch, "sshd_config");
  await writeFile(
    config,
    [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${hostKey}`,
      `PidFile ${join(scratch, "sshd.pid")}`,
      "UsePAM no",
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PubkeyAuthentication yes",
      // The laboratory user's own file, as a real laboratory's sshd reads it; StrictModes checks its modes.
      "AuthorizedKeysFile .ssh/authorized_keys",
      "StrictModes yes",
      `AllowUsers ${user.name}`,
      "PermitRootLogin no",
      "LogLevel VERBOSE",
      "",
    ].join("\n"),
  );
  await mkdir(PRIVSEP_DIR, { recursive: true, mode: 0o755 });
  const daemon = execa(SSHD, ["-D", "-e", "-f", config], { reject: false, stdin: "ignore", all: true });
  let log = "";
  daemon.all?.on("data", (chunk: Buffer) => {
    log += chunk.toString();
  });
  onCleanup(async () => {
    daemon.kill("SIGTERM");
    await daemon;
  });
  await listening(daemon, () => log, port);

  const hostPublic = (await readFile(`${hostKey}.pub`, "utf8")).trim().split(" ").slice(0, 2).join(" ");
  const knownHosts = join(scratch, "known_hosts");
  await writeFile(knownHosts, `[127.0.0.1]:${port} ${hostPublic}\n`);
  const alias = "lab";
  const clients = join(scratch, "clients");
  await mkdir(clients, { mode: 0o700 });

  return {
    port,
    alias,
    user,
    authorizedKeys: join(user.home, ".ssh", "authorized_keys"),
    labtestHome: join(user.home, ".local", "share", "labtest"),
    log: () => log,
    async client(name, owner) {
      const key = join(clients, name);
      await keygen(key, `${name}@laptop`);
      if (owner) {
        await chown(key, owner.uid, owner.gid);
        // The owner reaches its files by name (the host's private key stays root's alone, 0600).
        await chmod(scratch, 0o711);
        await chmod(clients, 0o711);
      }
      const clientConfig = `${key}.config`;
      await writeFile(
        clientConfig,
        [
          `Host ${alias}`,
          "  HostName 127.0.0.1",
          `  Port ${port}`,
          `  User ${user.name}`,
          `  IdentityFile ${key}`,
          "  IdentitiesOnly yes",
          "  IdentityAgent none",
          `  UserKnownHostsFile ${knownHosts}`,
          "  GlobalKnownHostsFile /dev/null",
          "  StrictHostKeyChecking yes",
          "  BatchMode yes",
          "",
        ].join("\n"),
      );
      return {
        key,
        publicKey: (await readFile(`${key}.pub`, "utf8")).trim(),
        config: clientConfig,
        env: {
          ...process.env,
          LABTEST_SSH_CONFIG: clientConfig,
          GIT_SSH_COMMAND: `ssh -F ${clientConfig}`,
        },
      };
    },
    ssh: <O extends Options = Options>(client: SshClient, args: string[], options?: O) =>
      execa("ssh", ["-F", client.config, ...args], {
        reject: false,
        ...options,
      }) as unknown as ResultPromise<O>,
    labtestAsLabUser: (argv, options = {}) =>
      execa(
        "runuser",
        [
          "-u",
          user.name,
          "--",
          "env",
          "-i",
          `HOME=${user.home}`,
          `USER=${user.name}`,
          `LOGNAME=${user.name}`,
          `PATH=${process.env.PATH ?? "/usr/bin:/bin"}`,
          process.execPath,
          LABTEST_JS,
          ...argv,
        ],
        { reject: false, ...options },
      ),
  };
}

/**
 * A laboratory user of this test: a login shell (sshd runs the forced command through it), a
 * home under /home (StrictModes refuses a file under the world-writable /tmp), the docker group,
 * and an unlocked password field (sshd without PAM refuses a locked account, even for a key).
 */
async function labUser(onCleanup: CleanupRegistrar): Promise<LabUser> {
  const name = `labtest-lab-${randomBytes(4).toString("hex")}`;
  const home = join("/home", name);
  await execa("useradd", [
    "--create-home",
    "--home-dir",
    home,
    "--shell",
    "/bin/bash",
    "--groups",
    "docker",
    "--",
    name,
  ]);
  onCleanup(() => removeLabUser(name));
  await execa("usermod", ["--password", "*", "--", name]);
  const id = async (which: "-u" | "-g") => Number((await execa("id", [which, "--", name])).stdout);
  return { name, home, uid: await id("-u"), gid: await id("-g") };
}

/** Stops, by pid, what the user still runs (a session, a router labtest started), then removes it and its home. */
async function removeLabUser(name: string): Promise<void> {
  const { stdout } = await execa("ps", ["-o", "pid=", "-u", name], { reject: false });
  for (const pid of stdout.split("\n").map(Number).filter(Boolean)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  await execa("userdel", ["--remove", "--force", "--", name], { reject: false });
}

async function keygen(file: string, comment: string): Promise<void> {
  await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file]);
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

/** Waits until sshd says it listens on `port` (10 s at most), or fails with what it logged. */
async function listening(daemon: ResultPromise, log: () => string, port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!log().includes(`Server listening on 127.0.0.1 port ${port}`)) {
    if (daemon.exitCode !== null || Date.now() > deadline)
      throw new Error(`the test sshd did not start listening on port ${port}:\n${log()}`);
    await new Promise((resolveWait) => setTimeout(resolveWait, 50));
  }
}
