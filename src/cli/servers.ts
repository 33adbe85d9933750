import type { Command } from "commander";
import { UsageError } from "../errors.js";
import type { ServerStatus } from "../laboratory/laboratory.js";
import { PROTOCOL_VERSION as v } from "../laboratory/protocol-constants.js";
import { type CliIo, writeJson } from "./io.js";
import { withLab } from "./laboratory.js";
import type { StateGlobals } from "./state.js";

/** `labtest servers list|stop|remove`: the laboratory's servers, communal ones above all. */
export function registerServersCommands(program: Command, io: CliIo): void {
  const servers = program
    .command("servers")
    .description(
      "the laboratory's servers: communal ones stay when their last experiment goes; stop or remove them here",
    );

  servers
    .command("list [id]")
    .description("list the servers (or one): kind, provider, provision type, tenants, state")
    .action(async (id: string | undefined, _options, command: Command) => {
      const globals = command.optsWithGlobals<StateGlobals>();
      const shown = await withLab(io, globals, undefined, (lab) => lab.servers({ v, ...(id ? { id } : {}) }));
      if (globals.json) writeJson(io, { servers: shown });
      else io.stdout(shown.length ? shown.map(describe).join("") : "no servers on this laboratory\n");
    });

  for (const [how, done, help] of [
    ["stop", "stopped", "stop a server, keeping its data (a command that needs it starts it again)"],
    ["remove", "removed", "remove a server and its data"],
  ] as const)
    servers
      .command(`${how} [id]`)
      .description(`${help}; without ID, every server no experiment uses`)
      .option("--force", `${how} it even though experiments' services are on it`)
      .action(async (id: string | undefined, options: { force?: boolean }, command: Command) => {
        const globals = command.optsWithGlobals<StateGlobals>();
        if (id === undefined && options.force)
          throw new UsageError(`--force needs a server id`, [
            {
              where: `labtest servers ${how} --force`,
              what: "forcing is for one server whose users you know",
              fix: `labtest servers ${how} ID --force (labtest servers list shows them)`,
            },
          ]);
        const ids = await withLab(io, globals, undefined, (lab) =>
          lab.retireServers({ v, how, ...(id ? { id } : {}), force: options.force === true }),
        );
        if (globals.json) writeJson(io, { [done]: ids });
        else io.stdout(ids.length ? ids.map((i) => `${done} ${i}\n`).join("") : `no server to ${how}\n`);
      });
}

function describe(s: ServerStatus): string {
  return `${s.id}: ${s.kind} on ${s.provider}, ${s.provisionType}, ${s.tenants} tenant${s.tenants === 1 ? "" : "s"}, ${s.state}\n`;
}
