import { spawn } from "node:child_process";
import {
  access,
  constants,
  mkdir,
  open,
  readdir,
  readFile,
  realpath,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import { userInfo } from "node:os";
import { dirname, join } from "node:path";
import { execa } from "execa";
import getPort from "get-port";
import pRetry, { AbortError } from "p-retry";
import { randomPassword } from "../../lab/passwords.js";
import { processesUsing, processIdentity, stopProcess } from "../../lab/processes.js";
import { baseEnvironment, findProgram, SYSTEM_DIRECTORIES } from "../../lab/programs.js";
import type { Registry } from "../../lab/registry.js";
import { ProvisionError } from "../errors.js";
import { serviceKind } from "../kinds/index.js";
import type { NativeContext, NativeRecipe, RunProgram } from "../kinds/kind.js";
import { kindRecipe, type ServerProvider, type ServerRecord, type ServerSpec } from "./provider.js";

const INITIALIZED = ".labtest-initialized";
const CONFIGURED = ".labtest-configured";
/** Ephemeral data lives in memory (tmpfs) where the machine has it. */
const MEMORY_DIRECTORY = "/dev/shm";

interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/**
 * Servers as native processes on the laboratory host, detached so they outlive the command
 * that started them; later commands find them again by pid and command line.
 */
export function localProvider(registry: Registry): ServerProvider {
  return {
    async check(spec) {
      await findPrograms(kindRecipe(spec.kind, spec.module, "native"), spec);
    },

    async ensure(spec, previous, save) {
      const recipe = kindRecipe(spec.kind, spec.module, "native");
      const programs = await findPrograms(recipe, spec);
      const account = await serverAccount(recipe);
      const serverDirectory = registry.directory("servers", spec.id);
      await registry.ensureDirectory(serverDirectory);
      const dataDirectory = spec.ephemeral
        ? join(MEMORY_DIRECTORY, `${ephemeralPrefix(registry)}${spec.id}`)
        : join(serverDirectory, "data");
      const record: ServerRecord = previous ?? {
        id: spec.id,
        provider: "local",
        kind: spec.kind,
        provisionType: spec.provisionType,
        owner: spec.owner,
        admin: {
          host: "127.0.0.1",
          port: await getPort({ host: "127.0.0.1" }),
          user: spec.module.adminUser,
          password: randomPassword(),
        },
        details: { pid: 0, dataDirectory, serverDirectory, log: join(serverDirectory, "server.log") },
        createdAt: new Date().toISOString(),
      };
      if (await isRunning(record)) return record;

      const asLabtest = programRunner(null);
      const context: NativeContext = {
        dataDirectory,
        port: record.admin.port,
        adminPassword: record.admin.password ?? "",
        ephemeral: spec.ephemeral,
        programs,
        privateFile: async (name, content) => {
          const file = join(serverDirectory, name);
          await writeFile(file, content, { mode: 0o600 });
          if (account) await asLabtest("chown", [`${account.uid}:${account.gid}`, file]);
          return file;
        },
      };
      const run = programRunner(account);
      if (!(await exists(join(dataDirectory, INITIALIZED)))) {
        await rm(dataDirectory, { recursive: true, force: true });
        await mkdir(dataDirectory, { recursive: true, mode: 0o700 });
        if (account) {
          await asLabtest("chown", [`${account.uid}:${account.gid}`, dataDirectory]);
          await run("test", ["-w", dataDirectory]).catch((error) => {
            throw unreachable(account, dataDirectory, error);
          });
        }
        try {
          await recipe.initialize?.(context, run);
        } finally {
          await rm(join(serverDirectory, "admin-password"), { force: true });
        }
        await writeFile(join(dataDirectory, INITIALIZED), "");
        if (account) await asLabtest("chown", ["-R", `${account.uid}:${account.gid}`, dataDirectory]);
      }

      const { program, args } = recipe.serverArgs(context);
      const log = await open(String(record.details.log), "a", 0o600);
      const child = spawn(program, args, {
        detached: true,
        stdio: ["ignore", log.fd, log.fd],
        cwd: serverDirectory,
        env: { ...accountEnvironment(account), ...recipe.environment?.(dataDirectory) },
        ...(account ? { uid: account.uid, gid: account.gid } : {}),
      });
      await log.close();
      const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
      child.once("error", () => undefined);
      child.unref();
      const started: ServerRecord = {
        ...record,
        details: { ...record.details, pid: child.pid ?? 0, program },
      };
      await save(started);

      if (recipe.afterFirstStart && !(await exists(join(dataDirectory, CONFIGURED)))) {
        await pRetry(
          async () => {
            if (!(await isRunning(started))) {
              const code = await Promise.race([exited, Promise.resolve("running")]);
              throw new AbortError(`the server exited (${code})`);
            }
            await recipe.afterFirstStart?.(context);
          },
          { retries: 200, minTimeout: 100, maxTimeout: 500, maxRetryTime: 60_000 },
        ).catch(async (error: Error) => {
          throw new ProvisionError(`${spec.kind} server ${spec.id} did not start: ${error.message}`, [
            { where: String(record.details.log), what: await tail(String(record.details.log)) },
          ]);
        });
        await writeFile(join(dataDirectory, CONFIGURED), "");
      }
      return started;
    },

    stop: (record) => stopServer(record),

    async remove(record) {
      await stopServer(record);
      await rm(String(record.details.dataDirectory), { recursive: true, force: true });
      await rm(String(record.details.serverDirectory), { recursive: true, force: true });
    },

    attach: async (record) => ({ host: "127.0.0.1", port: record.admin.port }),
    // A server's client programs (pg_dump, …) sit next to it; they connect over TCP as labtest's user.
    tools: async (record) => ({
      run: programRunner(null, [dirname(String(record.details.program))], serverEnvironment(record)),
      admin: record.admin,
    }),
    releaseExperiment: async () => undefined,
    logs: (record) => tail(String(record.details.log)),
    stopped: async (record) => !(await isRunning(record)),

    async sweep(servers, _experiments, sweep) {
      const directories = [
        ...(await readdir(registry.directory("servers")).catch(() => [] as string[])).map((name) => ({
          id: name,
          path: registry.directory("servers", name),
        })),
        ...(await readdir(MEMORY_DIRECTORY).catch(() => [] as string[]))
          .filter((name) => name.startsWith(ephemeralPrefix(registry)))
          .map((name) => ({
            id: name.slice(ephemeralPrefix(registry).length),
            path: join(MEMORY_DIRECTORY, name),
          })),
      ];
      for (const { id, path } of directories) {
        if (id.endsWith(".json") || servers.has(id)) continue;
        const info = await stat(path).catch(() => undefined);
        if (!info?.isDirectory() || !sweep.old(info.mtimeMs)) continue;
        await sweep.remove(`server directory ${path}`, "no server record accounts for it", async () => {
          // A server started just before a crash runs unrecorded: its command line names its directory.
          for (const pid of await processesUsing(path)) await stopProcess(pid);
          await rm(path, { recursive: true, force: true });
        });
      }
    },
  };
}

function ephemeralPrefix(registry: Registry): string {
  return `labtest-${registry.id}-`;
}

/** Stops the server's process and what it leaves running. */
async function stopServer(record: ServerRecord): Promise<void> {
  if (await isRunning(record)) await stopProcess(Number(record.details.pid));
  await serviceKind(record.kind).native?.afterStop?.(String(record.details.dataDirectory));
}

/** The variables the recorded server runs with (its programs need them to find it). */
function serverEnvironment(record: ServerRecord): Record<string, string> {
  return serviceKind(record.kind).native?.environment?.(String(record.details.dataDirectory)) ?? {};
}

/**
 * Whether the recorded process still runs and is still the server: a pid can be reused by an
 * unrelated process after a reboot, so its command line must name the program and the port.
 */
async function isRunning(record: ServerRecord): Promise<boolean> {
  const [identity, program] = await Promise.all([
    processIdentity(Number(record.details.pid)),
    realpath(String(record.details.program)).catch(() => undefined),
  ]);
  // Servers rename their process title (redis-server), so the executable is compared instead.
  return (
    identity?.executable !== undefined &&
    identity.executable === program &&
    identity.argv.join(" ").includes(String(record.admin.port))
  );
}

async function findPrograms(recipe: NativeRecipe, spec: ServerSpec): Promise<Record<string, string>> {
  // A requested version must come from its own directory, not whatever PATH offers.
  const directories = [
    ...((await recipe.locations?.(spec.version)) ?? []),
    ...(spec.version && recipe.locations ? [] : SYSTEM_DIRECTORIES),
  ].filter(Boolean);
  const found: Record<string, string> = {};
  for (const program of recipe.programs) {
    const path = await findProgram([program], directories);
    if (!path)
      throw new ProvisionError(`${program} is not installed on the laboratory`, [
        {
          where: `${spec.kind} on provider local${spec.version ? ` (version ${spec.version})` : ""}`,
          what: `labtest runs ${spec.kind} servers with ${program}, looked for in ${directories.join(", ")}`,
          fix: `install the Debian package ${recipe.debianPackage}${recipe.installHint ? `, ${recipe.installHint}` : ""}, or use provider: docker`,
        },
      ]);
    found[program] = path;
  }
  return found;
}

/** The account a server runs as: database servers refuse to run as root. */
async function serverAccount(recipe: NativeRecipe): Promise<Account | null> {
  if (process.getuid?.() !== 0) return null;
  const passwd = await readFile("/etc/passwd", "utf8");
  const accounts = new Map(
    passwd
      .split("\n")
      .map((line) => line.split(":"))
      .filter((fields) => fields.length >= 4)
      .map(([name, , uid, gid, , home]) => [
        name as string,
        { name: name as string, uid: Number(uid), gid: Number(gid), home: home ?? "/" },
      ]),
  );
  return accounts.get(recipe.account ?? "nobody") ?? accounts.get("nobody") ?? null;
}

/**
 * What a server and its programs start from: labtest's base with the HOME of the account they
 * run as (labtest's own when not root), never the environment of whoever ran labtest.
 */
function accountEnvironment(account: Account | null): Record<string, string> {
  return baseEnvironment(account?.home ?? userInfo().homedir);
}

/**
 * Runs programs as `account` (or as labtest's user) with `environment` over labtest's base, each
 * found by name in `directories`, then in the laboratory's system directories (never the
 * invoker's PATH); a program given by absolute path is run as it is.
 */
export function programRunner(
  account: Account | null,
  directories: readonly string[] = [],
  environment: Record<string, string> = {},
): RunProgram {
  return async (program, args, options = {}) => {
    const names = typeof program === "string" ? [program] : program;
    const searched = [...directories, ...SYSTEM_DIRECTORIES].filter(Boolean);
    const path = await findProgram(names, searched);
    if (!path)
      throw new ProvisionError(`${names.join(" or ")} is not installed on the laboratory`, [
        {
          where: "the laboratory host",
          what: `looked for in ${searched.join(", ")}`,
          fix: `install the package that provides ${names[0]}`,
        },
      ]);
    const result = await execa(path, args, {
      ...(options.input === undefined ? {} : { input: options.input }),
      env: { ...accountEnvironment(account), ...environment, ...options.env },
      extendEnv: false,
      ...(account ? { uid: account.uid, gid: account.gid } : {}),
      cwd: "/",
      reject: false,
      stripFinalNewline: false,
      stderr: "pipe",
    });
    if (result.exitCode !== 0)
      throw new ProvisionError(`${path} failed (exit ${result.exitCode})`, [
        {
          where: [path, ...args].join(" "),
          what: significantLines(String(result.stderr || result.stdout)),
        },
      ]);
    return String(result.stdout ?? "");
  };
}

function unreachable(account: Account, directory: string, cause: unknown): ProvisionError {
  return new ProvisionError(
    `the server's account ${account.name} cannot reach its data directory`,
    [
      {
        where: directory,
        what: `${account.name} needs to traverse every directory above it`,
        fix: "make the laboratory home's parent directories traversable (chmod o+x), or set LABTEST_HOME to a directory such as /var/lib/labtest",
      },
    ],
    { cause },
  );
}

async function exists(path: string, mode = constants.F_OK): Promise<boolean> {
  return access(path, mode).then(
    () => true,
    () => false,
  );
}

async function tail(file: string, lines = 30): Promise<string> {
  const text = await readFile(file, "utf8").catch(() => "");
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/** The lines of a failed program's output that say what went wrong: its errors, else its end. */
function significantLines(output: string): string {
  const lines = output.trim().split("\n");
  const errors = lines.filter((line) => /error|fatal/i.test(line));
  return (errors.length > 0 ? errors : lines).slice(-10).join("\n");
}
