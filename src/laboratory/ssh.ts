import { type ChildProcess, spawn } from "node:child_process";
import { lstat, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { execa } from "execa";
import type { LaboratoryAddress } from "../config/host.js";
import { LabtestError, UsageError } from "../errors.js";
import { readAnswerStream } from "./answer-stream.js";
import { EXIT_REFUSED } from "./identity.js";
import { CONNECT_TIMEOUT_MS } from "./pinning.js";
import type { EventSink, Requests } from "./protocol.js";
import { type Answer, RemoteLaboratory } from "./remote.js";
import type { RequestKind } from "./wire.js";

/** Where a laboratory is reached over SSH: a host (or ssh-config alias), as `host` names it. */
export type SshAddress = Omit<Extract<LaboratoryAddress, { kind: "ssh" }>, "kind">;

/** What the laboratory's forced command (labtest serve --stdio) is asked to do: answer one request. */
export const REMOTE_COMMAND = ["labtest", "request"] as const;

/** ssh's exit status when ssh itself failed (connecting, the host key, authenticating), not the remote command. */
const SSH_FAILED = 255;

/** How much of ssh's standard error is kept to explain a failure. */
const STDERR_LIMIT = 4000;

/**
 * A laboratory across SSH, through the user's own `ssh` (LABTEST_SSH): their ~/.ssh/config,
 * agent, ProxyJump and known_hosts apply, and host keys are checked as their ssh checks them —
 * never more loosely. Each request is one ssh session running the laboratory's forced command:
 * the request as one JSON line on its standard input, its answer as StreamLines on its standard
 * output (wire.ts). A master connection per laboratory (ControlMaster, kept 60 s) makes the
 * sessions after the first cheap.
 */
export class SshLaboratory extends RemoteLaboratory {
  private readonly running = new Set<ChildProcess>();
  private readonly where: string;

  constructor(
    private readonly address: SshAddress,
    private readonly options: {
      env: NodeJS.ProcessEnv;
      /** Whether ssh may ask at the terminal (a passphrase, a new host key); otherwise BatchMode. */
      interactive: boolean;
    },
  ) {
    super();
    this.where = sshUrl(address);
  }

  async close(): Promise<void> {
    for (const child of this.running) child.kill();
  }

  /**
   * Delivers `commit` of the client's repository into the laboratory's repository of `app` with
   * git push, through the same ssh and master connection as the requests: git sends only what the
   * laboratory lacks. The ref is refs/labtest/<branch>, which the laboratory stores and nothing
   * more (git-access.ts); the create or update that follows says which commit to take.
   */
  async pushCommits(
    app: string,
    local: { repository: string; branch: string; commit: string },
  ): Promise<void> {
    const { program, args } = await sshCommand(this.options);
    const pushed = await execa(
      "git",
      [
        "-C",
        local.repository,
        "push",
        "--quiet",
        `${this.where}/${app}.git`,
        `+${local.commit}:refs/labtest/${local.branch}`,
      ],
      {
        // git runs GIT_SSH_COMMAND through a shell: every word is quoted.
        env: { ...this.options.env, GIT_SSH_COMMAND: [program, ...args].map(shellQuoted).join(" ") },
        extendEnv: false,
        reject: false,
        stdin: "ignore",
      },
    );
    if (pushed.exitCode === 0) return;
    // ssh's own failure (the laboratory unreachable, its host key, a key it refuses) is said as
    // every request says it; what is left is the laboratory refusing the push.
    const sshSaid = pushed.stderr.split(/\r?\n/).filter((line) => SSH_OWN.test(line));
    if (sshSaid.length > 0) throw sshRefused(this.where, sshSaid.join("\n"));
    throw new LabtestError(`the laboratory at ${this.where} did not take the commits of ${local.branch}`, [
      {
        where: `${this.where}/${app}.git`,
        what:
          pushed.stderr.trim().split(/\r?\n/).slice(-6).join("\n    ") ||
          `git push failed (exit status ${pushed.exitCode})`,
        fix: "the key needs the deploy scope for the app (on the laboratory: labtest lab keys); run the command again once ssh reaches the laboratory",
      },
    ]);
  }

  /**
   * Sends one request and reads its answer. When `signal` aborts, standard input closes (the
   * laboratory stops the operation, e.g. following logs), ssh ends, and the call resolves.
   */
  protected async call<K extends RequestKind>(
    kind: K,
    request: Requests[K],
    events?: EventSink,
    signal?: AbortSignal,
  ): Promise<Answer<K>> {
    if (signal?.aborted) return undefined as Answer<K>;
    const { program, args } = await sshCommand(this.options);
    const child = spawn(program, [...args, ...destination(this.address), ...REMOTE_COMMAND], {
      env: this.options.env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    this.running.add(child);
    const stderr = collectStderr(child);
    const ended = new Promise<SshEnd>((resolve) => {
      child.once("error", (error) => resolve({ code: null, signal: null, error }));
      child.once("close", (code, signal) => resolve({ code, signal }));
    }).finally(() => this.running.delete(child));
    // Standard input stays open for as long as the answer comes: closing it is how a client lets go.
    child.stdin.on("error", () => undefined);
    child.stdin.write(`${JSON.stringify({ kind, request })}\n`);
    let answered = false;
    const heard: EventSink = (event) => {
      answered = true;
      events?.(event);
    };
    let letGo: () => void = () => undefined;
    const stopped = new Promise<undefined>((resolve) => {
      letGo = () => {
        child.stdin.end();
        child.kill();
        resolve(undefined);
      };
    });
    signal?.addEventListener("abort", letGo, { once: true });
    const answer = readAnswerStream(child.stdout, heard, {
      lost: async () => {
        const end = await ended;
        // A Ctrl-C reaches ssh as well as labtest: let labtest's listener abort first.
        if (end.signal !== null || end.code === SSH_FAILED) await delay(100);
        return this.failure(kind, end, stderr(), answered);
      },
      garbled: (line) => this.garbled(kind, line, stderr()),
    });
    try {
      return (await Promise.race([answer, stopped])) as Answer<K>;
    } catch (error) {
      if (signal?.aborted) return undefined as Answer<K>;
      throw error;
    } finally {
      signal?.removeEventListener("abort", letGo);
      child.stdin.end();
    }
  }

  /** Why a request got no answer: ssh's own failure, said as ssh said it, or the session ending early. */
  private failure(kind: RequestKind, end: SshEnd, stderr: string, answered: boolean): LabtestError {
    if (end.error) return sshMissing(end.error);
    // ssh's lines as it printed them, indented under the problem they explain.
    const said = stderr.trim().split(/\r?\n/).join("\n    ") || "(ssh printed nothing)";
    if (end.code === SSH_FAILED && !answered) return sshRefused(this.where, said);
    const how = end.code === null ? `ssh ended by ${end.signal}` : `exit status ${end.code}`;
    if (answered)
      return new LabtestError(`the connection to the laboratory at ${this.where} was lost during ${kind}`, [
        {
          where: this.where,
          what: `${said} (${how})`,
          fix: "labtest list shows what the laboratory did; run it again once the laboratory answers",
        },
      ]);
    return new LabtestError(`the laboratory at ${this.where} ended the session without answering ${kind}`, [
      {
        where: this.where,
        what: `${said} (${how})`,
        fix: "the key must run labtest there (on the laboratory: labtest lab add-key NAME KEY.pub --scope …), with a labtest of this version",
      },
    ]);
  }

  private garbled(kind: RequestKind, line: string, stderr: string): LabtestError {
    return new LabtestError(
      `the laboratory at ${this.where} answered ${kind} with something else than labtest`,
      [
        {
          where: this.where,
          what: [line.trim().slice(0, 300), stderr.trim()].filter(Boolean).join("\n"),
          fix: "the key must run labtest there (on the laboratory: labtest lab add-key NAME KEY.pub --scope …), with a labtest of this version",
        },
      ],
    );
  }
}

interface SshEnd {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

/** `ssh://user@host:port` of an address, as messages name the laboratory. */
function sshUrl(address: SshAddress): string {
  const host =
    address.host.includes(":") && !address.host.startsWith("[") ? `[${address.host}]` : address.host;
  return `ssh://${address.user ? `${address.user}@` : ""}${host}${address.port ? `:${address.port}` : ""}`;
}

/**
 * The ssh program and the options of every connection to a laboratory: LABTEST_SSH's program
 * and arguments (default `ssh`, words separated by spaces, `~/` the home), and a shared master
 * connection. Host-key checking is left to the user's configuration: labtest never weakens it.
 */
export async function sshCommand(options: {
  env: NodeJS.ProcessEnv;
  interactive: boolean;
}): Promise<{ program: string; args: string[] }> {
  // No shell reads LABTEST_SSH, and ssh does not expand ~ in -F or -i: a word's leading ~/ is done here.
  const home = options.env.HOME;
  const [program = "ssh", ...chosen] = (options.env.LABTEST_SSH ?? "")
    .split(/\s+/)
    .filter(Boolean)
    .map((word) => (home && word.startsWith("~/") ? join(home, word.slice(2)) : word));
  // ssh expands %-sequences in ControlPath: the directory's own % are written %%.
  const controlPath = join((await controlDirectory(options.env)).replaceAll("%", "%%"), "labtest-ssh-%C");
  return {
    program,
    args: [
      ...chosen,
      // No terminal: the bytes of a request or a push must pass unaltered, whatever RequestTTY says.
      "-T",
      ...["-o", "ControlMaster=auto", "-o", `ControlPath=${controlPath}`, "-o", "ControlPersist=60s"],
      ...["-o", `ConnectTimeout=${CONNECT_TIMEOUT_MS / 1000}`],
      ...(options.interactive ? [] : ["-o", "BatchMode=yes"]),
    ],
  };
}

/** ssh's arguments that name the laboratory; the host is never read as an option, whatever it starts with. */
function destination(address: SshAddress): string[] {
  return [
    ...(address.port ? ["-p", String(address.port)] : []),
    ...(address.user ? ["-l", address.user] : []),
    "--",
    address.host,
  ];
}

/**
 * Where the master connections' sockets live: the user's runtime directory, else a directory
 * of this user's own under the temporary directory — never one another user could have made.
 */
async function controlDirectory(env: NodeJS.ProcessEnv): Promise<string> {
  if (env.XDG_RUNTIME_DIR) return env.XDG_RUNTIME_DIR;
  const uid = process.getuid?.() ?? 0;
  const directory = join(tmpdir(), `labtest-ssh-${uid}`);
  await mkdir(directory, { mode: 0o700 }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "EEXIST") throw error;
  });
  const found = await lstat(directory);
  if (found.isDirectory() && found.uid === uid && (found.mode & 0o077) === 0) return directory;
  throw new LabtestError(`${directory} is not a private directory of this user`, [
    {
      where: directory,
      what: "ssh's master connections would have their sockets there, where another user could reach them",
      fix: `set XDG_RUNTIME_DIR to a directory only you can use, or remove ${directory}`,
    },
  ]);
}

function shellQuoted(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** ssh's standard error, kept (up to STDERR_LIMIT) to explain a failure. */
function collectStderr(child: ChildProcess): () => string {
  let text = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    if (text.length < STDERR_LIMIT) text = (text + chunk).slice(0, STDERR_LIMIT);
  });
  return () => text;
}

/** What to do about ssh's own failures, by what ssh said; the first that matches applies. */
const SSH_FAILURES: { said: RegExp; fix: string; exitCode: number }[] = [
  {
    said: /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed/i,
    fix: "someone may be intercepting the connection, or the laboratory's host key was replaced: ask its administrator for its fingerprint; if it is the new one, remove the old key (ssh-keygen -R HOST) and connect once with ssh to accept the new one",
    exitCode: EXIT_REFUSED,
  },
  {
    said: /Host key verification failed|No .* host key is known/i,
    fix: "ssh does not know the laboratory's host key: connect once with ssh (the same user, host and port) and accept it after checking its fingerprint with the laboratory's administrator",
    exitCode: EXIT_REFUSED,
  },
  {
    said: /Permission denied/i,
    fix: "the laboratory does not accept your key: send its administrator your public key (they run labtest lab add-key NAME KEY.pub --scope …), and check that ssh offers it (ssh-add -l, IdentityFile in ~/.ssh/config)",
    exitCode: EXIT_REFUSED,
  },
];

/** A line of ssh's own, in what git relays when ssh fails under it. */
const SSH_OWN =
  /^ssh: |REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed|Permission denied \(/;

/** Any other failure of ssh: an address it cannot reach, a name it cannot resolve. */
const OTHER_SSH_FAILURE = {
  fix: "check the laboratory's address (host: in .labtest.yml, LABTEST_HOST or --lab), that its sshd runs and accepts you there, and what ssh -v says",
  exitCode: 1,
};

/** ssh itself failed: its message as it printed it, with what to do about it. */
function sshRefused(where: string, said: string): LabtestError {
  const { fix, exitCode } = SSH_FAILURES.find((failure) => failure.said.test(said)) ?? OTHER_SSH_FAILURE;
  return new LabtestError(`ssh could not reach the laboratory at ${where}`, [{ where, what: said, fix }], {
    exitCode,
  });
}

function sshMissing(error: Error): LabtestError {
  return new UsageError("labtest cannot run ssh to reach the laboratory", [
    {
      where: "LABTEST_SSH",
      what: error.message,
      fix: "install OpenSSH's client (e.g. apt-get install openssh-client), or set LABTEST_SSH to the ssh command to use",
    },
  ]);
}
