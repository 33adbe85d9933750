import { relative } from "node:path";
import { gitBranch, gitToplevel } from "../config/git.js";
import {
  configuredHost,
  type LaboratoryAddress,
  laboratoryOrigin,
  parseLaboratoryAddress,
} from "../config/host.js";
import type { LoadedConfig } from "../config/resolve.js";
import { UsageError } from "../errors.js";
import type { Laboratory } from "../laboratory/laboratory.js";
import { openLaboratory } from "../laboratory/open.js";
import type { EventSink, Project } from "../laboratory/protocol.js";
import { commandConfig } from "./config.js";
import type { CliIo, GlobalOptions, StreamedOutput } from "./io.js";
import type { StateGlobals } from "./state.js";

/**
 * Runs `use` with the laboratory a command talks to (see `chosenLaboratory`) and closes it
 * afterwards.
 */
export async function withLab<T>(
  io: CliIo,
  globals: StateGlobals,
  loaded: LoadedConfig | undefined,
  use: (lab: Laboratory) => Promise<T>,
): Promise<T> {
  const address = await chosenLaboratory(io, globals, loaded);
  if (globals.state && address.kind !== "local")
    throw new UsageError("--state names the state of the laboratory on this machine", [
      {
        where: "--state",
        what: `the laboratory at ${address.kind === "https" ? laboratoryOrigin(address.url) : address.host} keeps its own state`,
        fix: "leave --state out, or pass --lab local to use this machine's laboratory",
      },
    ]);
  const opened = await openLaboratory(address, {
    env: io.env,
    cwd: io.cwd,
    ...(globals.state ? { statePath: globals.state } : {}),
  });
  // A command run on the laboratory itself is its user's, as an administrator: audited as a token's requests are.
  const lab =
    address.kind === "local" ? (await import("../server/audit.js")).locallyAudited(opened, io.env) : opened;
  try {
    return await use(lab);
  } finally {
    await lab.close();
  }
}

/**
 * Which laboratory: `--lab`, else LABTEST_HOST, else the configuration's `host` (LABTEST_HOST
 * already overrides it in a loaded configuration), else this machine. A command that needs no
 * configuration still follows the `host` of the one found from where it runs.
 */
export async function chosenLaboratory(
  io: CliIo,
  globals: GlobalOptions,
  loaded: LoadedConfig | undefined,
): Promise<LaboratoryAddress> {
  if (globals.lab !== undefined) return laboratoryAddress(globals.lab, "--lab");
  if (loaded) return loaded.config.laboratory;
  if (io.env.LABTEST_HOST) return laboratoryAddress(io.env.LABTEST_HOST, "LABTEST_HOST");
  const configured = await configuredHost(io.cwd, globals.config);
  return configured ? laboratoryAddress(configured.host, configured.where) : { kind: "local" };
}

function laboratoryAddress(host: string, where: string): LaboratoryAddress {
  const address = parseLaboratoryAddress(host);
  if (typeof address !== "string") return address;
  throw new UsageError(`which laboratory? ${address}`, [
    { where, what: address, fix: "use local, https://lab.example.com[:port] or ssh://user@host[:port]" },
  ]);
}

/** What a command in an app's working copy tells the laboratory of it, and the laboratory it names. */
export async function withProject<T>(
  io: CliIo,
  globals: StateGlobals,
  use: (lab: Laboratory, project: Project, loaded: LoadedConfig) => Promise<T>,
): Promise<T> {
  const loaded = await commandConfig(io, globals);
  const project = { config: loaded, subdirectory: await configSubdirectory(loaded) };
  return withLab(io, globals, loaded, (lab) => use(lab, project, loaded));
}

/**
 * Where the configuration sits inside its repository: the app runs from the same place in the
 * laboratory's checkouts (an app in a subdirectory of a larger repository). Read here, on the
 * client, as the branch is: the laboratory does not see the working copy.
 */
async function configSubdirectory(loaded: LoadedConfig): Promise<string> {
  const toplevel = await gitToplevel(loaded.directory);
  return toplevel ? relative(toplevel, loaded.directory) : "";
}

/**
 * The branch a command means: the one given, else the working copy's — read here, on the
 * client, since the laboratory does not see the working copy.
 */
export async function currentBranch(
  loaded: LoadedConfig,
  given: string | undefined,
  option: { where: string; what: string; fix: string },
): Promise<string> {
  const branch = given ?? (await gitBranch(loaded.directory));
  if (branch) return branch;
  throw new UsageError(`which ${option.what}?`, [
    {
      where: option.where,
      what: `not given, and ${loaded.directory} is not on a git branch`,
      fix: option.fix,
    },
  ]);
}

/** Writes a laboratory's output events where a command's output goes (masked, as `output` does). */
export function toOutput(output: StreamedOutput): EventSink {
  return (event) => {
    if (event.type === "stdout") output.stdout(event.text);
    else if (event.type === "stderr") output.stderr(event.text);
  };
}
